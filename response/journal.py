"""Response lines on the incident's timeline, written beside their audit record in one transaction.

`note` is what every response step calls: one timeline entry (kind ``response``) and one audit
record, so the timeline and the audit chain tell the same story. The state a response part keeps
per incident is its :class:`IncidentResponse` row (`state_for`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from core.audit import Actor, AuditAction, record
from core.clock import utcnow
from core.models.enums import TimelineEntryKind
from core.models.incident import Incident, TimelineEntry
from core.models.response import Drill, IncidentResponse

RESPONSE_ACTOR = Actor.system("response")
DRILL_MARK = "[DRILL] "


def state_for(session: Session, incident_id: int) -> IncidentResponse:
    """The incident's response row, created (and marked a drill when a drill opened it) on first use.

    Raises IncidentNotFoundError for an incident that does not exist (never a row pointing nowhere)."""
    row = session.exec(select(IncidentResponse).where(IncidentResponse.incident_id == incident_id)).first()
    if row is None:
        if session.get(Incident, incident_id) is None:
            from core.errors import IncidentNotFoundError

            raise IncidentNotFoundError(f"incident {incident_id} does not exist")
        drill = session.exec(select(Drill.id).where(Drill.incident_id == incident_id)).first()
        row = IncidentResponse(incident_id=incident_id, drill=drill is not None)
        session.add(row)
        session.flush()
    return row


def note(
    session: Session,
    incident_id: int,
    *,
    action: AuditAction,
    title: str,
    details: dict[str, Any],
    actor: Actor = RESPONSE_ACTOR,
    at: datetime | None = None,
    drill: bool = False,
    ref: tuple[str, str] | None = None,
) -> None:
    when = at or utcnow()
    details = {**details, "drill": True} if drill else details
    session.add(
        TimelineEntry(
            incident_id=incident_id,
            at=when,
            kind=TimelineEntryKind.RESPONSE,
            source="response",
            title=((DRILL_MARK if drill else "") + title)[:1000],
            body=details,
            ref_type=ref[0] if ref else None,
            ref_id=ref[1][:200] if ref else None,
            actor=actor.name[:200],
        )
    )
    record(
        session,
        actor=actor,
        action=action,
        object_type="incident",
        object_id=incident_id,
        details=details,
        at=when,
    )
