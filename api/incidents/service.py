"""Reading incidents: filters, keyset pages, and the detail view with the incident's findings."""

from __future__ import annotations

from sqlalchemy import case, func
from sqlmodel import Session, col, select

from api.context import RequestContext
from api.errors import NotFound, Unprocessable
from api.findings.schemas import FindingSummary
from api.incidents.schemas import (
    AssignIn,
    IncidentDetail,
    IncidentFilters,
    IncidentSummary,
    LinkIn,
    MergeIn,
    NoteIn,
    NoteOut,
    PostmortemIn,
    SplitIn,
    TimelineItemOut,
    TimelinePageOut,
    TransitionIn,
)
from core.models import Finding, Incident, Severity
from core.permissions import Permission, allows
from timeline import lifecycle, queries, reports

DETAIL_FINDINGS = 200
# Lists read only what a summary shows (no ORM objects, no grouping/priority JSON to decode).
SUMMARY_COLUMNS = [Incident.__table__.c[name] for name in IncidentSummary.model_fields]  # type: ignore[attr-defined]


def incident_filter(filters: IncidentFilters) -> queries.IncidentFilter:
    """The query's filter from the request's (validated) parameters."""
    return queries.IncidentFilter(
        status=[s.value for s in filters.status or []],
        priority=[p.value for p in filters.priority or []],
        severity=[s.value for s in filters.severity or []],
        assignee=filters.assignee,
        person=filters.person,
        since=filters.since,
        until=filters.until,
    )


def load_incident(session: Session, incident_id: int) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"incident {incident_id} does not exist")
    return incident


def incident_detail(session: Session, incident_id: int) -> IncidentDetail:
    incident = load_incident(session, incident_id)
    rank = case({s.value: s.rank for s in Severity}, value=col(Finding.severity), else_=-1)
    findings = session.exec(
        select(Finding)
        .where(Finding.incident_id == incident_id)
        .order_by(rank.desc(), col(Finding.first_seen).desc(), col(Finding.id).desc())
        .limit(DETAIL_FINDINGS)
    ).all()
    total = session.exec(
        select(func.count()).select_from(Finding).where(Finding.incident_id == incident_id)
    ).one()
    fields = {
        name: getattr(incident, name) for name in IncidentDetail.model_fields if hasattr(incident, name)
    }
    fields.update(findings=[FindingSummary.model_validate(f) for f in findings], findings_total=total)
    return IncidentDetail.model_validate(fields)


# ---- lifecycle: carried out (and audited, with the request's actor) by timeline.lifecycle ----------


def transition(ctx: RequestContext, incident_id: int, body: TransitionIn) -> IncidentDetail:
    lifecycle.transition(
        ctx.db, incident_id, body.to.value, actor=ctx.actor, note=body.note, duplicate_of=body.duplicate_of
    )
    return _detail(ctx, incident_id)


def assign(ctx: RequestContext, incident_id: int, body: AssignIn) -> IncidentDetail:
    lifecycle.assign(ctx.db, incident_id, body.assignee, actor=ctx.actor)
    return _detail(ctx, incident_id)


def add_note(ctx: RequestContext, incident_id: int, body: NoteIn) -> NoteOut:
    return NoteOut(entry_id=lifecycle.add_note(ctx.db, incident_id, body.text, actor=ctx.actor))


def set_postmortem(ctx: RequestContext, incident_id: int, body: PostmortemIn) -> IncidentDetail:
    given = body.model_dump(exclude_none=True)
    if not given:
        raise Unprocessable("give at least one of root_cause, lessons, impact")
    lifecycle.set_postmortem(ctx.db, incident_id, actor=ctx.actor, **given)
    return _detail(ctx, incident_id)


def merge(ctx: RequestContext, incident_id: int, body: MergeIn) -> IncidentDetail:
    lifecycle.merge(
        ctx.db, incident_id, body.incident_ids, actor=ctx.actor, reason=body.reason, settings=ctx.settings
    )
    return _detail(ctx, incident_id)


def split(ctx: RequestContext, incident_id: int, body: SplitIn) -> IncidentDetail:
    created = lifecycle.split(
        ctx.db, incident_id, body.finding_ids, actor=ctx.actor, reason=body.reason, settings=ctx.settings
    )
    assert created.id is not None
    return _detail(ctx, created.id)


def link_conversation(ctx: RequestContext, incident_id: int, body: LinkIn) -> IncidentDetail:
    lifecycle.link_conversation(
        ctx.db,
        incident_id,
        provider=body.provider.value,
        channel=body.channel,
        thread_id=body.thread_id,
        actor=ctx.actor,
    )
    return _detail(ctx, incident_id)


def _detail(ctx: RequestContext, incident_id: int) -> IncidentDetail:
    with ctx.db.session(readonly=True) as session:
        return incident_detail(session, incident_id)


# ---- timeline and report (timeline.queries / timeline.reports) -------------------------------------


def timeline_page(
    ctx: RequestContext, incident_id: int, *, cursor: str | None, limit: int, kinds: list[str] | None
) -> TimelinePageOut:
    page = queries.get_timeline(
        ctx.db,
        incident_id,
        cursor=cursor,
        limit=limit,
        kinds=kinds,
        include_excerpts=allows(ctx.caller.roles, Permission.CONVERSATIONS_READ),
    )
    return TimelinePageOut(
        incident_id=page.incident_id,
        items=[TimelineItemOut.model_validate(item.as_dict()) for item in page.items],
        next_cursor=page.next_cursor,
        total=page.total,
        counts=page.counts,
    )


def report(ctx: RequestContext, incident_id: int) -> reports.IncidentReport:
    return reports.build_report(
        ctx.db, incident_id, include_excerpts=allows(ctx.caller.roles, Permission.CONVERSATIONS_READ)
    )
