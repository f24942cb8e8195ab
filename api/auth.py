"""Who is calling: bearer API tokens (hashed at rest) and, when configured, OIDC JWTs from one issuer.

Both end in a :class:`Caller` with a name and roles; what a caller may do is decided by
:mod:`core.permissions`, never here.
"""

from __future__ import annotations

import hmac
import json
import re
import threading
import time
import urllib.request
from dataclasses import dataclass

import jwt
from sqlmodel import select

from api.config import ApiSettings
from api.errors import Unauthorized, Unavailable
from api.tokens import key_id_of, token_matches
from core.clock import utcnow
from core.db import Database
from core.models import ApiPrincipal, Role

# last_used_at is bookkeeping: write it at most this often per principal, not on every request.
_TOUCH_EVERY_SECONDS = 60.0
_NAME = re.compile(r"^[A-Za-z0-9._@+-]{1,190}$")


@dataclass(frozen=True)
class Caller:
    """An authenticated caller. `actor` is how the audit trail names them."""

    name: str
    roles: frozenset[Role]
    via: str  # "token" | "oidc"
    principal_id: int | None = None

    @property
    def actor(self) -> str:
        return f"principal:{self.name}"


def bearer_credentials(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized(
            "no credentials: send 'Authorization: Bearer <token>' "
            "(an admin creates tokens with `tenantguard principals create NAME --role ROLE`)"
        )
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return credentials.strip()


class TokenAuthenticator:
    """Checks ``tg_...`` tokens against the principals table (HMAC under the pepper, constant time)."""

    def __init__(self, db: Database, pepper: bytes) -> None:
        self.db = db
        self.pepper = pepper
        self._touched: dict[int, float] = {}
        self._lock = threading.Lock()

    def authenticate(self, token: str) -> Caller:
        key_id = key_id_of(token)
        if key_id is None:
            raise Unauthorized("the bearer token is not a well-formed tenantguard API token")
        with self.db.session(readonly=True) as session:
            principal = session.exec(select(ApiPrincipal).where(ApiPrincipal.token_prefix == key_id)).first()
        if principal is None or not token_matches(token, principal.token_hash, self.pepper):
            raise Unauthorized("the API token is not valid (revoked, mistyped, or from another installation)")
        if principal.disabled:
            raise Unauthorized(f"principal {principal.name!r} is disabled; ask an admin for a new token")
        assert principal.id is not None
        self._touch(principal.id)
        return Caller(
            name=principal.name,
            roles=frozenset({Role(principal.role)}),
            via="token",
            principal_id=principal.id,
        )

    def _touch(self, principal_id: int) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._touched.get(principal_id, -_TOUCH_EVERY_SECONDS) < _TOUCH_EVERY_SECONDS:
                return
            self._touched[principal_id] = now
        with self.db.session() as session:
            principal = session.get(ApiPrincipal, principal_id)
            if principal is not None:
                principal.last_used_at = utcnow()
                session.add(principal)

    def forget(self, principal_id: int) -> None:
        with self._lock:
            self._touched.pop(principal_id, None)


class OidcAuthenticator:
    """Validates JWTs signed by the configured issuer with a key from its JWKS; maps a claim to roles."""

    def __init__(self, api_settings: ApiSettings) -> None:
        assert api_settings.oidc_issuer
        self.settings = api_settings
        self.issuer = api_settings.oidc_issuer
        self._jwks: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()

    def _client(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._jwks is None:
                url = self.settings.oidc_jwks_url or _discover_jwks_url(self.issuer)
                self._jwks = jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=5)
            return self._jwks

    def authenticate(self, token: str, *, audience: str | None = None, nonce: str | None = None) -> Caller:
        """A bearer JWT (audience: the configured one), or with `audience`/`nonce` the console's ID token."""
        audience = audience or self.settings.oidc_audience
        try:
            signing_key = self._client().get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            raise Unavailable(f"cannot fetch the signing keys of {self.issuer} ({exc}); retry later")
        except (jwt.PyJWKClientError, jwt.DecodeError) as exc:
            raise Unauthorized(f"the JWT was refused: {exc}")
        required = ["exp", "iss", "sub"] + (["aud"] if audience else []) + (["nonce"] if nonce else [])
        try:
            claims = jwt.decode(
                token,
                signing_key.key,
                algorithms=self.settings.oidc_algorithms,
                audience=audience,
                issuer=self.issuer,
                leeway=self.settings.oidc_leeway_seconds,
                options={"require": required, "verify_aud": bool(audience)},
            )
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"the JWT was refused: {exc}")
        if nonce is not None and not hmac.compare_digest(str(claims.get("nonce")), nonce):
            raise Unauthorized("the ID token's nonce is not the one this sign-in sent (replayed?)")
        roles = self._roles(claims.get(self.settings.oidc_role_claim))
        if not roles:
            raise Unauthorized(
                f"the JWT carries no tenantguard role in claim {self.settings.oidc_role_claim!r} "
                f"(expected one of {', '.join(self.settings.oidc_role_prefix + r for r in Role)})"
            )
        name = str(claims.get(self.settings.oidc_name_claim) or claims["sub"])
        if not _NAME.match(name):
            raise Unauthorized(f"the JWT's {self.settings.oidc_name_claim!r} claim is not a usable name")
        return Caller(name=name, roles=roles, via="oidc")

    def _roles(self, claim: object) -> frozenset[Role]:
        values = claim.split() if isinstance(claim, str) else claim if isinstance(claim, list) else []
        prefix = self.settings.oidc_role_prefix
        known = {role.value: role for role in Role}
        return frozenset(
            known[value[len(prefix) :]]
            for value in values
            if isinstance(value, str) and value.startswith(prefix) and value[len(prefix) :] in known
        )


def discovery_document(issuer: str) -> dict[str, object]:
    """The issuer's OpenID configuration (Unavailable when it cannot be read)."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (configured issuer)
            document = json.load(response)
    except (OSError, ValueError) as exc:
        raise Unavailable(f"cannot read the OpenID configuration at {url} ({exc}); retry later")
    if not isinstance(document, dict):
        raise Unavailable(f"{url} is not an OpenID configuration document")
    return document


def _discover_jwks_url(issuer: str) -> str:
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    jwks_uri = discovery_document(issuer).get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise Unavailable(f"{url} names no jwks_uri; set TENANTGUARD_API_OIDC_JWKS_URL")
    return jwks_uri
