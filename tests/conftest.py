"""Shared fixtures: settings, a fresh migrated database per test (SQLite or PostgreSQL), loopback guard.

Choose the database with ``--db sqlite|postgresql`` (or TENANTGUARD_TEST_DB). In the PostgreSQL
run only tests that touch the database are collected (the others ran in the SQLite run), less the
scenario-quality tests marked ``one_backend`` (does a story become one incident?). When
PostgreSQL is unreachable the run is skipped with a plain message, unless
TENANTGUARD_REQUIRE_POSTGRES=1 (CI), where that is a failure.
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from core.db import Database
from core.models import Connection, Finding, Incident
from core.settings import Settings
from tests import factories

pytest_plugins = ["tests.fixtures.simulator"]

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=("sqlite", "postgresql"),
        default=os.environ.get("TENANTGUARD_TEST_DB", "sqlite"),
        help="database the suite runs on",
    )


def _pg_admin_url() -> str:
    return os.environ.get("TENANTGUARD_TEST_POSTGRES_URL", DEFAULT_PG_URL)


def _postgres_reachable() -> str | None:
    try:
        with psycopg.connect(_pg_admin_url(), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "uses_db: the test touches the database (set automatically)")
    config.addinivalue_line(
        "markers",
        "one_backend: a scenario-quality test (does the story become one incident?) or another "
        "provider's story through the storage path PostgreSQL already runs; its answer does not depend "
        "on the database, so it runs in the SQLite suite only, while PostgreSQL runs every storage test "
        "and the account-takeover end-to-end serve, worker and remediation tests",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "db" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.uses_db)
    if config.getoption("--db") != "postgresql":
        return
    keep = [
        item
        for item in items
        if "db" in getattr(item, "fixturenames", ()) and item.get_closest_marker("one_backend") is None
    ]
    deselected = [item for item in items if item not in keep]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = keep
    problem = _postgres_reachable()
    if problem is None:
        return
    message = f"PostgreSQL suite SKIPPED: cannot connect to {_pg_admin_url()} ({problem})"
    if os.environ.get("TENANTGUARD_REQUIRE_POSTGRES") == "1":
        raise pytest.UsageError(message + " — and TENANTGUARD_REQUIRE_POSTGRES=1 demands it")
    for item in items:
        item.add_marker(pytest.mark.skip(reason=message))


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """`make test`'s ``-n 4``: module-scoped fixtures built once, not once per worker (tests/scheduling.py)."""
    if config.getoption("dist", "load") != "load":
        return None  # an explicit --dist other than the default is honoured
    from tests.scheduling import ModuleScopedFirst

    return ModuleScopedFirst(config, log)


def pytest_report_header(config: pytest.Config) -> str:
    return f"tenantguard database: {config.getoption('--db')}"


@pytest.fixture(autouse=True, scope="session")
def _no_personal_credentials(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test acts as whoever ran the suite: the CLI's stored login and token are never theirs."""
    saved = {k: os.environ.pop(k, None) for k in ("TENANTGUARD_TOKEN", "TENANTGUARD_LOCAL_OPERATOR")}
    saved["TENANTGUARD_CREDENTIALS_FILE"] = os.environ.get("TENANTGUARD_CREDENTIALS_FILE")
    os.environ["TENANTGUARD_CREDENTIALS_FILE"] = str(tmp_path_factory.mktemp("login") / "credentials")
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(autouse=True, scope="session")
def _one_encryption_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One encryption key file (core.crypto) for the session, as one installation has: a database
    opened by URL alone, the test's settings and the serve/CLI processes it starts all read it
    (a key per data directory would leave each of them unable to read the others' rows). Tests of
    the key itself give their own (tests/security/test_encryption_at_rest.py)."""
    saved = os.environ.get("TENANTGUARD_ENCRYPTION_KEY_FILE")
    os.environ["TENANTGUARD_ENCRYPTION_KEY_FILE"] = str(tmp_path_factory.mktemp("keys") / "encryption.key")
    yield
    if saved is None:
        os.environ.pop("TENANTGUARD_ENCRYPTION_KEY_FILE", None)
    else:
        os.environ["TENANTGUARD_ENCRYPTION_KEY_FILE"] = saved


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> Iterator[None]:
    """No test may reach a real SaaS endpoint: name resolution works for loopback only."""
    real = socket.getaddrinfo

    def guarded(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        name = host.decode() if isinstance(host, bytes) else host
        if name is None or name in _LOOPBACK_NAMES or str(name).startswith("127."):
            return real(host, *args, **kwargs)
        raise OSError(f"test tried to resolve {name!r}: tests may only talk to 127.0.0.1")

    socket.getaddrinfo = guarded  # type: ignore[assignment]
    try:
        yield
    finally:
        socket.getaddrinfo = real  # type: ignore[assignment]


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def _db_template(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database made once per session, copied for each test (fast and isolated)."""
    kind = request.config.getoption("--db")
    if kind == "sqlite":
        path = tmp_path_factory.mktemp("template") / "template.db"
        db = Database(f"sqlite:///{path}")
        db.upgrade()
        db.dispose()
        with sqlite3.connect(path, isolation_level=None) as conn:  # fold the WAL into the file we copy
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        yield str(path)
        return
    name = f"tg_tpl_{_worker()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(_pg_admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _pg_admin_url().rsplit("/", 1)[0] + f"/{name}"
    db = Database(url)
    db.upgrade()
    db.dispose()
    yield name
    with psycopg.connect(_pg_admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(request: pytest.FixtureRequest, _db_template: str, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, migrated, empty database for this test alone."""
    if request.config.getoption("--db") == "sqlite":
        path = tmp_path / "tenantguard.db"
        shutil.copyfile(_db_template, path)
        yield f"sqlite:///{path}"
        return
    name = f"tg_t_{_worker()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_pg_admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{_db_template}" STRATEGY FILE_COPY')
    yield _pg_admin_url().rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(_pg_admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url)


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database.from_settings(settings)
    yield database
    database.dispose()


# Row factories (tests/factories.py), bound to this test's database.


@pytest.fixture
def make_finding(db: Database) -> Callable[..., Finding]:
    return functools.partial(factories.make_finding, db)


@pytest.fixture
def make_incident(db: Database) -> Callable[..., Incident]:
    return functools.partial(factories.make_incident, db)


@pytest.fixture
def make_connection(db: Database) -> Callable[..., Connection]:
    return functools.partial(factories.make_connection, db)


@pytest.fixture
def make_principal(db: Database) -> Callable[..., factories.MadePrincipal]:
    return functools.partial(factories.make_principal, db)
