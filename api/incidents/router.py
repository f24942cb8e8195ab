"""HTTP routes for incidents."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api.context import RequestContext, require
from api.incidents import service
from api.incidents.schemas import IncidentDetail, IncidentFilters, IncidentSort, IncidentSummary
from api.pagination import Page, PageRequest, page_request
from api.permissions import Permission

router = APIRouter(prefix="/incidents", tags=["incidents"])
IncidentId = Annotated[int, Path(ge=1, le=2**62, description="Incident id.")]


@router.get("", response_model=Page[IncidentSummary], summary="List incidents")
def list_incidents(
    ctx: Annotated[RequestContext, require(Permission.INCIDENTS_READ)],
    filters: Annotated[IncidentFilters, Query()],
    page: Annotated[PageRequest, Depends(page_request)],
    sort: IncidentSort = IncidentSort.NEWEST,
) -> Page[IncidentSummary]:
    with ctx.db.session(readonly=True) as session:
        rows, next_cursor = service.list_incidents(
            session, filters, sort=sort, limit=page.limit, cursor=page.cursor
        )
        items = [IncidentSummary.model_validate(row) for row in rows]
    return Page[IncidentSummary](items=items, next_cursor=next_cursor)


@router.get("/{incident_id}", response_model=IncidentDetail, summary="One incident with its findings")
def get_incident(
    ctx: Annotated[RequestContext, require(Permission.INCIDENTS_READ)], incident_id: IncidentId
) -> IncidentDetail:
    with ctx.db.session(readonly=True) as session:
        return service.incident_detail(session, incident_id)
