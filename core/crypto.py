"""Encryption at rest: the installation's Fernet keys and what the encrypted columns store.

Columns typed :class:`core.models.types.EncryptedText` / :class:`~core.models.types.EncryptedJSON`
(message subjects, excerpts and recipients, timeline entry bodies with their notes and excerpts,
connection config and secret references, approval comments, quarantined provider input, postmortems
and stakeholder updates) are written as ``tgenc1:<key id>:<Fernet token>``: AES-128-CBC with an
HMAC-SHA256 (``cryptography``'s Fernet), under the primary key of the installation's key file.

The key file (``TENANTGUARD_ENCRYPTION_KEY_FILE``, default ``<data dir>/encryption.key``) lives
outside the database, mode 0600 (refused when others may read it, with the signing key's checks),
one url-safe base64 Fernet key per line: the first encrypts, the others only decrypt (keys kept
after a rotation). It is made on first use only while the database holds no encrypted value, so a
lost key file is an error naming it, never a fresh key that silently leaves the old rows unreadable.
The key id in each value is 16 hex digits of a hash of the key: it names the key (``SHA256:<id>``
in messages and the audit chain) without revealing it. ``tenantguard keys rotate`` puts a new key
first and re-encrypts every row under it (core.crypto.reencrypt), audited.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken

from core.audit_keys import create_private_file, read_private_file
from core.errors import ConfigurationError

if TYPE_CHECKING:
    from sqlalchemy import MetaData
    from sqlalchemy.engine import Engine

PREFIX = "tgenc1:"
KEY_ENV = "TENANTGUARD_ENCRYPTION_KEY_FILE"
_HEADER = (
    b"# tenantguard encryption keys (Fernet). The first key encrypts; the others only decrypt.\n"
    b"# Keep this file outside the database's backups, mode 0600. Losing it loses the encrypted data.\n"
)
_BATCH = 500


class EncryptionKeyError(ConfigurationError):
    """The encryption key file is missing, unsafe or malformed, or a value does not decrypt with it."""


def key_id(key: bytes) -> str:
    """16 hex digits naming a key (a domain-separated hash: it reveals nothing of the key)."""
    return hashlib.sha256(b"tenantguard-encryption-key/1\n" + key.strip()).hexdigest()[:16]


def key_name(kid: str) -> str:
    return f"SHA256:{kid}"


def new_key() -> bytes:
    return Fernet.generate_key()


def parse_keys(body: bytes, path: Path) -> list[bytes]:
    keys: list[bytes] = []
    for number, raw in enumerate(body.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        try:
            Fernet(line)
        except (ValueError, TypeError):
            # Never echo the line: it may be a key with a typo.
            raise EncryptionKeyError(
                f"{path} line {number} is not a Fernet key (32 bytes in url-safe base64)"
            ) from None
        if line not in keys:
            keys.append(line)
    if not keys:
        raise EncryptionKeyError(f"{path} holds no encryption key")
    return keys


def write_keys(path: Path, keys: Sequence[bytes]) -> None:
    """Replace the key file atomically with `keys` (first = primary), never readable by others."""
    temporary = path.with_name(path.name + ".new")
    temporary.unlink(missing_ok=True)
    if not create_private_file(temporary, _HEADER + b"".join(k + b"\n" for k in keys)):
        raise EncryptionKeyError(f"cannot write {temporary}")
    with open(temporary, "rb") as fh:
        os.fsync(fh.fileno())
    temporary.replace(path)


def load_keys(path: Path, *, create: bool) -> list[bytes]:
    """The keys in `path`; a new file with one new key when it is absent and `create`."""
    path = Path(path)
    if create and not path.exists():
        create_private_file(path, _HEADER + new_key() + b"\n")
    if not path.exists():
        raise EncryptionKeyError(
            f"the encryption key file {path} is missing and the database holds encrypted data: restore "
            f"the key file from where it is kept (or point {KEY_ENV} at it); a new key cannot read the data"
        )
    return parse_keys(read_private_file(path, "encryption key file", EncryptionKeyError), path)


class Keyring:
    """The keys of one key file: encrypts under the first, decrypts under any (re-reading the file
    once when a value names a key it does not hold, so a rotation by another process is picked up)."""

    def __init__(self, keys: Sequence[bytes], path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._set(list(keys))

    def _set(self, keys: list[bytes]) -> None:
        self.keys = keys
        self.ids = [key_id(k) for k in keys]
        self._fernets = {kid: Fernet(k) for kid, k in zip(self.ids, keys, strict=True)}
        self.primary_id = self.ids[0]

    @classmethod
    def load(cls, path: Path, *, create: bool) -> Keyring:
        return cls(load_keys(path, create=create), path)

    @property
    def fingerprint(self) -> str:
        """The primary key's name, ``SHA256:`` and 16 hex digits (never the key)."""
        return key_name(self.primary_id)

    def encrypt(self, data: bytes) -> str:
        return f"{PREFIX}{self.primary_id}:{self._fernets[self.primary_id].encrypt(data).decode()}"

    @staticmethod
    def key_of(value: str) -> str | None:
        """The key id an encrypted value names (None for a value stored in clear)."""
        if not value.startswith(PREFIX):
            return None
        return value[len(PREFIX) :].partition(":")[0]

    def decrypt(self, value: str, where: str = "a stored value") -> bytes:
        kid = self.key_of(value)
        if kid is None:
            raise EncryptionKeyError(
                f"{where} is stored in clear, not encrypted: run `tenantguard keys rotate` to encrypt it"
            )
        fernet = self._fernets.get(kid) or self._reloaded(kid)
        if fernet is None:
            raise EncryptionKeyError(
                f"{where} was encrypted with key {key_name(kid)}, which is not in "
                f"{self.path or 'the key file'} (its keys: {', '.join(map(key_name, self.ids))}): restore "
                f"the key file that holds it, or point {KEY_ENV} at it"
            )
        try:
            return fernet.decrypt(value[len(PREFIX) + len(kid) + 1 :].encode())
        except InvalidToken:
            raise EncryptionKeyError(
                f"{where} does not decrypt with key {key_name(kid)}: the value was altered"
            ) from None

    def _reloaded(self, kid: str) -> Fernet | None:
        if self.path is None:
            return None
        with self._lock:
            if kid not in self._fernets:
                try:
                    keys = load_keys(self.path, create=False)
                except EncryptionKeyError:
                    return None
                self._set(keys)
        return self._fernets.get(kid)


