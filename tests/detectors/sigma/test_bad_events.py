"""Bad events (huge, deeply nested, non-UTF-8, odd types) get a clear error naming them; the batch goes on."""

from __future__ import annotations

import pytest

from detectors.sigma.engine import DetectionEngine
from detectors.sigma.errors import EventError
from detectors.sigma.events import EventRecord, check_depth, make_records, parse_event_bytes
from tests.detectors.sigma.conftest import record, rule_yaml

T0 = 1_800_000_000.0
RULES = (
    rule_yaml("selection:\n  userAgent|re: 'python'\ncondition: selection", name="by_regex"),
    rule_yaml("selection:\n  clientAppUsed: IMAP4\ncondition: selection", name="by_value"),
    rule_yaml("keywords:\n  - mimikatz\ncondition: keywords", name="by_keyword"),
)


def test_non_utf8_bytes_name_the_event_and_the_offset() -> None:
    with pytest.raises(EventError) as caught:
        parse_event_bytes(b'{"a": "caf\xe9"}', "upload.jsonl line 3")
    assert "upload.jsonl line 3" in str(caught.value) and "byte 10" in str(caught.value)
    with pytest.raises(EventError, match="not valid JSON"):
        parse_event_bytes(b'{"a": ', "upload.jsonl line 4")


def test_absurdly_nested_events_are_refused_up_front() -> None:
    nested: dict = {}
    node = nested
    for _ in range(200):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(EventError, match="nested deeper than 64"):
        check_depth(nested, "event 9")


def test_an_event_without_a_readable_time_names_the_stream() -> None:
    with pytest.raises(EventError, match="m365/signins"):
        make_records("m365", "signins", {"id": "s1", "createdDateTime": "yesterday"}, event_id=1)


def test_huge_and_strange_events_are_evaluated_without_crashing(make_pack) -> None:
    pack = make_pack(*RULES)
    deep: dict = {"leaf": "mimikatz"}
    for _ in range(500):
        deep = {"x": deep}
    events = [
        record({"userAgent": "a" * 5_000_000 + "python", "clientAppUsed": "IMAP4"}, ts=T0),
        record({"userAgent": "bad surrogate \udcff python"}, ts=T0 + 1),
        record(
            {"userAgent": 12345, "clientAppUsed": ["IMAP4", None, {"k": 1}], 7: "non-string key"}, ts=T0 + 2
        ),
        record(deep, ts=T0 + 3),
        EventRecord(99, "m365", "signins", T0 + 4, None),  # type: ignore[arg-type]
    ]
    result = DetectionEngine(pack).process(events)
    assert {f.rule_id for f in result.findings} >= {"by_regex", "by_value"}
    assert any(e.event_id == 99 for e in result.errors)
    assert all(str(e).startswith("event ") for e in result.errors)


def test_a_rule_failing_on_one_event_does_not_stop_the_others(make_pack) -> None:
    pack = make_pack(*RULES)

    def boom(view):
        raise RuntimeError("simulated bug")

    broken = next(r for r in pack.rules if r.rule_id == "by_regex")
    broken.matches = boom
    result = DetectionEngine(pack).process([record({"userAgent": "python", "clientAppUsed": "IMAP4"}, ts=T0)])
    assert [f.rule_id for f in result.findings] == ["by_value"]
    assert [(e.rule_id, e.reason) for e in result.errors] == [("by_regex", "RuntimeError: simulated bug")]
