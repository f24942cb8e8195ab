"""HTTP routes for incidents."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Response
from fastapi.encoders import jsonable_encoder

from api.context import RequestContext, require
from api.incidents import service
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
    ReportFormat,
    ReportOut,
    SplitIn,
    TimelinePageOut,
    TransitionIn,
)
from api.pagination import Page, PageRequest, page_request
from core.models.enums import TimelineEntryKind
from core.pagination import MAX_ID
from core.permissions import Permission
from timeline import queries, reports
from timeline.queries import IncidentSort

router = APIRouter(prefix="/incidents", tags=["incidents"])
IncidentId = Annotated[int, Path(ge=1, le=MAX_ID, description="Incident id.")]


@router.get("", response_model=Page[IncidentSummary], summary="List incidents")
def list_incidents(
    ctx: Annotated[RequestContext, require(Permission.INCIDENTS_READ)],
    filters: Annotated[IncidentFilters, Query()],
    page: Annotated[PageRequest, Depends(page_request)],
    sort: IncidentSort = IncidentSort.NEWEST,
) -> Page[IncidentSummary]:
    with ctx.db.session(readonly=True) as session:
        rows, next_cursor = queries.list_incidents(
            session,
            service.incident_filter(filters),
            sort=sort,
            limit=page.limit,
            cursor=page.cursor,
            columns=service.SUMMARY_COLUMNS,
        )
        items = [IncidentSummary.model_validate(row) for row in rows]
    return Page[IncidentSummary](items=items, next_cursor=next_cursor)


@router.get("/{incident_id}", response_model=IncidentDetail, summary="One incident with its findings")
def get_incident(
    ctx: Annotated[RequestContext, require(Permission.INCIDENTS_READ)], incident_id: IncidentId
) -> IncidentDetail:
    with ctx.db.session(readonly=True) as session:
        return service.incident_detail(session, incident_id)


@router.get("/{incident_id}/timeline", response_model=TimelinePageOut, summary="The incident's timeline")
def get_timeline(
    ctx: Annotated[RequestContext, require(Permission.INCIDENTS_READ)],
    incident_id: IncidentId,
    page: Annotated[PageRequest, Depends(page_request)],
    kind: Annotated[
        list[TimelineEntryKind] | None, Query(max_length=12, description="Only these kinds.")
    ] = None,
) -> TimelinePageOut:
    """In time order, remediation steps included. Conversation excerpts only for roles with conversations:read."""
    return service.timeline_page(
        ctx,
        incident_id,
        cursor=page.cursor,
        limit=page.limit,
        kinds=[k.value for k in kind] if kind else None,
    )


@router.get(
    "/{incident_id}/report",
    response_model=ReportOut,
    summary="Incident report (JSON, Markdown or HTML)",
    responses={
        200: {
            "content": {
                "text/markdown": {"schema": {"type": "string"}},
                "text/html": {"schema": {"type": "string"}},
            }
        }
    },
)
def get_report(
    ctx: Annotated[RequestContext, require(Permission.INCIDENTS_READ)],
    incident_id: IncidentId,
    format: ReportFormat = ReportFormat.JSON,
) -> Any:
    built = service.report(ctx, incident_id)
    if format is ReportFormat.MARKDOWN:
        return Response(reports.render_markdown(built), media_type="text/markdown; charset=utf-8")
    if format is ReportFormat.HTML:
        return Response(reports.render_html(built), media_type="text/html; charset=utf-8")
    return ReportOut(
        incident_id=incident_id,
        summary=built.summary,
        generated_at=built.generated_at,
        timeline_total=built.timeline_total,
        facts=jsonable_encoder(built.facts),
    )


@router.post("/{incident_id}/transition", response_model=IncidentDetail, summary="Move through the lifecycle")
def transition(
    ctx: Annotated[RequestContext, require(Permission.INCIDENTS_WRITE)],
    incident_id: IncidentId,
    body: Annotated[TransitionIn, Body()],
) -> IncidentDetail:
    """new → triaged → contained → resolved → closed (plus false_positive, duplicate, reopen); 409 otherwise."""
    return service.transition(ctx, incident_id, body)


@router.post("/{incident_id}/assign", response_model=IncidentDetail, summary="Assign (or unassign)")
def assign(
    ctx: Annotated[RequestContext, require(Permission.INCIDENTS_WRITE)],
    incident_id: IncidentId,
    body: Annotated[AssignIn, Body()],
) -> IncidentDetail:
    return service.assign(ctx, incident_id, body)


@router.post("/{incident_id}/notes", response_model=NoteOut, status_code=201, summary="Add a note")
def add_note(
    ctx: Annotated[RequestContext, require(Permission.INCIDENTS_WRITE)],
    incident_id: IncidentId,
    body: Annotated[NoteIn, Body()],
) -> NoteOut:
    """Notes are redacted like conversations before they are stored."""
    return service.add_note(ctx, incident_id, body)


@router.post(
    "/{incident_id}/postmortem", response_model=IncidentDetail, summary="Root cause, lessons, impact"
)
def set_postmortem(
    ctx: Annotated[RequestContext, require(Permission.INCIDENTS_WRITE)],
    incident_id: IncidentId,
    body: Annotated[PostmortemIn, Body()],
) -> IncidentDetail:
    return service.set_postmortem(ctx, incident_id, body)


@router.post(
    "/{incident_id}/merge", response_model=IncidentDetail, summary="Merge other incidents into this one"
)
def merge(
    ctx: Annotated[RequestContext, require(Permission.INCIDENTS_WRITE)],
    incident_id: IncidentId,
    body: Annotated[MergeIn, Body()],
) -> IncidentDetail:
    return service.merge(ctx, incident_id, body)


@router.post(
    "/{incident_id}/split",
    response_model=IncidentDetail,
    status_code=201,
    summary="Move findings to a new incident",
)
def split(
    ctx: Annotated[RequestContext, require(Permission.INCIDENTS_WRITE)],
    incident_id: IncidentId,
    body: Annotated[SplitIn, Body()],
) -> IncidentDetail:
    """Returns the new incident."""
    return service.split(ctx, incident_id, body)


@router.post("/{incident_id}/links", response_model=IncidentDetail, summary="Link a conversation")
def link_conversation(
    ctx: Annotated[RequestContext, require(Permission.INCIDENTS_WRITE)],
    incident_id: IncidentId,
    body: Annotated[LinkIn, Body()],
) -> IncidentDetail:
    """The channel's (or thread's) messages join the incident's timeline at the next build."""
    return service.link_conversation(ctx, incident_id, body)
