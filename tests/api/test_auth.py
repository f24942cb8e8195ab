"""Bearer API tokens: hashed at rest, shown once, refused when wrong, disabled or absent."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import select

from api.config import ApiSettings
from api.principals.service import create_principal, disable_principal
from api.tokens import hash_token, key_id_of, token_matches
from core.audit import Actor, Channel
from core.db import Database
from core.models import ApiPrincipal, AuditRecord
from tests.factories import MadePrincipal


def test_a_new_token_works_and_is_stored_only_as_a_keyed_hash(
    client: TestClient, make_principal: Callable[..., MadePrincipal], db: Database
) -> None:
    # Given a principal created with a token
    token = make_principal("viewer", name="carol").token
    # When it calls the API
    response = client.get("/findings", headers={"Authorization": f"Bearer {token}"})
    # Then it is let in, and the database holds no copy of the token
    assert response.status_code == 200
    with db.session(readonly=True) as session:
        principal = session.exec(select(ApiPrincipal).where(ApiPrincipal.name == "carol")).one()
        audit_text = " ".join(str(r.details) for r in session.exec(select(AuditRecord)).all())
    assert token not in principal.token_hash and token not in audit_text
    assert principal.token_prefix == key_id_of(token)
    assert principal.token_hash.startswith("hmac-sha256$")


def test_the_hash_depends_on_the_pepper() -> None:
    token = "tg_0123abcd_" + "A" * 43
    stored = hash_token(token, b"pepper-one")
    assert token_matches(token, stored, b"pepper-one")
    assert not token_matches(token, stored, b"pepper-two")


def test_missing_malformed_and_wrong_tokens_get_401_problems(
    client: TestClient, make_principal: Callable[..., MadePrincipal]
) -> None:
    token = make_principal("viewer").token
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for headers in (
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Bearer {forged}"},
    ):
        response = client.get("/findings", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert token not in response.text


def test_a_disabled_principal_is_refused_at_once(
    client: TestClient, app: FastAPI, make_principal: Callable[..., MadePrincipal]
) -> None:
    # Given a working token
    token = make_principal("analyst", name="dave").token
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/findings", headers=headers).status_code == 200
    # When its principal is disabled
    disable_principal(app.state.tenantguard.db, name="dave", actor=Actor("system:test", Channel.CLI))
    # Then the next request is refused
    response = client.get("/findings", headers=headers)
    assert response.status_code == 401 and "disabled" in response.json()["detail"]


def test_admins_create_principals_over_the_api_and_see_the_token_once(
    client: TestClient, as_role: Callable[[str], dict[str, str]], db: Database
) -> None:
    # When an admin creates a principal
    created = client.post("/principals", headers=as_role("admin"), json={"name": "erin", "role": "approver"})
    # Then the response carries the token, which works, and listings never show it again
    assert created.status_code == 201
    token = created.json()["token"]
    assert client.get("/findings", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    listing = client.get("/principals", headers=as_role("admin"))
    assert token not in listing.text and "erin" in listing.text
    # And the creation is in the audit trail with who did it and the request id
    with db.session(readonly=True) as session:
        rec = session.exec(
            select(AuditRecord).where(
                AuditRecord.action == "principal.created", AuditRecord.object_id == "erin"
            )
        ).one()
    assert rec.actor == "principal:the-admin"
    assert rec.details["request_id"] == created.headers["x-request-id"]
    assert rec.details["after"]["role"] == "approver"


def test_a_duplicate_name_is_a_conflict(client: TestClient, as_role: Callable[[str], dict[str, str]]) -> None:
    first = client.post("/principals", headers=as_role("admin"), json={"name": "frank", "role": "viewer"})
    again = client.post("/principals", headers=as_role("admin"), json={"name": "frank", "role": "viewer"})
    assert first.status_code == 201 and again.status_code == 409
    assert "frank" in again.json()["detail"]


def test_tokens_from_another_installation_are_refused(client: TestClient, settings, db: Database) -> None:  # type: ignore[no-untyped-def]
    # Given a token minted under a different pepper (another installation's secret)
    _, token = create_principal(
        db,
        b"some-other-installation-pepper-000000",
        name="ghost",
        role="admin",
        actor=Actor("system:test", Channel.CLI),
    )
    # Then this installation refuses it
    assert client.get("/findings", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_repeated_failures_from_one_address_are_rate_limited(settings, db: Database) -> None:  # type: ignore[no-untyped-def]
    from api.app import create_app

    app = create_app(
        settings, db, api_settings=ApiSettings(token_pepper="p" * 40, auth_failures_per_minute=3)
    )
    with TestClient(app) as client:
        statuses = [
            client.get("/findings", headers={"Authorization": "Bearer nope"}).status_code for _ in range(5)
        ]
    assert statuses[:3] == [401, 401, 401]
    assert statuses[-1] == 429
