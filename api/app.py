"""The application factory: `create_app(settings, db=None)` wires state, middleware, errors and routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api.actions.router import router as actions_router
from api.audit.router import UPLOAD_PATH
from api.audit.router import router as audit_router
from api.auth import OidcAuthenticator, TokenAuthenticator
from api.compliance.router import router as compliance_router
from api.config import ApiSettings
from api.connections.router import router as connections_router
from api.context import ApiState
from api.docs import install_docs
from api.errors import install_problem_handlers
from api.findings.router import router as findings_router
from api.headers import SecurityHeadersMiddleware
from api.health.router import metrics_router, package_version
from api.health.router import router as health_router
from api.identities.router import router as identities_router
from api.incidents.change_windows import router as changes_router
from api.incidents.digests import router as digests_router
from api.incidents.router import router as incidents_router
from api.limits import BodyLimitMiddleware, NulByteMiddleware
from api.metrics import ApiMetrics, MetricsMiddleware
from api.oncall.router import router as oncall_router
from api.openapi import build_openapi
from api.posture.router import router as posture_router
from api.principals.router import router as principals_router
from api.ratelimit import TokenBucketLimiter
from api.reporting.router import router as reporting_router
from api.requestid import RequestIdMiddleware
from api.response.router import router as response_router
from api.rules.router import router as rules_router
from api.stage_errors import install_stage_error_handlers
from api.timelimit import TimeLimitMiddleware
from api.tokens import load_pepper
from core.db import Database
from core.settings import Settings

ROUTERS = (
    health_router,
    connections_router,
    findings_router,
    incidents_router,
    digests_router,
    changes_router,
    actions_router,
    rules_router,
    posture_router,
    identities_router,
    reporting_router,
    audit_router,
    compliance_router,
    principals_router,
    oncall_router,
    response_router,
)


def create_app(
    settings: Settings,
    db: Database | None = None,
    *,
    api_settings: ApiSettings | None = None,
    cycle: Any = None,
) -> FastAPI:
    """A ready application. The database is used as is: apply migrations before (`serve` does).

    `cycle`: the in-process pipeline scheduler (`pipeline.embedded.EmbeddedScheduler`) whose stage
    runs /health and /metrics report, when this process runs the cycle."""
    api_settings = api_settings or settings.api
    owns_db = db is None
    database = db or Database.from_settings(settings)
    metrics = ApiMetrics()
    metrics.watch_database(database)
    metrics.watch_pipeline(database, settings, cycle)
    state = ApiState(
        settings=settings,
        api_settings=api_settings,
        db=database,
        metrics=metrics,
        tokens=TokenAuthenticator(database, load_pepper(settings, api_settings)),
        oidc=OidcAuthenticator(api_settings) if api_settings.oidc_enabled else None,
        limiter=TokenBucketLimiter(api_settings.rate_limit_per_second, api_settings.rate_limit_burst),
        auth_failures=TokenBucketLimiter(
            api_settings.auth_failures_per_minute / 60.0, api_settings.auth_failures_per_minute
        ),
    )
    state.extras["cycle"] = cycle

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if owns_db:
            database.dispose()

    app = FastAPI(
        title="tenantguard", version=package_version(), lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.tenantguard = state
    install_problem_handlers(app)
    install_stage_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    install_docs(app)
    app.include_router(metrics_router(api_settings.metrics_require_auth))

    # Added innermost first: request id outermost, so every response and metric sees it.
    app.add_middleware(NulByteMiddleware)  # inside the body limit: reads at most max_body_bytes
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=api_settings.max_body_bytes,
        upload_paths=frozenset({UPLOAD_PATH}),
        max_upload_bytes=api_settings.max_upload_bytes,
    )
    app.add_middleware(TimeLimitMiddleware, seconds=api_settings.request_time_limit_seconds)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(RequestIdMiddleware)

    cached: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if "doc" not in cached:
            cached["doc"] = build_openapi(app)
        return cached["doc"]

    app.openapi = openapi  # type: ignore[method-assign]
    return app
