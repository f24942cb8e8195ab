"""`/health` for load balancers and `/metrics` for Prometheus."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict

from api.context import RequestContext, require, state_of
from api.errors import Unavailable
from api.permissions import Permission
from core.errors import DatabaseError
from core.migrations.runner import is_up_to_date

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

    status: str
    database: str
    schema_current: bool
    version: str


@router.get("/health", response_model=HealthOut, summary="Is the service up and its database usable?")
def health(request: Request) -> HealthOut:
    """No authentication: load balancers call it. Says nothing an outsider could use."""
    db = state_of(request).db
    try:
        db.ping()
        current = is_up_to_date(db)
    except DatabaseError:
        raise Unavailable("the database is unreachable; see the service log")
    return HealthOut(status="ok", database=db.dialect, schema_current=current, version=package_version())


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
