"""The postmortem, drafted from the incident's timeline with a Jinja2 template (Markdown, HTML, PDF).

Impact, root cause and lessons are the analyst's words (``timeline.lifecycle.set_postmortem``),
beside the customer impact score (`customer_impact`); detection and response times come from the
incident's lifecycle stamps; contributing factors are its findings; action items are its
remediation steps (done when they succeeded, or when their Jira issue is Done) and writing the
root cause; the timeline is every entry, conversation excerpts left out. A resolved incident gets
its draft once by itself (the response stage); asking again redrafts it. Reviewers sign it off
(`review`): every one of ``postmortem_reviewers`` (or any one reviewer when none are named).

The customer impact score is the timeline's (``timeline.impact``: scope + severity + duration,
0-100, with its band and each factor's figures).
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
from response.errors import ResponseInputError
from response.journal import DRILL_MARK, RESPONSE_ACTOR, note, state_for
from response.templates import template, template_from_file

DONE_STATES = {IncidentStatus.RESOLVED, IncidentStatus.CLOSED}
TIMELINE_LIMIT = 500


def customer_impact(incident: Incident, findings: list[Finding]) -> dict[str, Any]:
    """The incident's customer impact score (``timeline.impact``): the one the incident builder
    stored with the priority factors, or, for an incident it never scored, the same formula
    computed from what the incident names (no sensitive or exposed-file signal then)."""
    from timeline.impact import customer_impact as score
    from timeline.impact import describe

    stored = (incident.priority_factors or {}).get("impact")
    if isinstance(stored, dict) and "score" in stored:
        impact = dict(stored)
    else:
        entities = incident.entities or {}
        impact = score(
            people=len(entities.get("people") or []),
            files=len(entities.get("files") or []),
            apps=len(entities.get("apps") or []),
            providers=len({f.provider for f in findings if f.provider}),
            sensitive=False,
            exposed=False,
            severity=str(incident.severity),
            started=as_utc(incident.first_seen),
            ended=as_utc(incident.contained_at or incident.last_seen),
        )
    impact["line"] = describe(impact)
    return impact


def _span(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "—"
    seconds = max(0.0, (as_utc(end) - as_utc(start)).total_seconds())
    return str(timedelta(seconds=round(seconds)))


def context(session: Session, incident_id: int, reviewers: tuple[str, ...] = ()) -> dict[str, Any]:
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
    actions = []
    for s in steps:
        ticket = (response.jira_steps or {}).get(str(s.id)) or {}
        in_jira = f", Jira {ticket['key']} {ticket.get('status', '')}".rstrip() if ticket.get("key") else ""
        actions.append(
            {
                "text": f"{s.action} on {s.subject or s.target} ({s.status}{in_jira})",
                "done": s.status == ActionStatus.SUCCEEDED or str(ticket.get("status", "")).lower() == "done",
                "jira": ticket.get("key", ""),
            }
        )
    actions.append({"text": "Write the root cause", "done": bool(incident.root_cause), "jira": ""})
    required = list(reviewers)
    signed = {r["reviewer"] for r in response.postmortem_reviews}
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
        "impact": customer_impact(incident, list(findings)),
        "reviews": response.postmortem_reviews,
        "reviewers_pending": [r for r in required if r not in signed],
        "signed_off_at": isoformat(response.postmortem_signed_off_at)
        if response.postmortem_signed_off_at
        else None,
        "timeline": [
            {"at": isoformat(e.at), "kind": e.kind, "title": e.title}
            for e in entries
            if e.kind != TimelineEntryKind.MESSAGE  # conversations stay behind their role check
        ],
        "generated_at": isoformat(utcnow()),
    }


def render(session: Session, incident_id: int, config: ResponseConfig, fmt: str = "markdown") -> str:
    values = context(session, incident_id, config.postmortem_reviewers)
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


def render_pdf(session: Session, incident_id: int, config: ResponseConfig) -> bytes:
    """The Markdown postmortem as a plain PDF (fpdf2): headings bold, the rest as written."""
    from fpdf import FPDF

    text = render(session, incident_id, config)
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_title(f"Postmortem incident {incident_id}")
    width = pdf.w - pdf.l_margin - pdf.r_margin
    for raw in text.splitlines():
        line = raw.rstrip()
        level = len(line) - len(line.lstrip("#"))
        size, style = {1: (15, "B"), 2: (12, "B"), 3: (11, "B")}.get(level, (9, ""))
        if level:
            pdf.ln(2)
        pdf.set_font("Helvetica", style=style, size=size)
        pdf.set_x(pdf.l_margin)
        body = line.lstrip("#").strip().replace("—", "-").replace("→", "->").replace("**", "")
        # the core fonts are Latin-1: anything else prints as '?', never fails the export
        pdf.multi_cell(width, size * 0.5, body.encode("latin-1", "replace").decode("latin-1") or " ")
    return bytes(pdf.output())


def review(
    session: Session,
    incident_id: int,
    config: ResponseConfig,
    *,
    actor: Actor,
    comment: str = "",
    now: datetime | None = None,
) -> IncidentResponse:
    """Record `actor`'s review; the postmortem is signed off once every required reviewer reviewed."""
    when = as_utc(now or utcnow())
    response = state_for(session, incident_id)
    if not response.postmortem_markdown:
        raise ResponseInputError(f"incident {incident_id} has no postmortem draft to review yet")
    if response.postmortem_signed_off_at is not None:
        raise ResponseInputError(f"the postmortem of incident {incident_id} is already signed off")
    required = config.postmortem_reviewers
    if required and actor.name not in required:
        raise ResponseInputError(f"{actor.name} is not a reviewer of postmortems ({', '.join(required)})")
    if any(r["reviewer"] == actor.name for r in response.postmortem_reviews):
        raise ResponseInputError(f"{actor.name} already reviewed this postmortem")
    from core.redaction import redact_typed

    response.postmortem_reviews = [
        *response.postmortem_reviews,
        {"reviewer": actor.name, "at": isoformat(when), "comment": redact_typed(comment.strip())[:1000]},
    ]
    signed = {r["reviewer"] for r in response.postmortem_reviews}
    pending = [r for r in required if r not in signed]
    note(
        session,
        incident_id,
        action=AuditAction.RESPONSE_POSTMORTEM_REVIEWED,
        title=f"Postmortem reviewed by {actor.name}"
        + (f"; waiting for {', '.join(pending)}" if pending else ""),
        details={"reviewer": actor.name, "pending": pending},
        actor=actor,
        at=when,
        drill=response.drill,
    )
    if not pending:
        response.postmortem_signed_off_at = when
        note(
            session,
            incident_id,
            action=AuditAction.RESPONSE_POSTMORTEM_SIGNED_OFF,
            title="Postmortem signed off by " + ", ".join(sorted(signed)),
            details={"reviewers": sorted(signed)},
            actor=actor,
            at=when,
            drill=response.drill,
        )
        # The kept draft shows the sign-off.
        response.postmortem_markdown = render(session, incident_id, config)
    session.add(response)
    return response
