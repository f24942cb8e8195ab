"""Fuzzing the Sigma rule loader/compiler and the compiled predicates.

Given a rule file (Sigma-shaped with random modifiers, values and conditions; mutated; or raw
bytes), loading it never raises and every refusal is a RuleProblem that names the file and says
why — never the loader's "internal error" fallback, which means an exception escaped a compile
step. Given a rule that loaded and an event of any shape, matching returns a bool or raises the
engine's DetectionError.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import yaml
from hypothesis import given, note
from hypothesis import strategies as st

from core.normalise import EVENT_STREAMS
from detectors.sigma.errors import DetectionError
from detectors.sigma.events import EventRecord, EventView
from detectors.sigma.loader import load_pack
from tests.fuzz.budget import FUZZ

FIELDS = [
    "userPrincipalName",
    "ipAddress",
    "status.errorCode",
    "action",
    "actor.email",
    "events.name",
    "parameters.visibility",
    "location.countryOrRegion",
    "Operation",
    "a.b.c",
]
MODIFIERS = [
    "contains",
    "startswith",
    "endswith",
    "all",
    "re",
    "i",
    "m",
    "s",
    "cidr",
    "base64",
    "base64offset",
    "wide",
    "utf16le",
    "windash",
    "exists",
    "lt",
    "lte",
    "gt",
    "gte",
    "cased",
    "expand",
    "fieldref",
    "neq",
    "minute",
    "hour",
    "day",
    "week",
    "month",
    "year",
    "bogus",
]

values = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "*",
            "?",
            "\\*",
            "a*b?c",
            "10.0.0.0/8",
            "::1/128",
            "300.1.1.1/99",
            "(",
            "[a-",
            "(?P<x>a)",
            "\\",
            "%var%",
            "0x10",
            "1e400",
        ]
    ),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
)
field_keys = st.tuples(
    st.sampled_from(FIELDS) | st.text(max_size=6), st.lists(st.sampled_from(MODIFIERS), max_size=3)
).map(lambda t: "|".join([t[0], *t[1]]))
selections = st.one_of(
    st.dictionaries(field_keys, values | st.lists(values, max_size=4), min_size=1, max_size=4),
    st.lists(st.dictionaries(field_keys, values, min_size=1, max_size=3), min_size=1, max_size=3),
    st.lists(values, min_size=1, max_size=3),  # keyword search
    values,
)
selection_names = st.sampled_from(["selection", "filter", "sel1", "sel_2", "keywords", "them", "1 of", "not"])


@st.composite
def conditions(draw: st.DrawFn, names: list[str]) -> str:
    atoms = [*names, "1 of selection*", "all of them", "1 of them", "all of sel*", "missing", "(", ")"]
    parts = [draw(st.sampled_from(atoms))]
    for _ in range(draw(st.integers(0, 4))):
        parts.append(draw(st.sampled_from(["and", "or", "and not", "or not", "|", ""])))
        parts.append(draw(st.sampled_from(atoms)))
    text = " ".join(parts)
    return f"({text})" if draw(st.booleans()) else text


@st.composite
def rule_docs(draw: st.DrawFn) -> dict:
    names = draw(st.lists(selection_names, min_size=1, max_size=3, unique=True))
    detection = {name: draw(selections) for name in names}
    # non-text conditions are a known refusal gap: see test_a_non_text_condition_is_refused_with_a_reason
    detection["condition"] = draw(conditions(names) | st.lists(conditions(names), max_size=2))
    provider = draw(st.sampled_from([*EVENT_STREAMS, "azure", "google_workspace", "nonsense", ""]))
    doc: dict = {
        "title": draw(st.text(max_size=20) | st.none()),
        "id": draw(st.uuids().map(str) | st.text(max_size=8)),
        "logsource": {
            "product": provider,
            "service": draw(st.sampled_from([s for ss in EVENT_STREAMS.values() for s in ss] + ["", "x"])),
        },
        "detection": detection,
        "level": draw(st.sampled_from(["low", "medium", "high", "critical", "informational", "urgent", ""])),
    }
    if draw(st.booleans()):
        doc["tenantguard"] = draw(
            st.dictionaries(
                st.sampled_from(
                    [
                        "severity",
                        "confidence",
                        "threshold",
                        "dedup",
                        "dedup_period",
                        "unique",
                        "entities",
                        "title",
                        "signal_only",
                        "context",
                    ]
                ),
                values
                | st.lists(values, max_size=2)
                | st.dictionaries(st.text(max_size=5), values, max_size=2),
                max_size=3,
            )
        )
    if draw(st.booleans()):
        doc["correlation"] = {
            "type": draw(
                st.sampled_from(["event_count", "value_count", "temporal", "temporal_ordered", "bogus"])
            ),
            "rules": draw(st.lists(st.text(max_size=6), max_size=2)),
            "timespan": draw(st.sampled_from(["5m", "1h", "0s", "-1m", "forever", "99999999d"])),
            "group-by": draw(st.lists(st.sampled_from(FIELDS), max_size=2)),
            "condition": draw(
                st.dictionaries(st.sampled_from(["gte", "gt", "lt", "eq", "field"]), values, max_size=2)
            ),
        }
    return doc


def _rule_text(doc: dict) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


@st.composite
def mutated_rule_text(draw: st.DrawFn) -> str:
    text = _rule_text(draw(rule_docs()))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(0, len(text) - 1)))
        text = (
            text[:at]
            + draw(
                st.sampled_from(
                    ["", ":", "\n", "  ", "- ", "|", "*", "'", "{", "&a", "*a", "!!python/object:os.system"]
                )
            )
            + text[at + 1 :]
        )
    return text


rule_files = st.one_of(rule_docs().map(_rule_text), mutated_rule_text(), st.text(max_size=200))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=10),
    st.sampled_from(["10.1.2.3", "2001:db8::1", "2026-01-01T00:00:00Z"]),
)
event_data = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "status",
                    "errorCode",
                    "ipAddress",
                    "actor",
                    "email",
                    "events",
                    "name",
                    "parameters",
                    "a",
                    "b",
                    "c",
                ]
            )
            | st.text(max_size=4),
            children,
            max_size=4,
        )
    ),
    max_leaves=15,
)


def _load(tmp: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp / "rule.yml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    note(f"rule file:\n{text}")
    pack = load_pack([path])
    for problem in pack.problems:
        assert "internal error" not in problem.reason, f"an exception escaped the compiler: {problem}"
        assert problem.reason.strip(), "a refusal must say why"
    return pack


@FUZZ
@given(text=rule_files)
def test_any_rule_file_loads_or_is_refused_with_a_reason(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    # given any rule file, when the pack is loaded, then nothing is raised and refusals are reasons
    _load(tmp_path_factory.mktemp("rules"), text)


@FUZZ
@given(
    doc=rule_docs(),
    data=st.dictionaries(st.text(max_size=8) | st.sampled_from(FIELDS), event_data, max_size=6),
)
def test_a_loaded_rule_matches_any_event_or_refuses_it(
    tmp_path_factory: pytest.TempPathFactory, doc: dict, data: dict
) -> None:
    # given a rule that loaded and an event of any shape
    path = tmp_path_factory.mktemp("rules") / "rule.yml"
    path.write_text(_rule_text(doc), encoding="utf-8")
    pack = load_pack([path])
    for rule in pack.rules:
        view = EventView(EventRecord(1, rule.provider, rule.streams[0] if rule.streams else "x", 0.0, data))
        # when it is matched, then the answer is a bool or a DetectionError
        with contextlib.suppress(DetectionError):
            assert rule.matches(view) in (True, False)


@pytest.mark.parametrize("condition", [0, 1.5, False, None])
def test_a_non_text_condition_is_refused_with_a_reason(tmp_path: Path, condition: object) -> None:
    # given a rule whose condition is not text
    doc = {
        "title": "t",
        "id": "r1",
        "logsource": {"product": "m365", "service": "signins"},
        "detection": {"selection": {"userPrincipalName": "a"}, "condition": condition},
    }
    # when it is loaded, then it is refused with a reason naming the condition, not an internal error
    path = tmp_path / "rule.yml"
    path.write_text(_rule_text(doc), encoding="utf-8")
    pack = load_pack([path])
    assert not pack.rules
    assert any("`condition` must be text" in problem.reason for problem in pack.problems)
