"""Database engine and sessions: a SQLite file by default, PostgreSQL when the URL says so.

SQLite write transactions start with ``BEGIN IMMEDIATE`` so that one writer at a time holds the
lock from its first statement (no "database is locked" upgrade failures half-way through a
transaction); WAL keeps readers unblocked. Errors that mean "this database cannot be used"
become :class:`core.errors.DatabaseError` with a message saying what to do.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlmodel import Session

import core.models  # noqa: F401  (registers every table on SQLModel.metadata)
from core.errors import DatabaseError, TenantguardError
from core.settings import Settings

if TYPE_CHECKING:
    from core.crypto import Keyring

SQLITE_BUSY_TIMEOUT_MS = 30_000
_READONLY = "tenantguard_readonly"


def _install_sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _on_begin)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        readonly = conn.get_execution_options().get(_READONLY, False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def describe_url(url: URL | str) -> str:
    """The URL without its password, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


URL_HINT = "write sqlite:////absolute/path/tenantguard.db or postgresql://USER[:PASSWORD]@HOST:5432/DBNAME"
SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def parse_database_url(url: URL | str) -> URL:
    """`url` as a URL tenantguard can open (SQLite or PostgreSQL), else a DatabaseError naming it."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise DatabaseError(f"database URL {str(url)!r} is not a URL ({exc}); {URL_HINT}") from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise DatabaseError(
            f"database URL {describe_url(parsed)!r} names {backend!r}; tenantguard runs on SQLite or "
            f"PostgreSQL only: {URL_HINT}"
        )
    if backend == "sqlite" and parsed.drivername not in ("sqlite", "sqlite+pysqlite"):
        raise DatabaseError(f"database URL {describe_url(parsed)!r}: unknown SQLite driver; {URL_HINT}")
    if backend == "postgresql" and parsed.drivername not in ("postgresql", "postgresql+psycopg"):
        raise DatabaseError(
            f"database URL {describe_url(parsed)!r}: driver {parsed.drivername!r} is not installed; "
            f"use postgresql:// or postgresql+psycopg:// ({URL_HINT})"
        )
    if backend == "postgresql" and not parsed.database:
        raise DatabaseError(f"database URL {describe_url(parsed)!r} names no database; {URL_HINT}")
    return parsed


def sqlite_path(url: URL) -> Path | None:
    """The file a SQLite URL points at (None for in-memory or a non-SQLite URL)."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def explain_database_error(url: URL, exc: BaseException) -> DatabaseError:
    """Turn a driver error into one line that says what is wrong and what to do."""
    where = describe_url(url)
    message = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
    lowered = message.lower()
    if url.get_backend_name() == "sqlite":
        if "file is not a database" in lowered or "malformed" in lowered:
            return DatabaseError(
                f"{url.database} is not a usable SQLite database ({message}); restore it from a backup "
                "or move it away to start afresh"
            )
        if "locked" in lowered or "busy" in lowered:
            return DatabaseError(
                f"{url.database} is locked by another process ({message}); stop the other tenantguard "
                "process, or point TENANTGUARD_DATABASE_URL at PostgreSQL to run several"
            )
        if "unable to open" in lowered:
            return DatabaseError(
                f"cannot open SQLite database {url.database} ({message}); check that the directory "
                "exists and is writable, or set TENANTGUARD_DATA_DIR"
            )
        return DatabaseError(f"SQLite database {url.database}: {message}")
    return DatabaseError(
        f"cannot use database {where} ({message}); check that PostgreSQL is running and "
        "TENANTGUARD_DATABASE_URL is right"
    )


