"""The API's exception hierarchy and its rendering as RFC 9457 problem details (application/problem+json).

Routers and services raise :class:`ApiError` subclasses; the handlers installed by
:func:`install_problem_handlers` turn them, FastAPI's validation errors, unknown routes and
unexpected exceptions into the same JSON shape, always carrying the request id.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.requestid import request_id_of
from core.errors import DatabaseError, TenantguardError

PROBLEM_MEDIA_TYPE = "application/problem+json"
_TYPE_PREFIX = "urn:tenantguard:problem:"
log = logging.getLogger("tenantguard.api")


class FieldError(BaseModel):
    """One invalid input: where it is and what is wrong with it."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:tenantguard:problem:not-found",
                    "title": "Not found",
                    "status": 404,
                    "detail": "incident 42 does not exist",
                    "instance": "/incidents/42",
                    "request_id": "7f0c3f5bb6a84c1e9a4d3c1f0f6f2b1a",
                }
            ]
        }
    )

    type: str = Field(description="A URN naming the kind of problem.")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = Field(default=None, description="Invalid inputs (422 only).")
    retry_after: int | None = Field(default=None, description="Seconds to wait (429 only).")
    code: str | None = Field(default=None, description="A stable code for refusals (e.g. self_approval).")


class ApiError(TenantguardError):
    """Base of every error the API raises on purpose; `detail` names the input at fault and what to do."""

    status = 500
    slug = "internal"
    title = "Internal error"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}

    def extra(self) -> dict[str, Any]:
        return {}


class Unauthorized(ApiError):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="tenantguard"'})


class Forbidden(ApiError):
    status, slug, title = 403, "forbidden", "Not allowed for this role"


class NotFound(ApiError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(ApiError):
    status, slug, title = 409, "conflict", "Conflict with the current state"


class PayloadTooLarge(ApiError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class Unprocessable(ApiError):
    status, slug, title = 422, "invalid-input", "Invalid input"


class RateLimited(ApiError):
    status, slug, title = 429, "rate-limited", "Too many requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after

    def extra(self) -> dict[str, Any]:
        return {"retry_after": self.retry_after}


class Unavailable(ApiError):
    status, slug, title = 503, "unavailable", "Service unavailable"


class GatewayTimeout(ApiError):
    status, slug, title = 504, "upstream-timeout", "The provider did not answer in time"


_STATUS_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed for this role"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict with the current state"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("invalid-input", "Invalid input"),
    429: ("rate-limited", "Too many requests"),
}


def problem_response(
    request: Request,
    *,
    status: int,
    slug: str,
    title: str,
    detail: str | None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": _TYPE_PREFIX + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": request_id_of(request.scope),
    }
    body.update({key: value for key, value in extra.items() if value is not None})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # The offending input is deliberately not echoed: it may be a secret pasted in the wrong place.
    return [
        {
            "loc": [part for part in err.get("loc", ()) if isinstance(part, str | int)],
            "msg": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return problem_response(
        request,
        status=exc.status,
        slug=exc.slug,
        title=exc.title,
        detail=exc.detail,
        headers=exc.headers,
        **exc.extra(),
    )


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc)
    where = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors[:5])
    return problem_response(
        request,
        status=422,
        slug="invalid-input",
        title="Invalid input",
        detail=f"the request has invalid input at: {where}" if where else "the request is invalid",
        errors=errors,
    )


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    slug, title = _STATUS_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no endpoint at {request.url.path}; see /docs for the available ones"
    return problem_response(
        request,
        status=exc.status_code,
        slug=slug,
        title=title,
        detail=detail,
        headers=dict(exc.headers) if exc.headers else None,
    )


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("database unavailable (request %s): %s", request_id_of(request.scope), exc)
    return problem_response(
        request,
        status=503,
        slug="unavailable",
        title="Service unavailable",
        detail="the database is unavailable; retry later",
        headers={"Retry-After": "5"},
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error (request %s)", request_id_of(request.scope), exc_info=exc)
    return problem_response(
        request,
        status=500,
        slug="internal",
        title="Internal error",
        detail="an unexpected error occurred; report the request id to the operators",
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(DatabaseError, _on_database_error)
    app.add_exception_handler(OperationalError, _on_database_error)
    app.add_exception_handler(Exception, _on_unexpected)