class LazyKeyring:
    """A Keyring loaded on first use (a Database opened for `version` or `db upgrade` reads no key)."""

    def __init__(self, loader: Callable[[], Keyring]) -> None:
        self._loader = loader
        self._ring: Keyring | None = None
        self._lock = threading.Lock()

    def get(self) -> Keyring:
        ring = self._ring
        if ring is None:
            with self._lock:
                if self._ring is None:
                    self._ring = self._loader()
                ring = self._ring
        return ring

    def reset(self) -> None:
        """Forget the loaded keys (after the file was rewritten by a rotation in this process)."""
        with self._lock:
            self._ring = None


DIALECT_ATTRIBUTE = "tenantguard_keyring"


def keyring_of(dialect: Any) -> Keyring:
    """The keyring of the engine a statement runs on (core.db.Database sets it on its dialect)."""
    lazy = getattr(dialect, DIALECT_ATTRIBUTE, None)
    if lazy is None:
        raise EncryptionKeyError(
            "this database connection has no encryption key: open the database through core.db.Database"
        )
    ring: Keyring = lazy.get()
    return ring


@dataclass(frozen=True)
class EncryptedColumn:
    table: str
    primary_key: str
    column: str

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"


def encrypted_columns(metadata: MetaData | None = None) -> list[EncryptedColumn]:
    """Every encrypted column of the schema (found by type, so a new one is never forgotten)."""
    from sqlmodel import SQLModel

    import core.models  # noqa: F401  (registers every table)
    from core.models.types import EncryptedJSON, EncryptedText

    found = []
    for table in (metadata or SQLModel.metadata).sorted_tables:
        keys = list(table.primary_key.columns)
        for column in table.columns:
            if isinstance(column.type, EncryptedText | EncryptedJSON):
                if len(keys) != 1:
                    raise EncryptionKeyError(
                        f"{table.name}.{column.name} is encrypted but has no one-column key"
                    )
                found.append(EncryptedColumn(table.name, keys[0].name, column.name))
    return found


