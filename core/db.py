"""Database engine and sessions: a SQLite file by default, PostgreSQL when the URL says so.

SQLite write transactions start with ``BEGIN IMMEDIATE`` so that one writer at a time holds the
lock from its first statement (no "database is locked" upgrade failures half-way through a
transaction); WAL keeps readers unblocked. Errors that mean "this database cannot be used"
become :class:`core.errors.DatabaseError` with a message saying what to do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

import core.models  # noqa: F401  (registers every table on SQLModel.metadata)
from core.errors import DatabaseError
from core.settings import Settings

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


class Database:
    """One engine plus the sessions made from it."""

    def __init__(
        self, url: str | URL, *, echo: bool = False, pool_size: int = 5, settings: Settings | None = None
    ) -> None:
        self.url = make_url(url)
        self._settings = settings
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            if self.url.database and self.url.database != ":memory:":
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(
                self.url,
                echo=echo,
                connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            )
            _install_sqlite_pragmas(self.engine)
        else:
            if self.url.drivername == "postgresql":
                self.url = self.url.set(drivername="postgresql+psycopg")
            self.engine = create_engine(
                self.url,
                echo=echo,
                pool_size=pool_size,
                max_overflow=10,
                pool_pre_ping=True,
                connect_args={"connect_timeout": 5},
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        settings.ensure_dirs()
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
