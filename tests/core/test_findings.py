"""The one finding store: one dedup rule, one evidence cap, an audit record for every change."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlmodel import select

from core.audit import Actor, Channel
from core.findings import MAX_EVIDENCE, FindingDraft, resolve_findings, store_finding
from core.models import AuditRecord, Finding

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _draft(**overrides) -> FindingDraft:
    fields = {
        "rule_id": "posture.mfa",
        "kind": "posture",
        "severity": "medium",
        "title": "MFA is off",
        "description": "",
        "dedup_key": "posture:mfa:1",
        "first_seen": T0,
        "last_seen": T0,
    }
    return FindingDraft(**(fields | overrides))


def _actions(session) -> list[str]:
    return list(session.exec(select(AuditRecord.action).order_by(AuditRecord.seq)).all())


def test_a_repeated_draft_is_one_finding_and_every_change_is_audited_in_the_same_transaction(db) -> None:
    # given a posture finding stored once
    with db.session() as session:
        first, created = store_finding(session, _draft(), actor=Actor("system:test", Channel.CLI))
        assert created
    # when it is seen again with more evidence, then only re-asserted, then resolved
    with db.session() as session:
        again, created = store_finding(
            session,
            _draft(last_seen=T0 + timedelta(hours=1), evidence_event_ids=(1, 2)),
            actor=Actor("system:test", Channel.CLI),
        )
        assert not created and again.id == first.id and again.count == 2
        store_finding(
            session,
            _draft(last_seen=T0 + timedelta(hours=2)),
            actor=Actor("system:test", Channel.CLI),
            count_repeats=False,
        )
        assert (
            resolve_findings(
                session, ["posture:mfa:1"], reason="passes", actor=Actor("system:test", Channel.CLI)
            )
            == 1
        )
    # then there is one finding, and one audit record per change (the bare re-assertion is none)
    with db.session(readonly=True) as session:
        rows = session.exec(select(Finding)).all()
        assert [(f.status, f.count, f.evidence_event_ids) for f in rows] == [("resolved", 2, [1, 2])]
        assert _actions(session) == ["finding.created", "finding.updated", "finding.resolved"]
    # and a resolved finding is not continued: the setting failing again is a new finding
    with db.session() as session:
        _, created = store_finding(
            session, _draft(first_seen=T0 + timedelta(hours=3)), actor=Actor("system:test", Channel.CLI)
        )
        assert created


def test_a_windowed_alert_continues_only_its_window_and_keeps_its_count_and_highest_severity(db) -> None:
    alert = _draft(rule_id="sigma.spray", kind="detection", dedup_key="sigma.spray|u", window_start=1.0)
    with db.session() as session:
        store_finding(session, alert, actor=Actor("system:test", Channel.CLI))
        grown = replace(alert, count=12, severity="high", last_seen=T0 + timedelta(minutes=5))
        _, created = store_finding(session, grown, actor=Actor("system:test", Channel.CLI))
        assert not created
        later = replace(alert, count=3, severity="low", last_seen=T0 + timedelta(minutes=6))
        store_finding(session, later, actor=Actor("system:test", Channel.CLI))
        other_window = replace(alert, window_start=7200.0)
        _, created = store_finding(session, other_window, actor=Actor("system:test", Channel.CLI))
        assert created
    with db.session(readonly=True) as session:
        rows = session.exec(select(Finding).order_by(Finding.id)).all()
        assert [(f.count, f.severity, f.context["window_start"]) for f in rows] == [
            (12, "high", 1.0),
            (1, "medium", 7200.0),
        ]


def test_stored_evidence_is_capped_and_keeps_only_event_ids(db) -> None:
    ids = (*range(1, MAX_EVIDENCE + 50), "7#1")
    with db.session() as session:
        finding, _ = store_finding(
            session, _draft(evidence_event_ids=ids), actor=Actor("system:test", Channel.CLI)
        )
        assert finding.evidence_event_ids == list(range(1, MAX_EVIDENCE + 1))


def _stored(session) -> list[tuple]:
    rows = session.exec(select(Finding).order_by(Finding.id)).all()
    return [
        (
            f.rule_id,
            f.dedup_key,
            f.severity,
            f.count,
            f.title,
            f.evidence_event_ids,
            f.first_seen,
            f.last_seen,
        )
        for f in rows
    ]


def _audit(session) -> list[tuple]:
    rows = session.exec(select(AuditRecord).order_by(AuditRecord.seq)).all()
    return [(r.action, r.object_id, {k: v for k, v in r.details.items()}) for r in rows]


def test_bulk_store_leaves_what_one_draft_at_a_time_leaves(db, tmp_path) -> None:
    from core.db import Database
    from core.findings import store_findings

    actor = Actor("system:test", Channel.SCHEDULER)
    window = T0.timestamp()
    drafts = [
        # an alert window that grows inside the batch, and a second window of the same key
        _draft(
            rule_id="sigma.a",
            kind="rule",
            dedup_key="u1",
            window_start=window,
            count=1,
            evidence_event_ids=(1,),
        ),
        _draft(
            rule_id="sigma.a",
            kind="rule",
            dedup_key="u1",
            window_start=window,
            count=3,
            severity="high",
            last_seen=T0 + timedelta(minutes=5),
            evidence_event_ids=(1, 2, 3),
        ),
        _draft(
            rule_id="sigma.a",
            kind="rule",
            dedup_key="u1",
            window_start=window + 3600,
            first_seen=T0 + timedelta(hours=1),
            last_seen=T0 + timedelta(hours=1),
            evidence_event_ids=(9,),
        ),
        # an unwindowed finding seen three times (once beyond the dedup period: a new one)
        _draft(dedup_key="p1"),
        _draft(dedup_key="p1", last_seen=T0 + timedelta(hours=2), evidence_event_ids=(4,)),
        _draft(dedup_key="p1", first_seen=T0 + timedelta(days=3), last_seen=T0 + timedelta(days=3)),
        # a draft that reaches back before its finding's start
        _draft(dedup_key="p2", first_seen=T0 + timedelta(hours=1), last_seen=T0 + timedelta(hours=1)),
        _draft(dedup_key="p2", first_seen=T0 - timedelta(hours=1), last_seen=T0 + timedelta(hours=3)),
    ]
    one_by_one = Database(f"sqlite:///{tmp_path / 'one.db'}")
    one_by_one.upgrade()
    outcomes = []
    for target, bulk in ((one_by_one, False), (db, True)):
        with target.session() as session:  # one finding stored before, in an earlier batch
            store_finding(session, _draft(dedup_key="p2", last_seen=T0), actor=actor)
        with target.session() as session:
            if bulk:
                created = [c for _, c in store_findings(session, drafts, actor=actor)]
            else:
                created = [store_finding(session, d, actor=actor).created for d in drafts]
        with target.session(readonly=True) as session:
            outcomes.append((created, _stored(session), _audit(session)))
    one_by_one.dispose()
    assert outcomes[0] == outcomes[1]
    assert outcomes[1][0] == [True, False, True, True, False, True, False, False]
