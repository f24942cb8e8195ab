"""The permission matrix, asserted against the running app: every endpoint x every role.

Expectations come from core.permissions.MATRIX (the one matrix) and each endpoint's declared
permission; the test only checks that the app enforces them: allowed -> neither 401 nor 403,
denied -> 403, no credentials -> 401.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.openapi import api_routes, route_permission
from core.models import Role
from core.permissions import MATRIX, Permission, allows

# Public on purpose: probes, the scrape endpoint, the API's own documents, and Slack (which signs its calls).
PUBLIC = {
    "/health",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/integrations/slack/interactions",
    # The token in the path authenticates the responder a page was sent to.
    "/oncall/ack/{token}",
    # Twilio signs its keypress callbacks (X-Twilio-Signature); the token names the page.
    "/oncall/twilio/voice/{token}",
    # Alerts are signed (Standard Webhooks); the status page shows only what was published for the public.
    "/response/alerts",
    # PagerDuty Events v2 and Alertmanager senders authenticate with the routing key.
    "/response/pagerduty/v2/enqueue",
    "/response/alertmanager",
    "/status",
    "/status/api/v2/summary.json",
    "/status/api/v2/incidents.json",
    "/status/history.atom",
    "/integrations/slack/commands",
    # Twilio signs its status callbacks and inbound SMS webhooks too.
    "/oncall/twilio/status/{page_id}/{attempt}",
    "/oncall/twilio/sms",
}


def endpoints(app: FastAPI) -> list[tuple[str, str, Permission | None]]:
    found = []
    for route in api_routes(app):
        for method in sorted(route.methods - {"HEAD"}):
            found.append((method, route.path_format, route_permission(route)))
    assert len(found) > 10, "the app's routes were not found: the matrix test would check nothing"
    return found


def concrete(path: str) -> str:
    """A path with placeholder ids: nothing exists, which is fine (allowed callers get 404/422)."""
    return re.sub(r"\{[^}]*_id\}", "987654", re.sub(r"\{name\}", "nobody", path))


def call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> int:
    """The status, except that a public endpoint refusing on its own terms (Slack's signature) is 200."""
    body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    response = client.request(method, concrete(path), headers=headers, **body)
    if response.status_code == 401 and "www-authenticate" not in response.headers:
        return 200  # not a bearer-token refusal: the endpoint did not ask for our credentials
    return response.status_code


def test_every_endpoint_is_either_public_or_names_a_permission(app: FastAPI) -> None:
    unprotected = [f"{m} {p}" for m, p, perm in endpoints(app) if perm is None and p not in PUBLIC]
    assert unprotected == []


def test_every_permission_is_granted_to_admin_and_guards_something(app: FastAPI) -> None:
    used = {perm for _, _, perm in endpoints(app) if perm is not None}
    assert all(perm in MATRIX[Role.ADMIN] for perm in Permission)
    # conversations:read decides what timeline and report answers contain, not who reaches them
    assert used | {Permission.CONVERSATIONS_READ} == set(Permission)


@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
def test_role_gets_exactly_what_the_matrix_grants(
    role: Role, app: FastAPI, client: TestClient, as_role: Callable[[Role], dict[str, str]]
) -> None:
    # Given a principal with this role
    headers = as_role(role)
    wrong = []
    # When it calls every endpoint
    for method, path, permission in endpoints(app):
        status = call(client, method, path, headers)
        # Then the matrix decides: allowed -> past authorisation; denied -> 403
        expected_allowed = permission is None or allows({role}, permission)
        if expected_allowed and status in (401, 403):
            wrong.append(f"{method} {path}: {role} should be allowed ({permission}) but got {status}")
        if not expected_allowed and status != 403:
            wrong.append(f"{method} {path}: {role} should be denied ({permission}) but got {status}")
    assert wrong == []


def test_without_credentials_only_public_endpoints_answer(app: FastAPI, client: TestClient) -> None:
    wrong = []
    for method, path, permission in endpoints(app):
        status = call(client, method, path, {})
        if permission is None and status in (401, 403):
            wrong.append(f"{method} {path}: public but got {status}")
        if permission is not None and status != 401:
            wrong.append(f"{method} {path}: protected but got {status} without credentials")
    assert wrong == []


def test_the_ladder_viewer_analyst_approver_only_adds(app: FastAPI) -> None:
    assert MATRIX[Role.VIEWER] < MATRIX[Role.ANALYST] < MATRIX[Role.APPROVER]
    assert not any(p.value.endswith((":write", ":decide", ":execute")) for p in MATRIX[Role.AUDITOR])
    assert Permission.AUDIT_EXPORT in MATRIX[Role.AUDITOR]
    assert Permission.AUDIT_EXPORT not in MATRIX[Role.APPROVER]


def test_the_readme_shows_the_matrix_as_it_is() -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "api" / "README.md").read_text()
    for permission in Permission:
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{permission.value}` |"))
        cells = [cell.strip() for cell in row.strip("|").split("|")[1:]]
        assert cells == ["yes" if permission in MATRIX[role] else "" for role in Role], permission
