"""HTTP routes for posture. Drift history is the `drift` findings: `GET /posture/drift` pages through them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.context import RequestContext, require
from api.findings import service as findings
from api.findings.schemas import FindingFilters, FindingSort, FindingSummary
from api.pagination import Page, PageRequest, page_request
from api.posture import service
from api.posture.schemas import CheckOut, ScoreOut
from core.models import FindingKind, Provider
from core.pagination import MAX_ID
from core.permissions import Permission

router = APIRouter(prefix="/posture", tags=["posture"])


@router.get("/scores", response_model=list[ScoreOut], summary="Current score per connection and category")
def scores(ctx: Annotated[RequestContext, require(Permission.POSTURE_READ)]) -> list[ScoreOut]:
    return service.scores(ctx)


@router.get("/scores/history", response_model=list[ScoreOut], summary="Score trend, oldest first")
def history(
    ctx: Annotated[RequestContext, require(Permission.POSTURE_READ)],
    connection_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    category: Annotated[str, Query(min_length=1, max_length=50)] = "overall",
    limit: Annotated[int, Query(ge=1, le=500)] = 30,
) -> list[ScoreOut]:
    return service.history(ctx, connection_id=connection_id, category=category, limit=limit)


@router.get("/checks", response_model=list[CheckOut], summary="Checks with their latest results")
def checks(
    ctx: Annotated[RequestContext, require(Permission.POSTURE_READ)], provider: Provider | None = None
) -> list[CheckOut]:
    return service.checks(ctx, provider.value if provider else None)


@router.get("/drift", response_model=Page[FindingSummary], summary="Drift history (newest first)")
def drift(
    ctx: Annotated[RequestContext, require(Permission.POSTURE_READ)],
    page: Annotated[PageRequest, Depends(page_request)],
    provider: Provider | None = None,
) -> Page[FindingSummary]:
    """Settings that moved away from the baseline: old value, new value, when and who, in each finding's context."""
    filters = FindingFilters(kind=[FindingKind.DRIFT], provider=[provider] if provider else None)
    with ctx.db.session(readonly=True) as session:
        rows, next_cursor = findings.list_findings(
            session, filters, sort=FindingSort.NEWEST, limit=page.limit, cursor=page.cursor
        )
        return Page[FindingSummary](
            items=[FindingSummary.model_validate(r) for r in rows], next_cursor=next_cursor
        )
