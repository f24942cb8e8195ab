"""Correlations in event time: counts, distinct values, sequences, lateness, bounded state, restarts."""

from __future__ import annotations

import random

from detectors.sigma.engine import DetectionEngine
from tests.detectors.sigma.conftest import record, rule_yaml, run

T0 = 1_800_000_000.0
FAILURE = rule_yaml("selection:\n  status.errorCode: 50126\ncondition: selection", name="failure")
SUCCESS = rule_yaml("selection:\n  status.errorCode: 0\ncondition: selection", name="success")


def correlation(
    kind: str,
    rules: str,
    condition: str,
    *,
    group: str = "userPrincipalName",
    name: str = "corr",
    extra: str = "",
) -> str:
    return (
        f"title: {name}\nname: {name}\ncorrelation:\n  type: {kind}\n  rules: {rules}\n  group-by: [{group}]\n"
        f"  timespan: 10m\n{condition}level: high\n{extra}"
    )


BRUTE = correlation("event_count", "[failure]", "  condition: {gte: 5}\n", name="brute")
SPRAY = correlation(
    "value_count",
    "[failure]",
    "  condition: {gte: 4, field: userPrincipalName}\n",
    group="ipAddress",
    name="spray",
)


def fail(user: str, ts: float, ip: str = "45.133.1.9"):
    return record({"userPrincipalName": user, "ipAddress": ip, "status": {"errorCode": 50126}}, ts=ts)


def ok(user: str, ts: float, ip: str = "45.133.1.9"):
    return record({"userPrincipalName": user, "ipAddress": ip, "status": {"errorCode": 0}}, ts=ts)


def test_event_count_fires_once_the_count_is_reached_inside_the_window(make_pack) -> None:
    pack = make_pack(FAILURE, BRUTE)
    assert run(pack, [fail("a@x.example", T0 + i * 60) for i in range(4)]).findings == []
    (finding,) = run(pack, [fail("a@x.example", T0 + i * 60) for i in range(5)]).findings
    assert finding.kind == "correlation" and finding.rule_id == "brute" and finding.count == 5
    assert finding.context["group"] == {"userPrincipalName": "a@x.example"}


def test_events_spread_wider_than_the_window_do_not_fire(make_pack) -> None:
    pack = make_pack(FAILURE, BRUTE)
    assert run(pack, [fail("a@x.example", T0 + i * 180) for i in range(5)]).findings == []


def test_out_of_order_arrival_inside_the_window_changes_nothing(make_pack) -> None:
    pack = make_pack(FAILURE, BRUTE)
    events = [fail("a@x.example", T0 + i * 60) for i in range(5)]
    for seed in range(5):
        shuffled = events[:]
        random.Random(seed).shuffle(shuffled)
        engine = DetectionEngine(pack)
        findings = [f for chunk in (shuffled[:2], shuffled[2:]) for f in engine.process(chunk).findings]
        assert len(findings) == 1 and set(findings[0].evidence_event_ids) == {e.id for e in events}


def test_a_window_that_fired_absorbs_later_matches_into_the_same_finding(make_pack) -> None:
    pack = make_pack(FAILURE, BRUTE)
    (finding,) = run(pack, [fail("a@x.example", T0 + i * 30) for i in range(12)]).findings
    assert finding.count == 12 and len(finding.evidence_event_ids) == 12


def test_value_count_counts_distinct_values_per_group(make_pack) -> None:
    pack = make_pack(FAILURE, SPRAY)
    same_user = [fail("a@x.example", T0 + i) for i in range(10)]
    assert run(pack, same_user).findings == []
    (finding,) = run(pack, [fail(f"u{i}@x.example", T0 + i) for i in range(4)]).findings
    assert finding.context["group"] == {"ipAddress": "45.133.1.9"}
    assert len(finding.entities["people"]) == 4


