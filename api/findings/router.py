"""HTTP routes for findings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api.context import RequestContext, require
from api.findings import service
from api.findings.schemas import FindingDetail, FindingFilters, FindingSort, FindingSummary
from api.pagination import Page, PageRequest, page_request
from core.pagination import MAX_ID
from core.permissions import Permission

router = APIRouter(prefix="/findings", tags=["findings"])
FindingId = Annotated[int, Path(ge=1, le=MAX_ID, description="Finding id.")]


@router.get("", response_model=Page[FindingSummary], summary="List findings")
def list_findings(
    ctx: Annotated[RequestContext, require(Permission.FINDINGS_READ)],
    filters: Annotated[FindingFilters, Query()],
    page: Annotated[PageRequest, Depends(page_request)],
    sort: FindingSort = FindingSort.NEWEST,
) -> Page[FindingSummary]:
    """Findings matching every given filter, `sort` order, one page at a time."""
    with ctx.db.session(readonly=True) as session:
        rows, next_cursor = service.list_findings(
            session, filters, sort=sort, limit=page.limit, cursor=page.cursor
        )
        items = [FindingSummary.model_validate(row) for row in rows]
    return Page[FindingSummary](items=items, next_cursor=next_cursor)


@router.get("/{finding_id}", response_model=FindingDetail, summary="One finding with its evidence")
def get_finding(
    ctx: Annotated[RequestContext, require(Permission.FINDINGS_READ)], finding_id: FindingId
) -> FindingDetail:
    with ctx.db.session(readonly=True) as session:
        return FindingDetail.model_validate(service.get_finding(session, finding_id))
