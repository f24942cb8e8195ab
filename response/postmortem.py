"""The postmortem, drafted from the incident's timeline with a Jinja2 template (Markdown or HTML).

Impact, root cause and lessons are the analyst's words (``timeline.lifecycle.set_postmortem``);
detection and response times come from the incident's lifecycle stamps; contributing factors are
its findings; action items are its remediation steps (done when they succeeded) and any
follow-up lines; the timeline is every entry, conversation excerpts left out. A resolved incident
gets its draft once by itself (the response stage); asking again redrafts it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from core.audit import Actor, AuditAction
from core.clock import as_utc, isoformat, utcnow
from core.db import Database
from core.errors import IncidentNotFoundError
from core.models.enums import ActionStatus, IncidentStatus, TimelineEntryKind
from core.models.finding import Finding
from core.models.incident import Incident, TimelineEntry
from core.models.remediation import RemediationAction
from core.models.response import IncidentResponse
from response.config import ResponseConfig
from response.journal import DRILL_MARK, RESPONSE_ACTOR, note, state_for
from response.templates import template, template_from_file

DONE_STATES = {IncidentStatus.RESOLVED, IncidentStatus.CLOSED}
TIMELINE_LIMIT = 500


def _span(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "—"
    seconds = max(0.0, (as_utc(end) - as_utc(start)).total_seconds())
    return str(timedelta(seconds=round(seconds)))


def context(session: Session, incident_id: int) -> dict[str, Any]:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise IncidentNotFoundError(f"incident {incident_id} does not exist")
    response = state_for(session, incident_id)
    findings = session.exec(
        select(Finding).where(Finding.incident_id == incident_id).order_by(col(Finding.first_seen))
    ).all()
    steps = session.exec(
        select(RemediationAction)
        .where(RemediationAction.incident_id == incident_id)
        .order_by(col(RemediationAction.position), col(RemediationAction.id))
    ).all()
    entries = session.exec(
        select(TimelineEntry)
        .where(TimelineEntry.incident_id == incident_id)
        .order_by(col(TimelineEntry.at), col(TimelineEntry.id))
        .limit(TIMELINE_LIMIT)
    ).all()
    first = incident.first_event_at or incident.first_seen
    times = [
        (
            "Time to detect (first event → detected)",
            _span(first, incident.detected_at or incident.created_at),
        ),
        ("Time to acknowledge", _span(incident.created_at, incident.acknowledged_at or incident.triaged_at)),
        ("Time to contain", _span(incident.created_at, incident.contained_at)),
        ("Time to resolve", _span(incident.created_at, incident.resolved_at)),
    ]
    went_well = []
    if response.channel_name:
        went_well.append(f"An incident channel (#{response.channel_name}) gathered the responders")
    if any(e.kind == TimelineEntryKind.ONCALL and "acknowledg" in e.title.lower() for e in entries):
        went_well.append("The on-call page was acknowledged")
    if any(s.status == ActionStatus.SUCCEEDED for s in steps):
        went_well.append("Remediation ran through the approved plan")
    actions = [
        {
            "text": f"{s.action} on {s.subject or s.target} ({s.status})",
            "done": s.status == ActionStatus.SUCCEEDED,
        }
        for s in steps
    ]
    if not incident.root_cause:
        actions.append({"text": "Write the root cause", "done": False})
    return {
        "incident": incident,
        "response": response,
        "drill": response.drill,
        "mark": DRILL_MARK if response.drill else "",
        "people": (incident.entities or {}).get("people") or [],
        "findings": findings,
        "times": times,
        "went_well": went_well,
        "actions": actions,
        "timeline": [
            {"at": isoformat(e.at), "kind": e.kind, "title": e.title}
            for e in entries
            if e.kind != TimelineEntryKind.MESSAGE  # conversations stay behind their role check
        ],
        "generated_at": isoformat(utcnow()),
    }


def render(session: Session, incident_id: int, config: ResponseConfig, fmt: str = "markdown") -> str:
    values = context(session, incident_id)
    if fmt == "html":
        return template("postmortem.html.j2").render(**values)
    chosen = (
        template_from_file(config.postmortem_template)
        if config.postmortem_template
        else template("postmortem.md.j2")
    )
    return chosen.render(**values)


def draft(
    session: Session,
    incident_id: int,
    config: ResponseConfig,
    *,
    actor: Actor = RESPONSE_ACTOR,
    now: datetime | None = None,
) -> IncidentResponse:
    """Draft (or redraft) the Markdown postmortem and keep it on the incident's response row."""
    when = as_utc(now or utcnow())
    text = render(session, incident_id, config)
    response = state_for(session, incident_id)
    response.postmortem_markdown = text
    response.postmortem_at = when
    session.add(response)
    note(
        session,
        incident_id,
        action=AuditAction.RESPONSE_POSTMORTEM_DRAFTED,
        title="Postmortem drafted from the timeline",
        details={"characters": len(text)},
        actor=actor,
        at=when,
        drill=response.drill,
    )
    return response


def draft_resolved(db: Database, config: ResponseConfig, now: datetime | None = None) -> list[int]:
    """A first draft for every resolved or closed urgent incident (the channel priorities) and every
    incident the response side followed."""
    done = [s.value for s in DONE_STATES]
    with db.session(readonly=True) as session:
        drafted = set(
            session.exec(
                select(IncidentResponse.incident_id).where(col(IncidentResponse.postmortem_at).is_not(None))
            ).all()
        )
        followed = set(session.exec(select(IncidentResponse.incident_id)).all())
        rows = session.exec(
            select(Incident.id, Incident.priority).where(
                col(Incident.status).in_(done), col(Incident.merged_into_id).is_(None)
            )
        ).all()
    urgent = {p.value for p in config.channels.priorities}
    ids = sorted(
        i
        for i, priority in rows
        if i is not None and i not in drafted and (priority in urgent or i in followed)
    )
    for incident_id in ids:
        with db.session() as session:
            draft(session, incident_id, config, now=now)
    return ids
