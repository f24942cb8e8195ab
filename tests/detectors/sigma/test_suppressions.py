"""Suppressions silence one rule for given field values until they expire, and count what they silenced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from detectors.sigma.engine import DetectionEngine
from detectors.sigma.suppressions import SuppressionSpec
from tests.detectors.sigma.conftest import record, rule_yaml

T0 = 1_800_000_000.0
NOW = datetime(2027, 1, 1, tzinfo=UTC)
LEGACY = rule_yaml("selection:\n  clientAppUsed: IMAP4\ncondition: selection", name="legacy")


def _signin(user: str, ip: str = "45.133.1.9", ts: float = T0):
    return record({"userPrincipalName": user, "clientAppUsed": "IMAP4", "ipAddress": ip}, ts=ts)


def _engine(pack, *specs: SuppressionSpec) -> DetectionEngine:
    return DetectionEngine(pack, suppressions=specs, clock=lambda: NOW)


def test_a_suppression_silences_matching_events_and_counts_them(make_pack) -> None:
    pack = make_pack(LEGACY)
    engine = _engine(
        pack, SuppressionSpec(7, "legacy", {"userPrincipalName": "scanner@x.example"}, reason="printer")
    )
    result = engine.process(
        [_signin("SCANNER@x.example"), _signin("scanner@x.example"), _signin("a@x.example")]
    )
    assert [f.entities["people"] for f in result.findings] == [["a@x.example"]]
    assert result.suppressed == {7: 2}


def test_wildcards_lists_and_every_field_must_match(make_pack) -> None:
    pack = make_pack(LEGACY)
    spec = SuppressionSpec(
        1, "legacy", {"userPrincipalName": "svc-*@x.example", "ipAddress": ["10.0.0.1", "45.133.1.9"]}
    )
    result = _engine(pack, spec).process(
        [_signin("svc-mail@x.example"), _signin("svc-mail@x.example", ip="1.1.1.1")]
    )
    assert len(result.findings) == 1 and result.suppressed == {1: 1}


def test_expired_suppressions_and_other_rules_do_not_apply(make_pack) -> None:
    pack = make_pack(LEGACY)
    expired = SuppressionSpec(1, "legacy", {}, expires_at=NOW - timedelta(seconds=1))
    other_rule = SuppressionSpec(2, "another_rule", {})
    result = _engine(pack, expired, other_rule).process([_signin("a@x.example")])
    assert len(result.findings) == 1 and not result.suppressed


def test_rules_can_be_named_by_uuid(make_pack) -> None:
    pack = make_pack(LEGACY.replace("name: legacy", "name: legacy\nid: 3f0b8b52-4f5e-4a8c-9d44-2f6a1c1b0001"))
    spec = SuppressionSpec(1, "3f0b8b52-4f5e-4a8c-9d44-2f6a1c1b0001", {})
    assert _engine(pack, spec).process([_signin("a@x.example")]).findings == []


def test_a_correlation_is_suppressed_by_its_group_values(make_pack) -> None:
    failure = rule_yaml("selection:\n  status.errorCode: 50126\ncondition: selection", name="failure")
    spray = (
        "title: spray\nname: spray\ncorrelation:\n  type: value_count\n  rules: [failure]\n  group-by: [ipAddress]\n"
        "  timespan: 10m\n  condition: {gte: 3, field: userPrincipalName}\nlevel: high\n"
    )
    pack = make_pack(failure, spray)
    events = [
        record(
            {"userPrincipalName": f"u{i}@x.example", "ipAddress": "10.9.9.9", "status": {"errorCode": 50126}},
            ts=T0 + i,
        )
        for i in range(3)
    ]
    result = _engine(pack, SuppressionSpec(3, "spray", {"ipAddress": "10.9.9.*"})).process(events)
    assert result.findings == [] and result.suppressed == {3: 1}
