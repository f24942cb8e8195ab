"""`GET /metrics/incidents`: incident metrics over a period, computed by timeline.metrics."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.context import RequestContext, require
from api.errors import Unprocessable
from core.clock import as_utc, utcnow
from core.permissions import Permission
from timeline.metrics import compute_metrics

router = APIRouter(tags=["metrics"])


class DurationStatsOut(BaseModel):
    count: int
    mean_seconds: float | None
    median_seconds: float | None
    p90_seconds: float | None


class SlaStatsOut(BaseModel):
    met: int
    breached: int
    pending: int
    compliance: float | None


class TypeStatsOut(BaseModel):
    count: int
    recurrences: int
    by_priority: dict[str, int]


class IncidentMetricsOut(BaseModel):
    since: datetime
    until: datetime
    incidents: int
    by_status: dict[str, int]
    by_priority: dict[str, int]
    by_type: dict[str, TypeStatsOut]
    mttd: DurationStatsOut
    mtta: DurationStatsOut
    mttc: DurationStatsOut
    mttr: DurationStatsOut
    by_priority_times: dict[str, dict[str, DurationStatsOut]] = Field(
        description="Per priority: mttd, mtta, mttc and mttr (P1 minutes are not averaged with P4 days)."
    )
    sla_acknowledge: SlaStatsOut
    sla_resolve: SlaStatsOut
    false_positive_rate: float | None


@router.get("/metrics/incidents", response_model=IncidentMetricsOut, summary="Incident metrics for a period")
def incident_metrics(
    ctx: Annotated[RequestContext, require(Permission.METRICS_READ)],
    since: Annotated[datetime | None, Query(description="Default: 30 days ago.")] = None,
    until: Annotated[datetime | None, Query(description="Default: now.")] = None,
) -> IncidentMetricsOut:
    """Over incidents opened in [since, until): time to detect, acknowledge, contain, resolve; SLA compliance."""
    end = as_utc(until) if until else utcnow()
    start = as_utc(since) if since else end - timedelta(days=30)
    if start >= end:
        raise Unprocessable("since must be before until")
    if end - start > timedelta(days=366):
        raise Unprocessable("the period may span at most 366 days; ask for several periods")
    return IncidentMetricsOut.model_validate(compute_metrics(ctx.db, start, end).as_dict())
