"""The installation's Ed25519 signing key (one loader for the audit chain and evidence packages) and
the signed statements made with it.

The key is a PEM file outside the database (``TENANTGUARD_SIGNING_KEY_FILE``, default
``<data dir>/signing.key``), made on first use with mode 0600; a key file that others may read is
refused. Neither the key nor its path's contents are ever logged: only the public key's fingerprint
is shown. A statement is a small JSON object (a checkpoint of the chain's head, a retention
truncation, the bounds of an export); its signature covers a domain prefix and the object's
canonical JSON, so a signature made for one purpose cannot be replayed as another's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core.errors import ConfigurationError

_DOMAIN = b"tenantguard-signed-statement/1\n"


class SigningKeyError(ConfigurationError):
    """The signing key file cannot be used (unreadable, not Ed25519, readable by others)."""


def create_private_file(path: Path, body: bytes) -> bool:
    """Write `body` to a new file at `path` readable by its owner only (0600; its directory 0700 when
    new). False when the file already exists (it is left as it is)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as fh:
        fh.write(body)
    return True


def read_private_file(path: Path, what: str, error: type[ConfigurationError] = ConfigurationError) -> bytes:
    """The bytes of a key file, refused (one line naming the fix) when others may read or write it."""
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise error(
                f"the {what} {path} is open to other users (mode {stat.S_IMODE(mode):04o}); "
                f"run `chmod 600 {path}`"
            )
        if not stat.S_ISREG(mode):
            raise error(f"the {what} {path} is not a regular file")
        return path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read the {what} {path}: {exc.strerror or exc}") from None


def load_signing_key(path: Path, *, create: bool = True) -> Ed25519PrivateKey:
    """The key at `path`; made there (mode 0600, its directory 0700 when new) when absent and `create`."""
    path = Path(path)
    if create and not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        if create_private_file(path, pem):
            return key
    body = read_private_file(path, "signing key", SigningKeyError)
    try:
        loaded = serialization.load_pem_private_key(body, password=None)
    except (ValueError, TypeError):
        loaded = None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} is not an unencrypted Ed25519 private key (PEM)")
    return loaded


def public_raw(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_b64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    return base64.b64encode(public_raw(key)).decode()


def fingerprint(raw: bytes) -> str:
    """How the key is named to people: ``SHA256:`` and 32 hex digits of the raw public key's hash."""
    return "SHA256:" + hashlib.sha256(raw).hexdigest()[:32]


def public_pem(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def read_public_key(text: str) -> bytes:
    """The raw public key from a PEM public key, a PEM private key, or 32 bytes in base64."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            loaded: Any = serialization.load_pem_public_key(text.encode())
        except ValueError:
            try:
                loaded = serialization.load_pem_private_key(text.encode(), password=None).public_key()
            except (ValueError, TypeError):
                loaded = None
        if not isinstance(loaded, Ed25519PublicKey):
            raise SigningKeyError("not an Ed25519 public key (PEM)")
        return public_raw(loaded)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise SigningKeyError("not an Ed25519 public key (PEM, or 32 bytes in base64)")
    return raw


def _message(statement: dict[str, Any]) -> bytes:
    return _DOMAIN + orjson.dumps(statement, option=orjson.OPT_SORT_KEYS)


def sign_statement(key: Ed25519PrivateKey, statement: dict[str, Any]) -> dict[str, str]:
    """The signature of `statement` with the key that made it: ``{"signature", "public_key", "key"}``."""
    return {
        "signature": base64.b64encode(key.sign(_message(statement))).decode(),
        "public_key": public_b64(key),
        "key": fingerprint(public_raw(key)),
    }


@dataclass
class TrustedKeys:
    """Which keys a verification accepts: the given ones (pinned), or — unpinned — whichever key a
    statement carries, collecting their fingerprints so the caller can show them to be compared
    with the published one."""

    keys: set[bytes] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, raw_keys: Iterable[bytes]) -> TrustedKeys:
        return cls(keys=set(raw_keys))

    @property
    def pinned(self) -> bool:
        return bool(self.keys)

    def check(self, statement: dict[str, Any], signed: dict[str, Any] | None) -> str:
        """'' when `signed` (as `sign_statement` gives it) is a valid signature of `statement` by a
        trusted key, else why not."""
        if not signed or not signed.get("signature"):
            return "it is not signed"
        try:
            raw = base64.b64decode(str(signed.get("public_key", "")), validate=True)
            signature = base64.b64decode(str(signed["signature"]), validate=True)
            public = Ed25519PublicKey.from_public_bytes(raw)
        except (binascii.Error, ValueError):
            return "its signature or key is malformed"
        name = fingerprint(raw)
        if self.keys and raw not in self.keys:
            return f"it is signed by {name}, which is not a trusted key"
        try:
            public.verify(signature, _message(statement))
        except InvalidSignature:
            return f"its signature does not verify with {name} (forged or altered)"
        self.seen.add(name)
        return ""
