"""Single sign-on: JWTs from the configured issuer, checked against its JWKS, mapped to roles."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm

from api.app import create_app
from api.config import ApiSettings

ISSUER_PATH = "/realms/acme"


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def identity_provider(signing_key: rsa.RSAPrivateKey) -> Iterator[str]:
    """A loopback issuer serving OpenID discovery and a JWKS with one key (kid "k1")."""
    jwk = json.loads(RSAAlgorithm.to_jwk(signing_key.public_key()))
    jwk.update(kid="k1", use="sig", alg="RS256")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            base = f"http://127.0.0.1:{self.server.server_address[1]}{ISSUER_PATH}"
            documents = {
                f"{ISSUER_PATH}/.well-known/openid-configuration": {
                    "issuer": base,
                    "jwks_uri": f"{base}/jwks",
                },
                f"{ISSUER_PATH}/jwks": {"keys": [jwk]},
            }
            body = json.dumps(documents.get(self.path, {})).encode()
            self.send_response(200 if self.path in documents else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}{ISSUER_PATH}"
    server.shutdown()


@pytest.fixture
def sso_client(settings, db, identity_provider: str) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    api_settings = ApiSettings(
        token_pepper="p" * 40,
        oidc_issuer=identity_provider,
        oidc_audience="tenantguard",
        oidc_role_prefix="tenantguard.",
    )
    with TestClient(create_app(settings, db, api_settings=api_settings)) as client:
        yield client


def token(key: rsa.RSAPrivateKey, issuer: str, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": "tenantguard",
        "sub": "u-123",
        "preferred_username": "grace@acme.com",
        "roles": ["tenantguard.auditor", "other-app.admin"],
        "iat": now,
        "exp": now + 300,
    }
    claims.update(overrides)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def test_a_valid_jwt_gets_the_roles_it_names(
    sso_client: TestClient, signing_key: rsa.RSAPrivateKey, identity_provider: str
) -> None:
    # Given a JWT from the issuer naming the auditor role (and a role of another app)
    jwt_token = token(signing_key, identity_provider)
    # Then the auditor may export the audit trail but not change connections
    assert sso_client.get("/audit/verify", headers=bearer(jwt_token)).status_code == 200
    denied = sso_client.post("/connections", headers=bearer(jwt_token), json={})
    assert denied.status_code == 403 and "grace@acme.com" in denied.json()["detail"]


@pytest.mark.parametrize(
    "overrides, reason",
    [
        ({"exp": 1_000_000}, "expired"),
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "http://127.0.0.1:1/evil"}, "issuer"),
        ({"roles": ["other-app.admin"]}, "no tenantguard role"),
    ],
)
def test_bad_jwts_are_refused(
    overrides: dict[str, Any],
    reason: str,
    sso_client: TestClient,
    signing_key: rsa.RSAPrivateKey,
    identity_provider: str,
) -> None:
    response = sso_client.get("/findings", headers=bearer(token(signing_key, identity_provider, **overrides)))
    assert response.status_code == 401
    assert reason.split()[0] in response.json()["detail"].lower() or reason in response.json()["detail"]


def test_a_jwt_signed_by_another_key_is_refused(sso_client: TestClient, identity_provider: str) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    response = sso_client.get("/findings", headers=bearer(token(stranger, identity_provider)))
    assert response.status_code == 401 and "signature" in response.json()["detail"].lower()


def test_without_sso_configured_a_jwt_is_not_accepted(
    client: TestClient, signing_key: rsa.RSAPrivateKey, identity_provider: str
) -> None:
    response = client.get("/findings", headers=bearer(token(signing_key, identity_provider)))
    assert response.status_code == 401 and "single sign-on is not configured" in response.json()["detail"]
