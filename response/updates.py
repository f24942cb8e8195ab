"""Stakeholder updates: written per audience from a template, on a cadence by priority, with
reminders when one is due; a public (customer) update shows on the status page only once someone
else, allowed to publish, approved its wording.

Audiences: ``responders`` and ``executives`` are internal and published when written;
``customers`` is public wording: written as a draft, published by a second person holding
``status:publish`` (four eyes). Every update, approval and reminder is a timeline line and an
audit record in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sqlmodel import Session, col, select

from core.audit import Actor, AuditAction
from core.clock import as_utc, utcnow
from core.db import Database
from core.errors import IncidentNotFoundError
from core.models.enums import IncidentStatus, Priority
from core.models.incident import Incident
from core.models.response import IncidentResponse, StakeholderUpdate
from core.redaction import redact_typed
from response.config import ResponseConfig
from response.errors import ResponseInputError
from response.journal import DRILL_MARK, note, state_for
from response.templates import template

OPEN = {IncidentStatus.NEW, IncidentStatus.TRIAGED, IncidentStatus.CONTAINED}
MAX_TEXT = 4000


class Audience(StrEnum):
    RESPONDERS = "responders"
    EXECUTIVES = "executives"
    CUSTOMERS = "customers"


class PublicState(StrEnum):
    """Status-page incident states (Atlassian Statuspage's)."""

    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


@dataclass
class UpdatesReport:
    reminders: list[int] = field(default_factory=list)
    posted: int = 0


def cadence(config: ResponseConfig, priority: str) -> timedelta | None:
    minutes = config.updates.cadence_minutes.get(Priority(priority)) if priority in set(Priority) else None
    return timedelta(minutes=minutes) if minutes else None


def render(incident: Incident, audience: Audience, text: str, config: ResponseConfig, drill: bool) -> str:
    every = cadence(config, incident.priority)
    return (
        template(f"update_{audience.value}.md.j2")
        .render(
            incident=incident,
            text=text,
            mark=DRILL_MARK if drill else "",
            cadence=f"{every.total_seconds() / 60:.0f} minutes" if every else "the next change",
        )
        .strip()
    )


def write_update(
    session: Session,
    incident_id: int,
    *,
    audience: str,
    text: str,
    actor: Actor,
    config: ResponseConfig,
    state: str = PublicState.INVESTIGATING,
    components: list[str] | None = None,
    now: datetime | None = None,
) -> StakeholderUpdate:
    """Write an update (internal audiences are published at once; customers' waits for approval)."""
    when = as_utc(now or utcnow())
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise IncidentNotFoundError(f"incident {incident_id} does not exist")
    try:
        who = Audience(audience)
        public_state = PublicState(state)
    except ValueError:
        raise ResponseInputError(
            f"audience {audience!r} / state {state!r}: audiences are {', '.join(Audience)}; "
            f"states are {', '.join(PublicState)}"
        ) from None
    clean = redact_typed(text.strip())[:MAX_TEXT]
    if not clean:
        raise ResponseInputError("the update has no text")
    known = {c.name for c in config.status_page.components}
    unknown = sorted(set(components or []) - known)
    if unknown:
        raise ResponseInputError(f"unknown components {unknown}; the status page lists {sorted(known)}")
    response = state_for(session, incident_id)
    public = who is Audience.CUSTOMERS
    update = StakeholderUpdate(
        incident_id=incident_id,
        audience=who,
        public=public,
        state=public_state,
        components=list(components or []),
        body=render(incident, who, clean, config, response.drill),
        author=actor.name,
        status="draft" if public else "published",
        created_at=when,
        published_at=None if public else when,
    )
    session.add(update)
    session.flush()
    _next_due(response, incident, config, when)
    session.add(response)
    note(
        session,
        incident_id,
        action=AuditAction.RESPONSE_UPDATE_WRITTEN,
        title=f"{who.value.capitalize()} update written by {actor.name}"
        + (" (awaits approval)" if public else ""),
        details={"update": update.id, "audience": who.value, "public": public, "state": public_state.value},
        actor=actor,
        at=when,
        drill=response.drill,
        ref=("stakeholder_update", str(update.id)),
    )
    return update


def publish_update(
    session: Session, update_id: int, *, actor: Actor, now: datetime | None = None
) -> StakeholderUpdate:
    """Approve a public update's wording: it shows on the status page from now on (four eyes)."""
    when = as_utc(now or utcnow())
    update = session.get(StakeholderUpdate, update_id)
    if update is None:
        raise ResponseInputError(f"no stakeholder update {update_id}")
    if update.status == "published":
        return update
    if update.author == actor.name:
        raise ResponseInputError(
            f"{actor.name} wrote update {update_id}: someone else must approve public wording"
        )
    response = state_for(session, update.incident_id)
    update.status, update.approved_by, update.published_at = "published", actor.name, when
    session.add(update)
    note(
        session,
        update.incident_id,
        action=AuditAction.RESPONSE_UPDATE_PUBLISHED,
        title=f"Public update approved by {actor.name}"
        + (" (a drill: kept off the status page)" if response.drill else "; on the status page"),
        details={"update": update.id, "author": update.author, "state": update.state},
        actor=actor,
        at=when,
        drill=response.drill,
        ref=("stakeholder_update", str(update.id)),
    )
    return update


def _next_due(response: IncidentResponse, incident: Incident, config: ResponseConfig, when: datetime) -> None:
    every = cadence(config, incident.priority)
    response.update_due_at = when + every if every and incident.status in OPEN else None
    response.updated_at = when


def remind_due(db: Database, config: ResponseConfig, now: datetime | None = None) -> UpdatesReport:
    """Start each open incident's cadence, and remind (once per due time) when an update is late."""
    from response.channels import post_to_channel, slack_client
    from response.errors import ChannelError

    when = as_utc(now or utcnow())
    report = UpdatesReport()
    with db.session(readonly=True) as session:
        ids = session.exec(
            select(Incident.id).where(
                col(Incident.status).in_([s.value for s in OPEN]),
                col(Incident.priority).in_([p.value for p in config.updates.cadence_minutes]),
                col(Incident.merged_into_id).is_(None),
            )
        ).all()
    for incident_id in (i for i in ids if i is not None):
        with db.session() as session:
            incident = session.get(Incident, incident_id)
            if incident is None:
                continue
            response = state_for(session, incident_id)
            if response.update_due_at is None:
                _next_due(response, incident, config, as_utc(incident.created_at))
                session.add(response)
            due = response.update_due_at
            if due is None or as_utc(due) > when:
                continue
            if response.reminded_at is not None and as_utc(response.reminded_at) >= as_utc(due):
                continue
            late = int((when - as_utc(due)).total_seconds() // 60)
            text = f"A stakeholder update for incident #{incident.id} ({incident.priority}) is due" + (
                f" ({late} min late)" if late else ""
            )
            if response.channel_id:
                try:
                    post_to_channel(slack_client(session, config), response, f":alarm_clock: {text}")
                except ChannelError as exc:  # the reminder still goes on the timeline
                    text += f" (not posted in the channel: {exc})"
            response.reminded_at = when
            session.add(response)
            note(
                session,
                incident_id,
                action=AuditAction.RESPONSE_UPDATE_DUE,
                title=text,
                details={"due_at": as_utc(due).isoformat(), "late_minutes": late},
                at=when,
                drill=response.drill,
            )
            report.reminders.append(incident_id)
    return report


def updates_of(session: Session, incident_id: int) -> list[StakeholderUpdate]:
    return list(
        session.exec(
            select(StakeholderUpdate)
            .where(StakeholderUpdate.incident_id == incident_id)
            .order_by(col(StakeholderUpdate.id))
        ).all()
    )