def holds_encrypted_data(engine: Engine) -> bool:
    """Whether any encrypted column has a value (tables not made yet count as empty)."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    for item in encrypted_columns():
        try:
            # Read-only (plain BEGIN on SQLite): this can run while a session of the same thread
            # holds the write lock, in the middle of its flush.
            with engine.connect().execution_options(tenantguard_readonly=True) as conn:
                row = conn.execute(
                    text(f'SELECT 1 FROM "{item.table}" WHERE "{item.column}" IS NOT NULL LIMIT 1')
                ).first()
        except DBAPIError:
            continue
        if row is not None:
            return True
    return False


def _raw_values(conn: Any, item: EncryptedColumn, after: Any) -> list[Any]:
    from sqlalchemy import Text, column, select, table

    raw = table(item.table, column(item.primary_key), column(item.column, Text))
    key, value = raw.c[item.primary_key], raw.c[item.column]
    query = select(key, value).where(value.is_not(None))
    if after is not None:
        query = query.where(key > after)
    return list(conn.execute(query.order_by(key).limit(_BATCH)).all())


def scan(engine: Engine) -> Iterator[tuple[EncryptedColumn, str | None]]:
    """The key id (None: in clear) of every stored encrypted-column value, read as stored."""
    for item in encrypted_columns():
        after = None
        while True:
            with engine.connect().execution_options(tenantguard_readonly=True) as conn:
                rows = _raw_values(conn, item, after)
            for _, value in rows:
                yield item, Keyring.key_of(str(value))
            if len(rows) < _BATCH:
                break
            after = rows[-1][0]


def reencrypt(engine: Engine, ring: Keyring) -> dict[str, int]:
    """Re-encrypt every value not under the primary key (values in clear get encrypted), batch by
    batch; a row changed meanwhile by someone else is left as they wrote it (compare and set).
    Returns how many values of each column were rewritten."""
    from sqlalchemy import Text, column, table, update

    counts: dict[str, int] = {}
    for item in encrypted_columns():
        raw = table(item.table, column(item.primary_key), column(item.column, Text))
        key, value = raw.c[item.primary_key], raw.c[item.column]
        after = None
        while True:
            with engine.begin() as conn:
                rows = _raw_values(conn, item, after)
                for row_key, stored in rows:
                    stored = str(stored)
                    kid = ring.key_of(stored)
                    if kid == ring.primary_id:
                        continue
                    clear = (
                        stored.encode() if kid is None else ring.decrypt(stored, f"{item.name} #{row_key}")
                    )
                    conn.execute(
                        update(raw)
                        .where(key == row_key, value == stored)
                        .values({item.column: ring.encrypt(clear)})
                    )
                    counts[item.name] = counts.get(item.name, 0) + 1
            if len(rows) < _BATCH:
                break
            after = rows[-1][0]
    return counts


def startup_keys(signing_key_path: Path, keyring: LazyKeyring) -> str:
    """Load the signing key and the encryption keys as serve and workers start, so a missing, unsafe
    or malformed key file stops them at once with one line (SigningKeyError / EncryptionKeyError);
    returns the line that names both keys by fingerprint for the banner (never a key)."""
    from core.audit_keys import fingerprint, load_signing_key, public_raw

    signing = fingerprint(public_raw(load_signing_key(signing_key_path)))
    ring = keyring.get()
    return f"signing key {signing} ({signing_key_path}); encryption key {ring.fingerprint} ({ring.path})"
