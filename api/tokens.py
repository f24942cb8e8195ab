"""API tokens: how they look, how they are hashed at rest, and how a presented one is checked.

A token is ``tg_<key id>_<secret>``: the key id (``tg_`` + 8 hex digits) is stored in clear to find
the principal; the whole token is stored only as HMAC-SHA256 under a server-side pepper, so a
copy of the database alone is not enough to test guesses. Tokens carry 256 bits of randomness,
so a fast keyed hash is as strong as a slow one here, and it keeps authentication cheap per request.
Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from api.config import ApiSettings
from core.errors import ConfigurationError
from core.settings import Settings

SCHEME = "hmac-sha256"
_TOKEN = re.compile(r"^(tg_[0-9a-f]{8})_([A-Za-z0-9_-]{43})$")
PEPPER_FILE = "api-token-pepper"


@dataclass(frozen=True)
class IssuedToken:
    """A freshly made token: `token` is shown once and never stored; `key_id` is its public part."""

    token: str
    key_id: str


def new_token() -> IssuedToken:
    key_id = f"tg_{secrets.token_hex(4)}"
    return IssuedToken(token=f"{key_id}_{secrets.token_urlsafe(32)}", key_id=key_id)


def key_id_of(token: str) -> str | None:
    """The public key id of a well-formed token, or None when it is not one of ours."""
    match = _TOKEN.match(token)
    return match.group(1) if match else None


def hash_token(token: str, pepper: bytes) -> str:
    digest = hmac.new(pepper, token.encode("ascii"), hashlib.sha256).hexdigest()
    return f"{SCHEME}${digest}"


def token_matches(token: str, stored_hash: str, pepper: bytes) -> bool:
    return hmac.compare_digest(hash_token(token, pepper).encode(), stored_hash.encode())


def load_pepper(settings: Settings, api_settings: ApiSettings) -> bytes:
    """The configured pepper, or the one kept in the data directory (made on first use, mode 0600)."""
    if api_settings.token_pepper is not None:
        return api_settings.token_pepper.get_secret_value().encode()
    settings.ensure_dirs()
    path = Path(settings.data_dir) / PEPPER_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_pepper(path)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    return _read_pepper(path)


def _read_pepper(path: Path) -> bytes:
    for _ in range(20):  # another process may have created the file a moment ago and still be writing
        value = path.read_text().strip()
        if len(value) >= 32:
            return value.encode()
        time.sleep(0.05)
    raise ConfigurationError(
        f"{path} holds no usable token pepper (expected 64 hex digits); delete it to make a new one "
        "(existing API tokens then stop working) or set TENANTGUARD_API_TOKEN_PEPPER"
    )
