"""From matches to findings: dedup key and period, thresholds, titles, entities, MITRE, runbook."""

from __future__ import annotations

from tests.detectors.sigma.conftest import record, rule_yaml, run

HOUR = 3600.0
T0 = 1_800_000_000.0

LEGACY = rule_yaml(
    "selection:\n  clientAppUsed: IMAP4\ncondition: selection",
    name="legacy",
    extra="""
    tags: [attack.initial_access, attack.t1078.004]
    tenantguard:
      title: "{userPrincipalName} used {clientAppUsed} from {ipAddress}"
      context: [ipAddress, location.countryOrRegion]
      runbook: "1. Block legacy auth."
    """,
)


def _signin(user: str, ts: float, **extra: object):
    return record(
        {"userPrincipalName": user, "clientAppUsed": "IMAP4", "ipAddress": "45.133.1.9", **extra}, ts=ts
    )


def test_matches_inside_the_dedup_period_become_one_finding_with_a_count(make_pack) -> None:
    pack = make_pack(LEGACY)
    result = run(pack, [_signin("a@x.example", T0 + i * 60) for i in range(3)])
    (finding,) = result.findings
    assert finding.count == 3
    assert len(finding.evidence_event_ids) == 3
    assert finding.title == "a@x.example used IMAP4 from 45.133.1.9"
    assert finding.severity == "medium" and finding.kind == "detection" and finding.provider == "m365"
    assert finding.mitre == ("T1078.004",)
    assert finding.runbook == "1. Block legacy auth."
    assert finding.entities == {"people": ["a@x.example"], "ips": ["45.133.1.9"]}
    assert finding.context["fields"] == {"ipAddress": "45.133.1.9"}
    assert finding.context["tactics"] == ["initial_access"]


def test_each_user_gets_its_own_finding_by_default(make_pack) -> None:
    pack = make_pack(LEGACY)
    result = run(
        pack, [_signin("a@x.example", T0), _signin("B@x.example", T0 + 1), _signin("b@x.example", T0 + 2)]
    )
    assert sorted(f.count for f in result.findings) == [1, 2]  # the dedup key is case-insensitive


def test_a_match_after_the_period_opens_a_new_finding(make_pack) -> None:
    pack = make_pack(LEGACY)
    result = run(pack, [_signin("a@x.example", T0), _signin("a@x.example", T0 + 2 * HOUR)])
    assert len(result.findings) == 2
    assert len({f.window_start for f in result.findings}) == 2


def test_threshold_fires_only_once_reached(make_pack) -> None:
    pack = make_pack(LEGACY.replace("tenantguard:\n", "tenantguard:\n  threshold: 3\n  dedup: [ipAddress]\n"))
    assert run(pack, [_signin(f"u{i}@x.example", T0 + i) for i in range(2)]).findings == []
    (finding,) = run(pack, [_signin(f"u{i}@x.example", T0 + i) for i in range(3)]).findings
    assert finding.count == 3
    assert set(finding.entities["people"]) == {"u0@x.example", "u1@x.example", "u2@x.example"}


def test_threshold_of_distinct_values(make_pack) -> None:
    pack = make_pack(
        LEGACY.replace(
            "tenantguard:\n",
            "tenantguard:\n  threshold: 3\n  unique: userPrincipalName\n  dedup: [ipAddress]\n",
        )
    )
    same_user = [_signin("u@x.example", T0 + i) for i in range(5)]
    assert run(pack, same_user).findings == []
    (finding,) = run(pack, [_signin(f"u{i % 3}@x.example", T0 + i) for i in range(5)]).findings
    assert finding.context["distinct_count"] == 3


def test_an_alert_that_grows_across_batches_is_reported_again_with_the_same_identity(make_pack) -> None:
    from detectors.sigma.engine import DetectionEngine

    engine = DetectionEngine(make_pack(LEGACY))
    first = engine.process([_signin("a@x.example", T0)]).findings
    second = engine.process([_signin("a@x.example", T0 + 60)]).findings
    assert [f.count for f in first] == [1] and [f.count for f in second] == [2]
    assert (first[0].dedup_key, first[0].window_start) == (second[0].dedup_key, second[0].window_start)


def test_signal_only_rules_do_not_alert(make_pack) -> None:
    pack = make_pack(LEGACY.replace("tenantguard:\n", "tenantguard:\n  signal: true\n"))
    assert run(pack, [_signin("a@x.example", T0)]).findings == []


def test_missing_title_fields_show_a_question_mark(make_pack) -> None:
    pack = make_pack(LEGACY)
    event = record({"userPrincipalName": "a@x.example", "clientAppUsed": "IMAP4"}, ts=T0)
    assert run(pack, [event]).findings[0].title == "a@x.example used IMAP4 from ?"
