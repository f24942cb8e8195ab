"""Each provider's error bodies: Graph's error object, the Management API's AF codes, Google's
error with errors[] and status, Slack's ok:false (HTTP 200 for Web API auth errors)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from simulator.http import Response

if TYPE_CHECKING:
    from simulator.auth import AccessToken
    from simulator.server import Simulator

_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_GOOGLE_REASON = {
    400: "invalid",
    401: "authError",
    403: "forbidden",
    404: "notFound",
    429: "rateLimitExceeded",
    500: "backendError",
    502: "backendError",
    503: "backendError",
    504: "backendError",
}
_SLACK_ERROR = {
    403: "missing_scope",
    404: "unknown_method",
    429: "ratelimited",
    500: "internal_error",
    502: "internal_error",
    503: "service_unavailable",
    504: "request_timeout",
    400: "invalid_arguments",
}


def vendor_error(
    sim: Simulator,
    provider: str,
    resource: str,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str],
) -> Response:
    if provider == "okta":
        from simulator.vendors.okta import okta_error, rate_limit_headers

        okta_codes = {400: "E0000001", 401: "E0000011", 403: "E0000006", 404: "E0000007", 429: "E0000047"}
        if status == 429:
            # Okta sends no Retry-After: the wait is X-Rate-Limit-Reset (epoch seconds) minus Date
            wait = int(float(headers.pop("Retry-After", "1") or 1))
            headers = {**headers, **rate_limit_headers(remaining=0, reset_in=max(1, wait))}
            message = "API call exceeded rate limit due to too many requests."
        okta_code = code if code.startswith("E0000") else okta_codes.get(status, "E0000009")
        return okta_error(status, okta_code, message if status != 500 else "Internal Server Error", headers)
    if provider == "google":
        body: dict[str, Any] = {
            "error": {
                "code": status,
                "message": message,
                "errors": [
                    {
                        "message": message,
                        "domain": "usageLimits" if status == 429 else "global",
                        "reason": _GOOGLE_REASON.get(status, "invalid")
                        if code
                        in (
                            "",
                            "TooManyRequests",
                            "ServiceUnavailable",
                            "InternalServerError",
                            "Authorization_RequestDenied",
                        )
                        else code,
                    }
                ],
                "status": _GOOGLE_STATUS.get(status, "UNKNOWN"),
            }
        }
        return Response.json(body, status, headers)
    if provider == "slack":
        error = code if code and code.islower() else _SLACK_ERROR.get(status, "internal_error")
        return Response.json({"ok": False, "error": error}, status, headers)
    if resource.startswith("management"):
        af = {429: "AF429", 401: "AF10001", 403: "AF10001", 400: "AF20001", 404: "AF20051"}.get(
            status, "AF50000"
        )
        return Response.json(
            {"error": {"code": code if code.startswith("AF") else af, "message": message}}, status, headers
        )
    request_id = sim.request_id()
    return Response.json(
        {
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
                    "request-id": request_id,
                    "client-request-id": request_id,
                },
            }
        },
        status,
        {"request-id": request_id, **headers},
    )


def auth_error(sim: Simulator, provider: str, resource: str, expired: bool) -> Response:
    if provider == "okta":
        from simulator.vendors.okta import okta_error

        return okta_error(
            401,
            "E0000011",
            "Invalid token provided",
            {"WWW-Authenticate": 'Bearer error="invalid_token"' if expired else "SSWS"},
        )
    if provider == "slack":
        if resource.startswith("audit"):
            return Response.json({"ok": False, "error": "invalid_authentication"}, 401)
        return Response.json({"ok": False, "error": "token_expired" if expired else "invalid_auth"}, 200)
    if provider == "google":
        message = (
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
            "valid authentication credential."
        )
        return vendor_error(
            sim,
            provider,
            resource,
            401,
            "authError",
            message,
            {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
        )
    if resource.startswith("management"):
        return Response.json(
            {
                "error": {
                    "code": "AF10001",
                    "message": "The permission set () sent in the request does not include the expected permission."
                    if not expired
                    else "Authorization has been denied for this request.",
                }
            },
            401,
        )
    message = (
        "Lifetime validation failed, the token is expired."
        if expired
        else "Access token is empty or invalid."
    )
    return vendor_error(
        sim,
        provider,
        resource,
        401,
        "InvalidAuthenticationToken",
        message,
        {
            "WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize"'
        },
    )


def wrong_token_error(sim: Simulator, provider: str, resource: str, token: AccessToken) -> Response:
    if provider == "okta":
        from simulator.vendors.okta import okta_error

        return okta_error(401, "E0000011", "Invalid token provided")
    if provider == "slack":
        if resource.startswith("audit"):
            return Response.json({"ok": False, "error": "invalid_authentication"}, 401)
        return Response.json({"ok": False, "error": "not_allowed_token_type"}, 200)
    if resource.startswith("management"):
        return Response.json(
            {
                "error": {
                    "code": "AF10001",
                    "message": "Invalid audience: the token was not issued for manage.office.com.",
                }
            },
            401,
        )
    return vendor_error(sim, provider, resource, 401, "InvalidAuthenticationToken", "Invalid audience.", {})
