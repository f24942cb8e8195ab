"""The rule index tries an event only against rules that can match it, and finds exactly what trying all would."""

from __future__ import annotations

from datetime import UTC, datetime

from core.normalise import with_event_identity
from detectors.pipeline import default_rules_path
from detectors.sigma.events import EventView, make_records
from detectors.sigma.index import RuleIndex, naive_match
from detectors.sigma.loader import load_pack
from tests.detectors.sigma.conftest import rule_yaml, view


def test_events_are_tried_only_against_rules_filed_under_their_values(make_pack) -> None:
    pack = make_pack(
        rule_yaml(
            "s:\n  action: user_login_failed\ncondition: s",
            product="slack",
            service="audit",
            name="login_failed",
        ),
        rule_yaml(
            "s:\n  action: [app_installed, app_approved]\ncondition: s",
            product="slack",
            service="audit",
            name="apps",
        ),
        rule_yaml(
            "s:\n  details.reason: tor\ncondition: not s",
            product="slack",
            service="audit",
            name="unindexable",
        ),
    )
    index = RuleIndex(pack.rules)
    stream = index.streams[("slack", "audit")]
    assert stream.indexed_fields == ["action"]
    assert [r.rule_id for r in stream.always] == ["unindexable"]
    candidates = index.candidates(view({"action": "APP_APPROVED"}, provider="slack", stream="audit"))
    assert sorted(r.rule_id for r in candidates) == ["apps", "unindexable"]
    assert index.candidates(view({"name": "x"}, provider="google", stream="login")) == []


def test_an_or_of_two_fields_is_not_indexed_on_either(make_pack) -> None:
    pack = make_pack(rule_yaml("a:\n  x: 1\nb:\n  y: 2\ncondition: a or b"))
    assert RuleIndex(pack.rules).streams[("m365", "signins")].always == (pack.rules[0],)


def test_index_finds_the_same_matches_as_trying_every_rule_on_the_shipped_pack() -> None:
    pack = load_pack([default_rules_path()])
    index = RuleIndex(pack.rules)
    checked = 0
    for item in [*pack.rules, *pack.correlations]:
        for test in item.tests:
            for number, event in enumerate(test.events):
                data = with_event_identity(
                    event.provider, event.stream, event.data, event_id=f"t{number}", at=datetime.now(UTC)
                )
                for rec in make_records(event.provider, event.stream, data, event_id=number, ts=0):
                    current = EventView(rec)
                    assert set(index.match(current)) == set(naive_match(pack.rules, EventView(rec))), (
                        item.rule_id,
                        test.name,
                    )
                    checked += 1
    assert checked > 200
