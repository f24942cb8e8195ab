"""How errors raised by the stages (collectors, timeline, remediation, detectors) become problems.

The stages raise their own exception hierarchies with messages written for people; this table
picks the HTTP status for each class (the most specific registered class wins), and the message
becomes the problem's `detail`. Branches on types only, never on message text.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import collectors.errors
import core.errors
import detectors.suppressions
import oncall.errors
import providers.errors
import remediation.errors
import response.errors
import timeline.errors
from api.errors import problem_response

# class -> (status, slug, title)
_TABLE: list[tuple[type[Exception], int, str, str]] = [
    (core.errors.CursorError, 400, "bad-request", "Bad request"),
    (core.errors.TimeOutOfRange, 422, "invalid-input", "Invalid input"),
    (providers.errors.ConnectionConfigError, 422, "invalid-connection", "Invalid connection"),
    (collectors.errors.CollectorError, 502, "provider-error", "The SaaS provider call failed"),
    (providers.errors.ProviderError, 502, "provider-error", "The SaaS provider call failed"),
    (detectors.suppressions.SuppressionRequestError, 422, "invalid-input", "Invalid input"),
    (core.errors.IncidentNotFoundError, 404, "not-found", "Not found"),
    (timeline.errors.InvalidTransitionError, 409, "invalid-transition", "Not allowed in this state"),
    (timeline.errors.MergeError, 409, "invalid-merge", "Cannot merge or split like that"),
    (core.errors.RedactionPolicyError, 503, "misconfigured", "Server misconfiguration"),
    (timeline.errors.TimelineError, 422, "invalid-input", "Invalid input"),
    (remediation.errors.ActionNotFound, 404, "not-found", "Not found"),
    (remediation.errors.NotAllowed, 403, "forbidden", "Not allowed"),
    (remediation.errors.SlackRequestRejected, 401, "unauthorized", "Request not authenticated"),
    (remediation.errors.Refused, 409, "refused", "Refused"),
    (remediation.errors.CatalogueError, 422, "invalid-input", "Invalid input"),
    (remediation.errors.PlaybookError, 503, "misconfigured", "Server misconfiguration"),
    (remediation.errors.PolicyError, 503, "misconfigured", "Server misconfiguration"),
    (remediation.errors.ConnectionUnavailable, 409, "connection-unavailable", "No usable connection"),
    (remediation.errors.RemediationError, 422, "invalid-input", "Invalid input"),
    (oncall.errors.OncallNotFound, 404, "not-found", "Not found"),
    (oncall.errors.OncallRefused, 409, "refused", "Refused"),
    (oncall.errors.OncallInputError, 422, "invalid-input", "Invalid input"),
    (oncall.errors.OncallError, 422, "invalid-input", "Invalid input"),
    (response.errors.AlertRefused, 401, "unauthorized", "Request not authenticated"),
    (response.errors.ResponseInputError, 422, "invalid-input", "Invalid input"),
    (response.errors.ResponseConfigError, 503, "misconfigured", "Server misconfiguration"),
    (response.errors.ResponseError, 502, "provider-error", "The SaaS provider call failed"),
]


def install_stage_error_handlers(app: FastAPI) -> None:
    for exc_class, status, slug, title in _TABLE:

        async def handler(
            request: Request, exc: Exception, *, _s: int = status, _slug: str = slug, _t: str = title
        ) -> JSONResponse:
            code = getattr(exc, "code", None)
            return problem_response(
                request,
                status=_s,
                slug=_slug,
                title=_t,
                detail=str(exc),
                code=code if isinstance(code, str) else None,
            )

        app.add_exception_handler(exc_class, handler)
