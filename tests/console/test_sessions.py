"""Console sessions and CSRF, through the application (no browser needed).

Given the API application with the console installed and principals with tokens, when a browser
signs in, then it holds a Secure, HttpOnly, SameSite=Strict cookie that a forger cannot make; a
form posted without the session's CSRF token changes nothing; another site cannot sign it in; a
disabled principal's session ends at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.config import ApiSettings
from console.app import install_console
from console.session import COOKIE, decode, encode, new_session, signing_key
from core.db import Database
from core.models import Incident, Role
from core.settings import Settings
from tests.factories import TEST_PEPPER, MadePrincipal


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    app = create_app(
        settings,
        db,
        api_settings=ApiSettings(
            token_pepper=TEST_PEPPER, rate_limit_per_second=0, auth_failures_per_minute=1000
        ),
    )
    install_console(app)
    # https: the session cookie is Secure, so the client only sends it back over https
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as test_client:
        yield test_client


def _sign_in(client: TestClient, token: str) -> str:
    response = client.post("/console/login", data={"token": token, "next": "/console/incidents"})
    assert response.status_code == 303, response.text
    return response.headers["set-cookie"]


def _csrf(client: TestClient, path: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert match, "no CSRF field on the page"
    return match.group(1)


def test_signing_in_sets_a_secure_httponly_samesite_cookie(
    client: TestClient, make_principal: Callable[..., MadePrincipal]
) -> None:
    cookie = _sign_in(client, make_principal(Role.ANALYST, name="ana").token).lower()
    assert cookie.startswith(f"{COOKIE}=")
    assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert "ana (analyst)" in client.get("/console/incidents").text


def test_a_wrong_token_is_refused_and_no_cookie_is_set(client: TestClient) -> None:
    response = client.post("/console/login", data={"token": "tg_00000000_" + "x" * 43})
    assert response.status_code == 401
    assert "set-cookie" not in response.headers


def test_without_a_session_a_page_sends_the_browser_to_sign_in(client: TestClient) -> None:
    response = client.get("/console/approvals")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=/console/approvals"


def test_a_forged_or_expired_session_is_not_accepted() -> None:
    key = signing_key(TEST_PEPPER.encode())
    session = new_session("mallory", frozenset({Role.ADMIN}), "token", 1, now=1000.0)
    cookie = encode(session, key)
    assert decode(cookie, key, now=1001.0) == session
    assert decode(cookie, signing_key(b"another pepper"), now=1001.0) is None
    body, signature = cookie.split(".")
    assert decode(body[:-2] + "xx." + signature, key, now=1001.0) is None
    assert decode(cookie, key, now=session.expires_at + 1) is None


def test_a_form_without_the_csrf_token_changes_nothing(
    client: TestClient, make_principal: Callable[..., MadePrincipal], make_incident: Callable[..., Incident]
) -> None:
    incident = make_incident()
    _sign_in(client, make_principal(Role.ANALYST, name="ana").token)
    path = f"/console/incidents/{incident.id}"
    refused = client.post(f"{path}/transition", data={"to": "triaged"})
    assert refused.status_code == 403 and "CSRF" in refused.text
    wrong = client.post(f"{path}/transition", data={"to": "triaged", "csrf": "not-the-token"})
    assert wrong.status_code == 403
    assert 'data-testid="status">new<' in client.get(path).text
    accepted = client.post(f"{path}/transition", data={"to": "triaged", "csrf": _csrf(client, path)})
    assert accepted.status_code == 303
    assert 'data-testid="status">triaged<' in client.get(path).text


def test_another_site_cannot_sign_a_browser_in(
    client: TestClient, make_principal: Callable[..., MadePrincipal]
) -> None:
    token = make_principal(Role.ANALYST, name="ana").token
    for headers in ({"origin": "https://evil.example"}, {"origin": "null", "sec-fetch-site": "cross-site"}):
        response = client.post("/console/login", data={"token": token}, headers=headers)
        assert response.status_code == 403, headers
        assert "set-cookie" not in response.headers
    same_site = {"origin": "null", "sec-fetch-site": "same-origin"}  # what a browser sends under no-referrer
    assert client.post("/console/login", data={"token": token}, headers=same_site).status_code == 303


def test_a_disabled_principal_is_signed_out_at_their_next_request(
    client: TestClient, db: Database, make_principal: Callable[..., MadePrincipal]
) -> None:
    from api.principals.service import disable_principal
    from tests.factories import FACTORY_ACTOR

    _sign_in(client, make_principal(Role.ANALYST, name="ana").token)
    assert client.get("/console/incidents").status_code == 200
    disable_principal(db, name="ana", actor=FACTORY_ACTOR)
    assert client.get("/console/incidents").status_code == 303


def test_a_role_without_the_permission_gets_a_plain_refusal(
    client: TestClient, make_principal: Callable[..., MadePrincipal]
) -> None:
    _sign_in(client, make_principal(Role.VIEWER, name="vic").token)
    response = client.get("/console/audit")
    assert response.status_code == 403
    assert "audit:export" in response.text
    assert "content-security-policy" in response.headers


def test_a_missing_incident_is_a_page_in_the_console_and_a_problem_in_the_api(
    client: TestClient, make_principal: Callable[..., MadePrincipal]
) -> None:
    made = make_principal(Role.VIEWER, name="vic")
    _sign_in(client, made.token)
    page = client.get("/console/incidents/987654")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "incident 987654 does not exist" in page.text
    api = client.get("/incidents/987654", headers={"Authorization": f"Bearer {made.token}"})
    assert api.status_code == 404 and api.headers["content-type"] == "application/problem+json"
