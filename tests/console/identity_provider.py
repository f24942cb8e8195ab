"""A loopback OpenID provider for the browser suite: discovery, JWKS, an authorization page, a token endpoint.

Like tests/api/test_oidc.py's issuer (discovery + JWKS), plus the authorization code flow:
``/authorize`` shows a page listing its people (a person clicks one); the redirect carries a
one-time code bound to the client id, redirect URI, PKCE challenge and nonce; ``/token`` redeems it
only with the matching ``code_verifier`` (S256) and answers an RS256 ID token for the client.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


@dataclass
class IdentityProvider:
    issuer: str = ""
    people: dict[str, list[str]] = field(default_factory=dict)  # username -> roles claim
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # why token requests were refused


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@contextmanager
def identity_provider(people: dict[str, list[str]]) -> Iterator[IdentityProvider]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="k1", use="sig", alg="RS256")
    provider = IdentityProvider(people=dict(people))

    class Handler(BaseHTTPRequestHandler):
        def _send(
            self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, document: Any) -> None:
            self._send(status, json.dumps(document).encode(), "application/json")

        def do_GET(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/.well-known/openid-configuration":
                self._json(
                    200,
                    {
                        "issuer": provider.issuer,
                        "authorization_endpoint": f"{provider.issuer}/authorize",
                        "token_endpoint": f"{provider.issuer}/token",
                        "jwks_uri": f"{provider.issuer}/jwks",
                        "code_challenge_methods_supported": ["S256"],
                    },
                )
            elif url.path == "/jwks":
                self._json(200, {"keys": [jwk]})
            elif url.path == "/authorize":
                self._authorize_page(query)
            elif url.path == "/choose":
                self._choose(query)
            else:
                self._json(404, {})

        def _authorize_page(self, query: dict[str, str]) -> None:
            if query.get("response_type") != "code" or query.get("code_challenge_method") != "S256":
                self._json(400, {"error": "unsupported_request"})
                return
            links = "".join(
                f'<li><a href="/choose?{html.escape(urlencode({**query, "user": name}))}">{html.escape(name)}</a></li>'
                for name in provider.people
            )
            page = f'<!doctype html><html lang="en"><title>Test IdP</title><h1>Who are you?</h1><ul>{links}</ul></html>'
            self._send(200, page.encode(), "text/html; charset=utf-8")

        def _choose(self, query: dict[str, str]) -> None:
            code = secrets.token_urlsafe(16)
            provider.codes[code] = {
                "user": query["user"],
                "client_id": query["client_id"],
                "redirect_uri": query["redirect_uri"],
                "challenge": query["code_challenge"],
                "nonce": query.get("nonce", ""),
            }
            location = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query.get('state', '')})}"
            self._send(302, b"", "text/plain", {"Location": location})

        def do_POST(self) -> None:  # noqa: N802
            if urlparse(self.path).path != "/token":
                self._json(404, {})
                return
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            grant = provider.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            problem = (
                "unknown or used code"
                if grant is None
                else "wrong client"
                if form.get("client_id") != grant["client_id"]
                else "wrong redirect_uri"
                if form.get("redirect_uri") != grant["redirect_uri"]
                else "PKCE verifier does not match"
                if _b64(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]
                else None
            )
            if problem or grant is None:
                provider.refused.append(problem or "?")
                self._json(400, {"error": "invalid_grant", "error_description": problem})
                return
            now = int(time.time())
            claims = {
                "iss": provider.issuer,
                "aud": grant["client_id"],
                "sub": f"sub-{grant['user']}",
                "preferred_username": grant["user"],
                "roles": provider.people[grant["user"]],
                "nonce": grant["nonce"],
                "iat": now,
                "exp": now + 300,
            }
            id_token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})
            self._json(
                200, {"id_token": id_token, "access_token": secrets.token_urlsafe(16), "token_type": "Bearer"}
            )

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    provider.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
