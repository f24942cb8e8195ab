"""`/health` for load balancers and `/metrics` for Prometheus."""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict

from api.context import ApiState, RequestContext, require, state_of
from api.errors import Unavailable
from core.errors import DatabaseError
from core.migrations.runner import is_up_to_date
from core.permissions import Permission

router = APIRouter(tags=["health"])


def package_version() -> str:
    try:
        return version("tenantguard")
    except PackageNotFoundError:
        return "unknown"


class HealthOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "ok", "database": "postgresql", "schema_current": True, "version": "0.1.0"}
            ]
        }
    )

    status: str  # "ok", or "degraded" when a stream or stage fails or lags (see `problems`)
    database: str
    schema_current: bool
    version: str
    problems: list[str] = []


@router.get("/health", response_model=HealthOut, summary="Is the service up and its database usable?")
def health(request: Request) -> HealthOut:
    """No authentication: load balancers call it. Says nothing an outsider could use."""
    state = state_of(request)
    try:
        state.db.ping()
        current = _schema_current(state)
    except DatabaseError:
        raise Unavailable("the database is unreachable; see the service log")
    problems = _problems(state)
    return HealthOut(
        status="degraded" if problems else "ok",
        database=state.db.dialect,
        schema_current=current,
        version=package_version(),
        problems=problems,
    )


_LAG_CHECK_SECONDS = 5.0


def _problems(state: ApiState) -> list[str]:
    """Streams that fail and stages that fail or lag, re-read at most every few seconds.

    Names only what the operator configured (connection and stream names, stage names), and the
    collectors' stored failure reasons, which never hold secrets."""
    from pipeline.health import read_lag

    checked = state.extras.get("lag_checked")
    now = time.monotonic()
    if checked is None or now - checked[0] > _LAG_CHECK_SECONDS:
        cycle = state.extras.get("cycle")
        failing: dict[str, str] = {}
        if cycle is not None:
            failing = {
                name: record.last_error
                for name, record in cycle.cycle.book.snapshot().items()
                if record.last_error
            }
        lag = read_lag(state.db)
        checked = state.extras["lag_checked"] = (
            now,
            lag.problems(state.settings.pipeline_lag_seconds, failing),
        )
    return list(checked[1])


_SCHEMA_CHECK_SECONDS = 60.0


def _schema_current(state: ApiState) -> bool:
    """Whether the schema is at this code's newest migration, re-checked at most once a minute.

    Reading the migration scripts costs far more than the ping; probes call this every few seconds.
    """
    checked = state.extras.get("schema_checked")
    now = time.monotonic()
    if checked is None or now - checked[0] > _SCHEMA_CHECK_SECONDS:
        checked = state.extras["schema_checked"] = (now, is_up_to_date(state.db))
    return bool(checked[1])


_METRICS_DOC: dict[str, Any] = {
    "summary": "Prometheus metrics",
    "response_class": Response,
    "responses": {200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}},
}


def _exposition(request: Request) -> Response:
    registry = state_of(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def metrics_router(require_auth: bool) -> APIRouter:
    """`/metrics`, public (the usual scrape set-up) or behind the metrics:read permission."""
    metrics = APIRouter(tags=["health"])
    if require_auth:

        @metrics.get("/metrics", **_METRICS_DOC)
        def protected_metrics(
            ctx: Annotated[RequestContext, require(Permission.METRICS_READ)], request: Request
        ) -> Response:
            return _exposition(request)

    else:

        @metrics.get("/metrics", **_METRICS_DOC)
        def public_metrics(request: Request) -> Response:
            return _exposition(request)

    return metrics
