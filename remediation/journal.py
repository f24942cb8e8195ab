"""Every remediation event goes to two places in one transaction: the audit chain and the incident's
timeline (so the responder's story and the tamper-evident record never disagree)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import inspect
from sqlmodel import Session

from core.audit import Actor, AuditAction, record
from core.clock import utcnow
from core.models import RemediationAction, TimelineEntry, TimelineEntryKind

TIMELINE_KIND = TimelineEntryKind.REMEDIATION


def _without_free_text(body: dict[str, Any]) -> dict[str, Any]:
    """The audit chain is not encrypted (its details are hashed into the chain): a comment a person
    typed stays on the timeline (encrypted at rest, core.crypto) and the chain keeps its length."""
    if isinstance(body.get("comment"), str):
        body = {**body, "comment": {"chars": len(body["comment"])}}
    return body


def note(
    session: Session,
    action: RemediationAction,
    event: str,
    actor: Actor,
    title: str,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Record `remediation.<event>` for one step in the audit chain and on its incident's timeline.

    The record's before/after is the step's status before and after this transaction changed it.
    """
    when = at or utcnow()
    state = inspect(action)
    assert state is not None
    changed = state.attrs.status.history.deleted
    before = {"status": str(changed[0]) if changed else action.status}
    body = {
        "event": event,
        "action": action.action,
        "status": action.status,
        "subject": action.subject,
        "target": action.target,
        **(details or {}),
    }
    record(
        session,
        actor=actor,
        action=AuditAction(f"remediation.{event}"),
        object_type="remediation_action",
        object_id=str(action.id),
        details={"incident_id": action.incident_id, **_without_free_text(body)},
        before=before,
        after={"status": action.status},
        at=when,
    )
    if action.incident_id is not None:
        session.add(
            TimelineEntry(
                incident_id=action.incident_id,
                at=when,
                kind=TIMELINE_KIND,
                source="remediation",
                title=title[:1000],
                body=body,
                ref_type="remediation_action",
                ref_id=str(action.id),
                actor=actor.name,
            )
        )
