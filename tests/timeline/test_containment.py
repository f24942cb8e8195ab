"""An incident is contained on its own once every containment step of its plan executed and verified."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.models.audit import AuditRecord
from core.models.enums import TimelineEntryKind
from core.models.incident import Incident, TimelineEntry
from core.models.remediation import RemediationAction
from tests.factories import T0, at
from timeline import build_incidents
from timeline.containment import contain_when_done
from timeline.metrics import compute_metrics

OPENED = T0 + timedelta(minutes=30)
EXECUTED = OPENED + timedelta(minutes=40)


@pytest.fixture
def incident_id(db, settings, make_finding) -> int:
    make_finding("Brute force then success", people=["alice@northwind.example"], ips=["203.0.113.7"])
    make_finding("Inbox rule forwards outside", people=["alice@northwind.example"], first_seen=at(12))
    [found] = build_incidents(db, settings, notify=False, now=OPENED)
    return found


def add_step(
    db,
    incident_id: int,
    action: str,
    *,
    phase: str = "contain",
    status: str = "succeeded",
    verified: bool = True,
) -> int:
    """A plan step as the executor leaves it (status, executed_at, verified_at when read back)."""
    with db.session() as session:
        step = RemediationAction(
            incident_id=incident_id,
            action=action,
            provider="m365",
            target={"user": "alice@northwind.example"},
            subject="alice@northwind.example",
            phase=phase,
            status=status,
            requested_by="principal:erin",
            idempotency_key=f"{incident_id}-{action}-{phase}",
            executed_at=EXECUTED if status in ("succeeded", "failed") else None,
            verified_at=EXECUTED if status == "succeeded" and verified else None,
        )
        session.add(step)
        session.flush()
        return step.id or 0


def status_of(db, incident_id: int) -> str:
    with db.session(readonly=True) as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        return incident.status


def test_every_containment_step_verified_contains_the_incident(db, incident_id) -> None:
    first = add_step(db, incident_id, "revoke_sessions")
    second = add_step(db, incident_id, "remove_inbox_rule")
    add_step(db, incident_id, "reset_password", phase="eradicate", status="proposed")

    assert contain_when_done(db, now=EXECUTED) == [incident_id]

    with db.session(readonly=True) as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None and incident.status == "contained"
        assert incident.contained_at == EXECUTED
        [entry] = session.execute(
            select(TimelineEntry).where(
                TimelineEntry.incident_id == incident_id,
                TimelineEntry.kind == TimelineEntryKind.STATUS,
                TimelineEntry.title == "status new → contained",
            )
        ).scalars()
        assert entry.actor == "system:containment"
        assert entry.body["note"] == (
            "every containment step of the plan executed and verified: "
            f"#{first} revoke_sessions alice@northwind.example; "
            f"#{second} remove_inbox_rule alice@northwind.example"
        )
        audit = (
            session.execute(select(AuditRecord).where(AuditRecord.action == "incident.transitioned"))
            .scalars()
            .all()
        )
        assert [(a.actor, a.details["after"]["status"]) for a in audit] == [
            ("system:containment", "contained")
        ]
    report = compute_metrics(db, T0 - timedelta(days=1), now=EXECUTED + timedelta(hours=1))
    assert report.mttc.mean_seconds == (EXECUTED - OPENED).total_seconds()
    # once contained, a second look changes nothing
    assert contain_when_done(db, now=EXECUTED + timedelta(minutes=5)) == []


@pytest.mark.parametrize(
    ("status", "verified"),
    [
        ("approved", False),
        ("failed", False),
        ("rejected", False),
        ("rolled_back", False),
        ("succeeded", False),
    ],
)
def test_a_containment_step_not_done_and_verified_keeps_the_incident_open(
    db, incident_id, status, verified
) -> None:
    add_step(db, incident_id, "revoke_sessions")
    add_step(db, incident_id, "remove_inbox_rule", status=status, verified=verified)
    assert contain_when_done(db, [incident_id], now=EXECUTED) == []
    assert status_of(db, incident_id) == "new"


def test_a_plan_without_containment_steps_contains_nothing(db, incident_id) -> None:
    add_step(db, incident_id, "reset_password", phase="eradicate")
    assert contain_when_done(db, now=EXECUTED) == []
    assert status_of(db, incident_id) == "new"


def test_an_incident_already_resolved_is_left_alone(db, incident_id) -> None:
    from core.audit import Actor, Channel
    from timeline.lifecycle import transition

    transition(db, incident_id, "resolved", actor=Actor("principal:erin", Channel.CLI), at=OPENED)
    add_step(db, incident_id, "revoke_sessions")
    assert contain_when_done(db, now=EXECUTED) == []
    assert status_of(db, incident_id) == "resolved"
