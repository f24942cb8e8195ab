"""What every handler gets: the authenticated, rate-limited, authorised caller and a way to audit.

Handlers declare ``ctx: RequestContext = require(Permission.X)``; that one dependency
authenticates, applies the caller's rate limit, checks the permission matrix and hands back the
context. :attr:`RequestContext.actor` is what handlers pass to the stage entry points, which write
each change's one audit record (principal, channel, request id, before and after) in the
change's own transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, Request
from sqlmodel import Session

from api.auth import Caller, OidcAuthenticator, TokenAuthenticator, bearer_credentials
from api.config import ApiSettings
from api.errors import Forbidden, RateLimited, Unauthorized
from api.metrics import ApiMetrics
from api.ratelimit import TokenBucketLimiter, retry_after_seconds
from api.requestid import request_id_of
from core.audit import Actor, AuditAction, Channel, record
from core.db import Database
from core.models import AuditRecord
from core.permissions import Permission, allows, roles_allowed
from core.settings import Settings


@dataclass
class ApiState:
    """Everything one application instance shares across requests."""

    settings: Settings
    api_settings: ApiSettings
    db: Database
    metrics: ApiMetrics
    tokens: TokenAuthenticator
    oidc: OidcAuthenticator | None
    limiter: TokenBucketLimiter
    auth_failures: TokenBucketLimiter
    extras: dict[str, Any] = field(default_factory=dict)

    def authenticate(self, request: Request) -> Caller:
        client = request.client.host if request.client else "unknown"
        # An address that has spent its failures is refused before its credentials are looked at, so
        # a right guess among the wrong ones is refused too: guessing is slowed, not just told apart.
        spent = self.auth_failures.wait(f"ip:{client}")
        if spent is not None:
            self.metrics.auth_failures.labels("rate_limited").inc()
            raise RateLimited(
                f"too many failed authentications from {client}; wait before retrying",
                retry_after_seconds(spent),
            )
        try:
            credentials = bearer_credentials(request.headers.get("authorization"))
            if credentials.startswith("tg_"):
                return self.tokens.authenticate(credentials)
            if self.oidc is not None and credentials.count(".") == 2:
                return self.oidc.authenticate(credentials)
            raise Unauthorized(
                "the bearer token is not a tenantguard API token"
                + (" nor a JWT" if self.oidc is not None else " (single sign-on is not configured)")
            )
        except Unauthorized:
            self.metrics.auth_failures.labels("refused").inc()
            wait = self.auth_failures.acquire(f"ip:{client}")
            if wait is not None:
                raise RateLimited(
                    f"too many failed authentications from {client}; wait before retrying",
                    retry_after_seconds(wait),
                )
            raise

    def throttle(self, caller: Caller) -> None:
        wait = self.limiter.acquire(caller.actor)
        if wait is not None:
            self.metrics.rate_limited.inc()
            raise RateLimited(
                f"{caller.name} is over the rate limit of {self.limiter.rate:g} requests/s "
                f"(burst {self.limiter.burst}); slow down",
                retry_after_seconds(wait),
            )


@dataclass(frozen=True)
class RequestContext:
    caller: Caller
    request_id: str
    state: ApiState

    @property
    def db(self) -> Database:
        return self.state.db

    @property
    def settings(self) -> Settings:
        return self.state.settings

    @property
    def actor(self) -> Actor:
        """The caller as stage entry points take it: they write the change's one audit record."""
        return Actor(self.caller.actor, Channel.API, self.request_id)

    def audit(
        self,
        session: Session,
        *,
        action: AuditAction,
        object_type: str,
        object_id: str | int,
        before: Any = None,
        after: Any = None,
        **details: Any,
    ) -> AuditRecord:
        """Record an action of the API itself (not a stage's) in the caller's transaction."""
        rec = record(
            session,
            actor=self.actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            details={"auth": self.caller.via, **details},
            before=before,
            after=after,
        )
        self.state.metrics.audit_records.labels(action).inc()
        return rec


def state_of(request: Request) -> ApiState:
    return request.app.state.tenantguard


def require(permission: Permission) -> Any:
    """The dependency every protected endpoint declares: authenticate, rate-limit, authorise."""

    def authorised(request: Request) -> RequestContext:
        state = state_of(request)
        caller = state.authenticate(request)
        state.throttle(caller)
        if not allows(caller.roles, permission):
            held = ", ".join(sorted(caller.roles)) or "none"
            allowed = ", ".join(roles_allowed(permission))
            raise Forbidden(
                f"{caller.name} (role {held}) may not use this endpoint: it needs {permission} "
                f"(held by: {allowed}); ask an admin for a suitable role"
            )
        return RequestContext(caller=caller, request_id=request_id_of(request.scope) or "", state=state)

    # Read back by the OpenAPI document and the permission-matrix test (api.openapi.route_permission).
    setattr(authorised, "permission", permission)  # noqa: B010
    return Depends(authorised)


def permission_of(call: Any) -> Permission | None:
    return getattr(call, "permission", None)
