"""Console sessions: a signed, expiring cookie naming the caller, and the CSRF token bound to it.

The cookie is ``base64url(json).base64url(hmac)`` under a key derived from the API token pepper,
so every host that shares the pepper accepts the same sessions and nothing is stored server side.
It is Secure, HttpOnly and SameSite=Strict. A session from an API token is checked against its
principal on every request (a disabled principal is signed out at once). Each form carries the
session's CSRF token, compared in constant time; a POST without it is refused before it acts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import orjson

from core.models import Role

COOKIE = "tg_session"
LIFETIME_SECONDS = 8 * 3600


@dataclass(frozen=True)
class ConsoleSession:
    name: str
    roles: frozenset[Role]
    via: str  # "token" | "oidc"
    principal_id: int | None
    csrf: str
    expires_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signing_key(pepper: bytes) -> bytes:
    """A key of its own for sessions, so a session signature is never a token hash."""
    return hmac.new(pepper, b"tenantguard console session v1", hashlib.sha256).digest()


def new_session(
    name: str, roles: frozenset[Role], via: str, principal_id: int | None, *, now: float | None = None
) -> ConsoleSession:
    return ConsoleSession(
        name=name,
        roles=roles,
        via=via,
        principal_id=principal_id,
        csrf=secrets.token_urlsafe(32),
        expires_at=(now or time.time()) + LIFETIME_SECONDS,
    )


def encode(session: ConsoleSession, key: bytes) -> str:
    payload = orjson.dumps(
        {
            "n": session.name,
            "r": sorted(session.roles),
            "v": session.via,
            "p": session.principal_id,
            "c": session.csrf,
            "e": session.expires_at,
        }
    )
    body = _b64(payload)
    return f"{body}.{_b64(hmac.new(key, body.encode('ascii'), hashlib.sha256).digest())}"


def decode(cookie: str | None, key: bytes, *, now: float | None = None) -> ConsoleSession | None:
    """The session a cookie carries, or None when it is absent, forged, malformed or expired."""
    if not cookie or cookie.count(".") != 1:
        return None
    body, signature = cookie.split(".")
    expected = _b64(hmac.new(key, body.encode("ascii", "replace"), hashlib.sha256).digest())
    if not hmac.compare_digest(expected.encode(), signature.encode("ascii", "replace")):
        return None
    try:
        data = orjson.loads(_unb64(body))
        session = ConsoleSession(
            name=str(data["n"]),
            roles=frozenset(Role(r) for r in data["r"]),
            via=str(data["v"]),
            principal_id=int(data["p"]) if data["p"] is not None else None,
            csrf=str(data["c"]),
            expires_at=float(data["e"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
    return session if session.expires_at > (now or time.time()) else None


def csrf_matches(session: ConsoleSession, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf.encode(), str(presented).encode())