def _create_private(path: Path) -> None:
    """A new SQLite file is created readable by its owner only (0600); SQLite gives its -wal and -shm
    files the database file's mode. An existing file keeps the mode the operator gave it."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return
    except OSError:
        return  # SQLite says why it cannot open it, with the hint explain_database_error gives


_LONG_NUMBER = re.compile(r"[0-9]{20}")  # may not fit 64 bits: orjson would read it as a float
_LONG_NUMBER_BYTES = re.compile(rb"[0-9]{20}")


def json_loads(text: str | bytes) -> Any:
    """JSON columns read with orjson (several times faster than the stdlib, the same values);
    what orjson refuses or reads differently (NaN; integers beyond 64 bits, which it makes
    floats) is read by the stdlib."""
    pattern = _LONG_NUMBER_BYTES if isinstance(text, bytes) else _LONG_NUMBER
    if pattern.search(text) is None:  # type: ignore[arg-type]
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def _own_errors_unwrapped(context: Any) -> None:
    """An error of ours raised while SQLAlchemy processed a value (a missing encryption key, say)
    reaches the caller as itself, not wrapped in a StatementError with the statement's parameters."""
    if isinstance(context.original_exception, TenantguardError):
        raise context.original_exception


class Database:
    """One engine plus the sessions made from it."""

    def __init__(
        self, url: str | URL, *, echo: bool = False, pool_size: int = 5, settings: Settings | None = None
    ) -> None:
        self.url = parse_database_url(url)
        self._settings = settings
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            path = sqlite_path(self.url)
            if path is not None:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise DatabaseError(
                        f"cannot create the directory of SQLite database {path} ({exc.strerror or exc}): "
                        "a file stands in its way or it is not writable; set TENANTGUARD_DATA_DIR or "
                        "TENANTGUARD_DATABASE_URL to a writable place"
                    ) from None
                _create_private(path)
            self.engine = create_engine(
                self.url,
                echo=echo,
                json_deserializer=json_loads,
                connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            )
            _install_sqlite_pragmas(self.engine)
        else:
            if self.url.drivername == "postgresql":
                self.url = self.url.set(drivername="postgresql+psycopg")
            try:
                engine = create_engine(
                    self.url,
                    echo=echo,
                    pool_size=pool_size,
                    max_overflow=10,
                    pool_pre_ping=True,
                    json_deserializer=json_loads,
                    connect_args={"connect_timeout": 5},
                )
            except (ArgumentError, NoSuchModuleError, ImportError) as exc:
                raise DatabaseError(
                    f"cannot use database URL {describe_url(self.url)!r} ({exc}); {URL_HINT}"
                ) from None
            self.engine = engine
        from core.crypto import DIALECT_ATTRIBUTE, LazyKeyring

        self.keyring = LazyKeyring(self._load_keyring)
        setattr(self.engine.dialect, DIALECT_ATTRIBUTE, self.keyring)
        event.listen(self.engine, "handle_error", _own_errors_unwrapped)

    def _load_keyring(self) -> Keyring:
        """The encryption keys (core.crypto); a key file is made only while no encrypted value exists."""
        from core.crypto import Keyring, holds_encrypted_data

        path = self.settings.encryption_key_path
        return Keyring.load(path, create=not path.exists() and not holds_encrypted_data(self.engine))

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        try:
            settings.ensure_dirs()
        except OSError as exc:
            raise DatabaseError(
                f"cannot create the data directory {settings.data_dir} ({exc.strerror or exc}): a file "
                "stands in its way or it is not writable; set TENANTGUARD_DATA_DIR to a writable directory"
            ) from None
        return cls(settings.effective_database_url, settings=settings)

    @property
    def settings(self) -> Settings:
        """The settings this database was opened with (loaded from the environment when it was
        opened by URL alone), so code handed a Database reads the same configuration."""
        if self._settings is None:
            self._settings = Settings()
        return self._settings

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back on error."""
        try:
            conn = self.engine.connect()
        except (OperationalError, DBAPIError) as exc:
            raise explain_database_error(self.url, exc) from exc
        if readonly:
            conn = conn.execution_options(**{_READONLY: True})
        try:
            with Session(bind=conn, expire_on_commit=False) as session:
                try:
                    yield session
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise
        finally:
            conn.close()

    def ping(self) -> None:
        """Fail with a clear DatabaseError when the database cannot be reached or read."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                if self.is_sqlite:
                    conn.exec_driver_sql("PRAGMA schema_version").fetchone()
                conn.rollback()
        except (OperationalError, DBAPIError) as exc:
            raise explain_database_error(self.url, exc) from exc

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (refusing a schema newer than this code)."""
        from core.migrations.runner import upgrade

        self.ping()
        upgrade(self)

    def dispose(self) -> None:
        self.engine.dispose()
