"""An OpenID provider on the simulator's HTTP port (``/oidc``): discovery, JWKS, an authorization
page, a token endpoint — the authorization code flow with PKCE, as the console's single sign-on
uses it.

``GET /oidc/.well-known/openid-configuration`` (issuer ``http://127.0.0.1:P/oidc``),
``GET /oidc/jwks`` (one RS256 key), ``GET /oidc/authorize`` (``response_type=code``,
``code_challenge_method=S256``, a loopback ``redirect_uri``): a page titled "Who are you?"
listing the provider's people as links; following one (``/oidc/choose``) is that person signing
in: a redirect to the client with a one-time code bound to the client id, redirect URI, PKCE
challenge and nonce. ``POST /oidc/token`` redeems the code only with the matching
``code_verifier`` and answers an RS256 ID token (``iss``, ``aud`` = client id, ``sub``,
``preferred_username``, ``email``, ``name``, ``roles``, ``nonce``, 5 minutes). ``GET
/oidc/userinfo`` answers the claims for the access token.

The people (user name -> roles claim) default to five of the tenant's staff: the IT
administrator (admin), the security analyst (analyst), the systems engineer (approver), the HR
business partner (compliance_officer) and the controller (viewer); ``POST /_sim/oidc/people
{"people": {...}}`` or ``handle.oidc.set_people({...})`` replaces them. Ground truth: ``GET
/_sim/oidc`` lists the sign-ins (who, which client, when) and the refused token requests (why).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from simulator.http import Request, Response

if TYPE_CHECKING:
    from simulator.server import Simulator

CLIENT_ID = "tenantguard-console"
KEY_ID = "sim-oidc-1"
ID_TOKEN_SECONDS = 300
DEFAULT_ROLES = ((0, "admin"), (1, "analyst"), (3, "approver"), (6, "compliance_officer"), (4, "viewer"))


@cache
def _key() -> rsa.RSAPrivateKey:
    """Process-wide signing key (generating RSA keys is slow; every simulator shares it)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class OidcProvider:
    issuer: str
    people: dict[str, list[str]] = field(default_factory=dict)  # user name -> roles claim
    names: dict[str, tuple[str, str]] = field(default_factory=dict)  # user name -> (display name, email)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    access_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    sign_ins: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # why token requests were refused
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set_people(self, people: dict[str, list[str]]) -> None:
        with self.lock:
            self.people = {str(k): [str(r) for r in v] for k, v in people.items()}

    def info(self) -> dict[str, Any]:
        return {
            "oidc.issuer": self.issuer,
            "oidc.client_id": CLIENT_ID,
            "oidc.people": {name: list(roles) for name, roles in self.people.items()},
        }

    def truth(self) -> dict[str, Any]:
        with self.lock:
            return {
                "issuer": self.issuer,
                "people": dict(self.people),
                "sign_ins": list(self.sign_ins),
                "refused": list(self.refused),
            }

    # ---------------------------------------------------------------- endpoints

    def discovery(self, request: Request) -> Response:
        return Response.json(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "userinfo_endpoint": f"{self.issuer}/userinfo",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "profile", "email"],
                "token_endpoint_auth_methods_supported": ["none", "client_secret_post"],
                "code_challenge_methods_supported": ["S256"],
                "grant_types_supported": ["authorization_code"],
                "claims_supported": ["sub", "preferred_username", "email", "name", "roles", "nonce"],
            }
        )

    def jwks(self, request: Request) -> Response:
        jwk = json.loads(RSAAlgorithm.to_jwk(_key().public_key()))
        jwk.update(kid=KEY_ID, use="sig", alg="RS256")
        return Response.json({"keys": [jwk]})

    def authorize(self, request: Request) -> Response:
        query = {k: v[0] for k, v in request.query.items() if v}
        problem = self._authorize_problem(query)
        if problem:
            return Response.json({"error": "invalid_request", "error_description": problem}, 400)
        with self.lock:
            people = list(self.people)
        links = "".join(
            f'<li><a href="{html.escape(self.issuer)}/choose?{html.escape(urlencode({**query, "user": name}))}">'
            f"{html.escape(name)}</a></li>"
            for name in people
        )
        page = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Simulator sign-in</title>'
            f"</head><body><main><h1>Who are you?</h1><ul>{links}</ul></main></body></html>"
        )
        return Response(200, page.encode(), {"Content-Type": "text/html; charset=utf-8"})

    @staticmethod
    def _authorize_problem(query: dict[str, str]) -> str | None:
        if query.get("response_type") != "code":
            return "response_type must be code"
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return "PKCE with S256 is required"
        if not query.get("client_id"):
            return "client_id is required"
        redirect = urlsplit(query.get("redirect_uri", ""))
        if redirect.scheme not in ("http", "https") or redirect.hostname not in ("127.0.0.1", "localhost"):
            return "redirect_uri must be a loopback http(s) URL"
        return None

    def choose(self, request: Request) -> Response:
        query = {k: v[0] for k, v in request.query.items() if v}
        problem = self._authorize_problem(query)
        with self.lock:
            known = query.get("user") in self.people
        if problem or not known:
            return Response.json(
                {"error": "invalid_request", "error_description": problem or "unknown user"}, 400
            )
        code = secrets.token_urlsafe(16)
        with self.lock:
            self.codes[code] = {
                "user": query["user"],
                "client_id": query["client_id"],
                "redirect_uri": query["redirect_uri"],
                "challenge": query["code_challenge"],
                "nonce": query.get("nonce", ""),
            }
        location = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query.get('state', '')})}"
        return Response(302, b"", {"Location": location, "Cache-Control": "no-store"})

    def token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in request.form.items()}
        if form.get("grant_type", "authorization_code") != "authorization_code":
            return self._refuse("unsupported_grant_type", f"grant_type {form.get('grant_type')}")
        with self.lock:
            grant = self.codes.pop(form.get("code", ""), None)
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
            return self._refuse("invalid_grant", problem or "?")
        user = grant["user"]
        now = int(time.time())
        with self.lock:
            roles = list(self.people.get(user, []))
            display, email = self.names.get(user, (user, user if "@" in user else ""))
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": grant["client_id"],
            "sub": "sub-" + hashlib.sha256(user.encode()).hexdigest()[:16],
            "preferred_username": user,
            "name": display,
            "roles": roles,
            "nonce": grant["nonce"],
            "iat": now,
            "exp": now + ID_TOKEN_SECONDS,
        }
        if email:
            claims["email"] = email
        id_token = jwt.encode(claims, _key(), algorithm="RS256", headers={"kid": KEY_ID})
        access_token = secrets.token_urlsafe(24)
        with self.lock:
            self.access_tokens[access_token] = claims
            self.sign_ins.append(
                {
                    "user": user,
                    "roles": roles,
                    "client_id": grant["client_id"],
                    "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
                }
            )
        return Response.json(
            {
                "id_token": id_token,
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": ID_TOKEN_SECONDS,
                "scope": "openid profile email",
            },
            headers={"Cache-Control": "no-store"},
        )

    def userinfo(self, request: Request) -> Response:
        with self.lock:
            claims = self.access_tokens.get(request.bearer or "")
        if claims is None:
            return Response.json(
                {"error": "invalid_token"}, 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
        return Response.json(
            {k: v for k, v in claims.items() if k not in ("iss", "aud", "iat", "exp", "nonce")}
        )

    def _refuse(self, error: str, why: str) -> Response:
        with self.lock:
            self.refused.append(why)
        return Response.json({"error": error, "error_description": why}, 400)


def make_provider(sim: Simulator) -> OidcProvider:
    provider = OidcProvider(issuer=f"{sim.base_url}/oidc")
    people = sim.tenant.people
    for index, role in DEFAULT_ROLES:
        if index < len(people):
            person = people[index]
            provider.people[person.email] = [role]
            provider.names[person.email] = (person.name, person.email)
    return provider


def register(sim: Simulator) -> None:
    provider = sim.oidc
    add = sim.router.add
    add("GET", r"/oidc/\.well-known/openid-configuration", provider.discovery, "sim", "oidc")
    add("GET", r"/oidc/jwks", provider.jwks, "sim", "oidc")
    add("GET", r"/oidc/authorize", provider.authorize, "sim", "oidc")
    add("GET", r"/oidc/choose", provider.choose, "sim", "oidc")
    add("POST", r"/oidc/token", provider.token, "sim", "oidc")
    add("GET", r"/oidc/userinfo", provider.userinfo, "sim", "oidc")
    add("GET", r"/_sim/oidc", lambda r: Response.json(provider.truth()), "sim", "oidc")
    add("POST", r"/_sim/oidc/people", lambda r: _set_people(provider, r), "sim", "oidc")


def _set_people(provider: OidcProvider, request: Request) -> Response:
    people = request.json().get("people")
    if not isinstance(people, dict) or not all(isinstance(v, list) for v in people.values()):
        return Response.json({"error": 'expected {"people": {"user": ["role", ...]}}'}, 400)
    provider.set_people(people)
    return Response.json(provider.truth())
