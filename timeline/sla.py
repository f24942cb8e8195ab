"""Due dates by priority, and whether an incident met them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from core.models.enums import IncidentStatus, Priority
from core.models.incident import Incident
from timeline.config import DEFAULT_SLA, TimelineConfig


class SlaState(StrEnum):
    MET = "met"
    BREACHED = "breached"
    PENDING = "pending"
    NOT_APPLICABLE = "not_applicable"


def set_due_dates(incident: Incident, config: TimelineConfig) -> None:
    """Acknowledge-by and resolve-by, counted from when the incident was opened."""
    target = config.sla.get(Priority(incident.priority), DEFAULT_SLA[Priority.P4])
    incident.ack_due_at = incident.created_at + target.acknowledge
    incident.due_at = incident.created_at + target.resolve


def _state(done_at: datetime | None, due_at: datetime | None, now: datetime) -> SlaState:
    if due_at is None:
        return SlaState.NOT_APPLICABLE
    if done_at is not None:
        return SlaState.MET if done_at <= due_at else SlaState.BREACHED
    return SlaState.BREACHED if now > due_at else SlaState.PENDING


def resolve_sla(incident: Incident, now: datetime) -> SlaState:
    """Resolution SLA: resolved (or closed) by the due date. False positives and duplicates do not count."""
    if incident.status in (IncidentStatus.FALSE_POSITIVE, IncidentStatus.DUPLICATE):
        return SlaState.NOT_APPLICABLE
    return _state(incident.resolved_at or incident.closed_at, incident.due_at, now)


def acknowledge_sla(incident: Incident, now: datetime) -> SlaState:
    if incident.status == IncidentStatus.DUPLICATE:
        return SlaState.NOT_APPLICABLE
    return _state(incident.acknowledged_at, incident.ack_due_at, now)
