"""Retention: the pipeline's retention stage deletes each class of data older than its setting, with
an audit record per batch, keeps everything when none is set, and never deletes what a legal hold
covers; audit retention truncates the chain behind a checkpoint that keeps it verifiable."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from compliance.errors import HoldNotFoundError, NotPermittedError
from compliance.holds import list_holds, place_hold, release_hold
from compliance.retention import apply_retention
from core.audit import Actor, AuditAction, Channel, record, verify_database
from core.models import (
    Approval,
    AuditCheckpoint,
    AuditRecord,
    Escalation,
    Event,
    Finding,
    Incident,
    Message,
    Page,
    RemediationAction,
    TimelineEntry,
)
from core.settings import RetentionSettings
from pipeline.stages import SCHEDULER_ACTOR, STAGES, StageContext, retention_stage

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _events(db, ages_in_days: list[float]) -> None:
    with db.session() as session:
        for n, age in enumerate(ages_in_days):
            session.add(
                Event(
                    provider="m365",
                    stream="audit",
                    provider_event_id=f"e{n}",
                    occurred_at=NOW - timedelta(days=age),
                    action="UserLoggedIn",
                )
            )


def _ages(db) -> list[int]:
    with db.session(readonly=True) as session:
        return sorted(
            round((NOW - e.occurred_at).total_seconds() / 86400) for e in session.exec(select(Event))
        )


def test_the_retention_stage_deletes_old_events_and_audits_it(db, settings) -> None:
    assert "retention" in [stage.name for stage in STAGES]
    _events(db, [1, 10, 29, 31, 45, 400])
    configured = settings.model_copy(update={"event_retention_days": 30})
    result = retention_stage(db, configured, SCHEDULER_ACTOR, StageContext(now=NOW))
    assert result.counts == {"events_deleted": 3}
    assert _ages(db) == [1, 10, 29]
    with db.session(readonly=True) as session:
        [audit] = session.exec(select(AuditRecord).where(AuditRecord.action == "events.purged")).all()
    assert audit.details["deleted"] == 3
    # a second run has nothing to do
    again = retention_stage(db, configured, SCHEDULER_ACTOR, StageContext(now=NOW))
    assert again.skipped and again.counts == {}


def test_zero_days_keeps_everything(db, settings) -> None:
    _events(db, [1, 4000])
    result = retention_stage(db, settings, SCHEDULER_ACTOR, StageContext(now=NOW))
    assert result.skipped
    assert _ages(db) == [1, 4000]


# ---------------------------------------------------------------- every class, legal holds, audit

LATER = datetime.now(UTC) + timedelta(days=1)  # every audit record a test writes is older than this
OLD = LATER - timedelta(days=40)
RECENT = LATER - timedelta(days=2)
HELD_PERSON = "bob@northwind.example"


def _retention(settings, **periods):
    values = {"messages": "30d", "findings": "30d", "incidents": "30d", **periods}
    return settings.model_copy(update={"event_retention_days": 30, "retention": RetentionSettings(**values)})


def _message(session, n: int, author: str, sent_at: datetime) -> Message:
    row = Message(
        provider="slack", stream="messages", provider_message_id=f"m{n}", author=author, sent_at=sent_at
    )
    session.add(row)
    session.flush()
    return row


def _event(session, n: int, actor: str, occurred_at: datetime) -> Event:
    row = Event(
        provider="m365", stream="signins", provider_event_id=f"x{n}", occurred_at=occurred_at, actor=actor
    )
    session.add(row)
    session.flush()
    return row


@dataclass
class World:
    held_incident: int
    free_incident: int
    open_incident: int
    ids: dict[str, int]


def _world(db, make_incident, make_finding, officer) -> World:
    """Old and recent data of every class; one closed incident and one person on legal hold."""
    closed = {"status": "closed", "closed_at": OLD, "updated_at": OLD}
    held = make_incident("held", first_seen=OLD, **closed).id
    free = make_incident("free", first_seen=OLD, people=["carol@northwind.example"], **closed).id
    still_open = make_incident("open", first_seen=OLD, people=["dave@northwind.example"], updated_at=OLD).id
    ids: dict[str, int] = {}
    with db.session() as session:
        ids["event_evidence"] = _event(session, 1, "erin@northwind.example", OLD).id
        ids["event_bob"] = _event(session, 2, HELD_PERSON, OLD).id
        ids["event_old"] = _event(session, 3, "carol@northwind.example", OLD).id
        ids["event_recent"] = _event(session, 4, "carol@northwind.example", RECENT).id
        ids["msg_timeline"] = _message(session, 1, "erin@northwind.example", OLD).id
        ids["msg_bob"] = _message(session, 2, HELD_PERSON, OLD).id
        ids["msg_old"] = _message(session, 3, "carol@northwind.example", OLD).id
        ids["msg_recent"] = _message(session, 4, "carol@northwind.example", RECENT).id
        session.add(
            TimelineEntry(
                incident_id=held, at=OLD, kind="message", source="slack/messages", title="message",
                ref_type="message", ref_id=str(ids["msg_timeline"]), dedup_key=f"message:{ids['msg_timeline']}",
            )
        )  # fmt: skip
        session.add(TimelineEntry(incident_id=free, at=OLD, kind="note", source="analyst", title="note"))
        step = RemediationAction(incident_id=free, action="revoke_sessions", provider="m365", phase="contain",
                                 requested_by="principal:ann", idempotency_key=f"free-{free}")  # fmt: skip
        escalation = Escalation(incident_id=free, policy="default")
        session.add_all([step, escalation])
        session.flush()
        session.add(Approval(action_id=step.id, principal="principal:bo", decision="approve"))
        session.add(
            Page(escalation_id=escalation.id, incident_id=free, medium="sms", idempotency_key=f"p-{free}")
        )
        record(session, actor=officer, action=AuditAction.INCIDENT_NOTE_ADDED, object_type="incident",
               object_id=held, details={"note": "kept for the case"})  # fmt: skip
    ids["finding_held"] = make_finding(incident_id=held, last_seen=OLD, evidence=[ids["event_evidence"]]).id
    ids["finding_free"] = make_finding(incident_id=free, last_seen=OLD).id
    ids["finding_open"] = make_finding(incident_id=still_open, last_seen=OLD).id
    ids["finding_bob"] = make_finding(people=[HELD_PERSON], last_seen=OLD).id
    ids["finding_old"] = make_finding(people=["carol@northwind.example"], last_seen=OLD).id
    ids["finding_recent"] = make_finding(people=["carol@northwind.example"], last_seen=RECENT).id
    with db.session() as session:
        place_hold(
            session,
            "incident",
            str(held),
            reason="litigation 2026-17",
            actor=officer,
            role="compliance_officer",
        )
        place_hold(
            session, "person", HELD_PERSON, reason="HR case 44", actor=officer, role="compliance_officer"
        )
    return World(held, free, still_open, ids)


def _present(db, model, row_id) -> bool:
    with db.session(readonly=True) as session:
        return session.get(model, row_id) is not None


def test_retention_deletes_what_is_due_and_nothing_on_hold(db, settings, make_incident, make_finding) -> None:
    officer = Actor("principal:olga", Channel.CLI)
    world = _world(db, make_incident, make_finding, officer)
    report = apply_retention(db, _retention(settings), actor=SCHEDULER_ACTOR, now=LATER)

    assert report.deleted == {"incidents": 1, "findings": 2, "messages": 1, "events": 1}
    assert report.held == {"incidents": 1, "findings": 1, "messages": 2, "events": 2}
    ids = world.ids
    # on hold, or not yet due: kept
    assert _present(db, Incident, world.held_incident) and _present(db, Incident, world.open_incident)
    for name in ("finding_held", "finding_open", "finding_bob", "finding_recent"):
        assert _present(db, Finding, ids[name]), name
    for name in ("msg_timeline", "msg_bob", "msg_recent"):
        assert _present(db, Message, ids[name]), name
    for name in ("event_evidence", "event_bob", "event_recent"):
        assert _present(db, Event, ids[name]), name
    # due: gone, the free incident with its timeline; its finding was set free and aged out too
    assert not _present(db, Incident, world.free_incident)
    assert not _present(db, Finding, ids["finding_free"]) and not _present(db, Finding, ids["finding_old"])
    assert not _present(db, Message, ids["msg_old"]) and not _present(db, Event, ids["event_old"])
    with db.session(readonly=True) as session:
        assert not session.exec(
            select(TimelineEntry).where(TimelineEntry.incident_id == world.free_incident)
        ).all()
        tombstones = session.exec(select(AuditRecord).where(AuditRecord.action == "data.purged")).all()
        assert {t.details["class"] for t in tombstones} == {"incidents", "findings", "messages"}
        assert next(t for t in tombstones if t.details["class"] == "incidents").details["ids"] == [
            world.free_incident
        ]
        assert verify_database(session).ok


def test_a_released_hold_lets_the_next_pass_delete(db, settings, make_incident, make_finding) -> None:
    officer = Actor("principal:olga", Channel.CLI)
    world = _world(db, make_incident, make_finding, officer)
    configured = _retention(settings)
    apply_retention(db, configured, actor=SCHEDULER_ACTOR, now=LATER)
    with db.session() as session:
        for hold in list_holds(session, active_only=True):
            release_hold(session, hold.id, reason="case closed", actor=officer, role="admin")
    report = apply_retention(db, configured, actor=SCHEDULER_ACTOR, now=LATER)
    assert report.held == {}
    assert report.deleted == {"incidents": 1, "findings": 2, "messages": 2, "events": 2}
    assert not _present(db, Incident, world.held_incident)
    with db.session(readonly=True) as session:
        actions = [r.action for r in session.exec(select(AuditRecord).order_by(AuditRecord.seq))]
        assert actions.count("legal_hold.placed") == 2 and actions.count("legal_hold.released") == 2


def test_audit_retention_truncates_verifiably_and_stops_at_a_held_record(
    db, settings, make_incident, make_finding
) -> None:
    officer = Actor("principal:olga", Channel.CLI)
    with db.session() as session:
        for n in range(5):
            record(session, actor=officer, action=AuditAction.INCIDENT_NOTE_ADDED, object_type="incident",
                   object_id=999, details={"n": n})  # fmt: skip
    world = _world(db, make_incident, make_finding, officer)
    with db.session(readonly=True) as session:
        held_seq = session.exec(
            select(AuditRecord.seq).where(AuditRecord.object_type == "incident",
                                          AuditRecord.object_id == str(world.held_incident))
        ).one()  # fmt: skip
    report = apply_retention(db, _retention(settings, audit="1h"), actor=SCHEDULER_ACTOR, now=LATER)

    assert report.deleted["audit"] == held_seq - 1
    with db.session(readonly=True) as session:
        first = session.exec(select(AuditRecord).order_by(AuditRecord.seq).limit(1)).one()
        assert first.seq == held_seq  # the first record about the held incident survives, and all after it
        [checkpoint] = session.exec(select(AuditCheckpoint)).all()
        assert checkpoint.up_to_seq == held_seq - 1 and checkpoint.anchor_hash == first.prev_hash
        truncated = session.get(AuditRecord, checkpoint.record_seq)
        assert truncated.action == "audit.truncated" and truncated.details["up_to_seq"] == held_seq - 1
        assert verify_database(session).ok
    # a record above the checkpoint cannot be deleted: the chain stays append-only there
    with pytest.raises(DBAPIError), db.session() as session:
        session.exec(delete(AuditRecord).where(AuditRecord.seq == held_seq))
    # nor can the checkpoint be changed (a forged one is caught by its signature: tests/security)
    with pytest.raises(DBAPIError), db.session() as session:
        row = session.get(AuditCheckpoint, held_seq - 1)
        row.anchor_hash = "f" * 64
        session.add(row)
    with db.session(readonly=True) as session:
        assert verify_database(session).ok


def test_a_hold_needs_the_legal_hold_permission(db, make_incident) -> None:
    incident = make_incident()
    with pytest.raises(NotPermittedError, match="legal_hold:write"), db.session() as session:
        place_hold(
            session,
            "incident",
            str(incident.id),
            reason="because",
            actor=Actor.cli("principal:ann"),
            role="analyst",
        )
    # an id that is no incident, a digit int() refuses (found by schemathesis: a 500), one past 64 bits
    for target in ("424242", "\u00b9", "9" * 30):
        with pytest.raises(HoldNotFoundError), db.session() as session:
            place_hold(
                session, "incident", target, reason="because", actor=Actor.cli("principal:ann"), role="admin"
            )