def test_temporal_ordered_needs_the_order_and_the_same_group(make_pack) -> None:
    sequence = correlation("temporal_ordered", "[failure, success]", "")
    pack = make_pack(FAILURE, SUCCESS, sequence)
    assert len(run(pack, [fail("a@x.example", T0), ok("a@x.example", T0 + 60)]).findings) == 1
    assert run(pack, [ok("a@x.example", T0), fail("a@x.example", T0 + 60)]).findings == []
    assert run(pack, [fail("a@x.example", T0), ok("b@x.example", T0 + 60)]).findings == []


def test_temporal_any_order_and_late_member(make_pack) -> None:
    both = correlation("temporal", "[failure, success]", "")
    pack = make_pack(FAILURE, SUCCESS, both)
    engine = DetectionEngine(pack)
    assert engine.process([ok("a@x.example", T0 + 300)]).findings == []
    assert len(engine.process([fail("a@x.example", T0)]).findings) == 1  # arrived late, still inside


def test_correlation_of_a_correlation(make_pack) -> None:
    # generate: true keeps the members' own findings: brute alerts, success is marked signal-only
    after = correlation("temporal_ordered", "[brute, success]", "  generate: true\n", name="after")
    pack = make_pack(FAILURE, SUCCESS + "tenantguard:\n  signal: true\n", BRUTE, after)
    result = run(pack, [*(fail("a@x.example", T0 + i * 10) for i in range(5)), ok("a@x.example", T0 + 120)])
    assert sorted(f.rule_id for f in result.findings) == ["after", "brute"]
    after_finding = next(f for f in result.findings if f.rule_id == "after")
    assert len(after_finding.evidence_event_ids) == 6


def test_members_of_a_correlation_are_signals_unless_it_generates(make_pack) -> None:
    pack = make_pack(FAILURE, BRUTE)
    failure = next(r for r in pack.rules if r.rule_id == "failure")
    assert not failure.emits and failure.used_by == ["brute"]


def test_events_later_than_the_allowed_lateness_are_dropped(make_pack) -> None:
    pack = make_pack(FAILURE, BRUTE)
    engine = DetectionEngine(pack, lateness=600)
    engine.process([fail("z@x.example", T0 + 10_000)])
    assert engine.process([fail("a@x.example", T0 + i) for i in range(5)]).findings == []
    assert engine.correlations.states[0].late_dropped == 5


def test_group_state_is_bounded(make_pack) -> None:
    pack = make_pack(FAILURE, BRUTE)
    engine = DetectionEngine(pack, max_groups=100)
    engine.process([fail(f"u{i}@x.example", T0 + i) for i in range(1000)])
    assert engine.correlations.group_count() <= 100


def test_old_groups_are_swept_as_event_time_moves_on(make_pack) -> None:
    pack = make_pack(FAILURE, BRUTE)
    engine = DetectionEngine(pack, lateness=60)
    engine.process([fail(f"u{i}@x.example", T0 + i) for i in range(50)])
    engine.process([fail("late@x.example", T0 + 3600)])
    assert engine.correlations.group_count() == 1


def test_restart_rebuilds_windows_without_reporting_twice(make_pack) -> None:
    # given a brute force that fired before the restart, and one that was half-way
    pack = make_pack(FAILURE, BRUTE)
    before = [
        *(fail("a@x.example", T0 + i) for i in range(6)),
        *(fail("b@x.example", T0 + i) for i in range(3)),
    ]
    first = DetectionEngine(pack).process(before).findings
    assert [f.context["group"]["userPrincipalName"] for f in first] == ["a@x.example"]
    # when a new engine replays the stored events with emission off, then carries on
    restarted = DetectionEngine(pack)
    assert restarted.warm_up(before).findings == []
    after = restarted.process(
        [fail("a@x.example", T0 + 100), fail("b@x.example", T0 + 101), fail("b@x.example", T0 + 102)]
    )
    # then a's alert is updated under the same identity (not a new one) and b's completes
    by_user = {f.context["group"]["userPrincipalName"]: f for f in after.findings}
    assert (by_user["a@x.example"].dedup_key, by_user["a@x.example"].window_start) == (
        first[0].dedup_key,
        first[0].window_start,
    )
    assert by_user["a@x.example"].count == 7
    assert by_user["b@x.example"].count == 5
