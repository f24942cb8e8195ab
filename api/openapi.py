"""The OpenAPI document: FastAPI's, plus what it cannot infer on its own.

Adds the bearer security scheme, each operation's required permission and allowed roles (read
from the one permission matrix), and the problem+json error responses every operation can give,
replacing FastAPI's default validation-error shape with RFC 9457.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from api.context import permission_of
from api.errors import PROBLEM_MEDIA_TYPE, Problem
from core.permissions import Permission, roles_allowed

_DESCRIPTION = """\
tenantguard's HTTP API: findings, incidents, remediation, posture, identities and the audit trail.

Authenticate with `Authorization: Bearer <token>` (tokens from `tenantguard principals create`, or a
JWT from the configured single sign-on issuer). Errors are RFC 9457 problem details
(`application/problem+json`) carrying the request id also sent as `X-Request-ID`. Lists use cursor
pagination: pass `next_cursor` back as `cursor`.
"""

_ERRORS = {
    "400": "Bad request (e.g. a cursor that does not decode)",
    "401": "Missing or invalid credentials",
    "403": "The caller's role does not carry the required permission",
    "404": "No such resource",
    "409": "Conflicts with the current state",
    "413": "Request body too large",
    "422": "Invalid input",
    "429": "Rate limited (see Retry-After)",
    "500": "Unexpected error (quote the request id)",
    "503": "Database or identity provider unavailable, or the request passed its time limit",
    "504": "The provider did not answer in time",
}


def api_routes(app: FastAPI) -> list[Any]:
    """Every API operation route with its full path (included routers flattened)."""
    return [rc for rc in iter_route_contexts(app.routes) if isinstance(rc.original_route, APIRoute)]


def route_permission(route: Any) -> Permission | None:
    """The permission an endpoint requires, found among its dependencies (None: public)."""
    for dependency in route.dependant.dependencies:
        permission = permission_of(dependency.call)
        if permission is not None:
            return permission
    return None


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _error_codes(route: Any, method: str, permission: Permission | None) -> list[str]:
    codes = ["400", "422", "500", "503"]
    if permission is not None:
        codes += ["401", "403", "429"]
    if "{" in route.path_format:
        codes.append("404")
    if route.path_format.endswith("/check"):
        codes.append("504")
    if method in ("post", "put", "patch"):
        codes += ["409", "413"]
    return sorted(set(codes))


def build_openapi(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(
        title="tenantguard", version=app.version, description=_DESCRIPTION, routes=app.routes
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in problem_schema.pop("$defs", {}).items():
        schemas[name] = definition
    schemas["Problem"] = problem_schema
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    components["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token (tg_…) or, with single sign-on configured, a JWT.",
        }
    }
    for route in api_routes(app):
        if not route.include_in_schema:
            continue
        permission = route_permission(route)
        for method in route.methods:
            operation = document["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            if permission is not None:
                operation["security"] = [{"bearer": []}]
                operation["x-required-permission"] = permission.value
                roles = ", ".join(roles_allowed(permission))
                operation["description"] = (
                    operation.get("description", "") + f"\n\nRequires `{permission}` (roles: {roles})."
                ).strip()
            else:
                operation["security"] = []
            responses = operation.setdefault("responses", {})
            declared = {str(code) for code in (route.responses or {})}
            for code in _error_codes(route, method.lower(), permission):
                if code not in declared:  # a route's own declaration wins (e.g. Slack's answers)
                    responses[code] = _problem_response(_ERRORS[code])
    return document
