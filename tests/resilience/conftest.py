"""Resilience fixtures: more than one fresh database per test (a clean run and a disturbed run).

The short CI form of `make chaos`: small tenants, one or two SIGKILLs, simulator faults; never a
PostgreSQL restart (that needs the private server `python -m bench.chaos postgres-restart` starts).
"""

from __future__ import annotations

import importlib
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import _pg_admin_url, _worker

STAGES = {
    "collectors.collect_once": ("collectors", "collect_once"),
    "collectors.connections_from_simulator": ("collectors", "connections_from_simulator"),
    "detectors.pipeline.detect_new": ("detectors.pipeline", "detect_new"),
    "timeline.build_incidents": ("timeline", "build_incidents"),
}


def missing_stages() -> list[str]:
    missing = []
    for name, (module_name, attribute) in STAGES.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            missing.append(name)
            continue
        if not hasattr(module, attribute):
            missing.append(name)
    return missing


@pytest.fixture
def pipeline_stages() -> None:
    """Skip (saying which) while a stage's owner has not landed its entry point."""
    missing = missing_stages()
    if missing:
        pytest.skip(f"pipeline stages not in this tree yet: {', '.join(missing)}")


@pytest.fixture
def fresh_database_url(
    request: pytest.FixtureRequest, _db_template: str, tmp_path: Path
) -> Iterator[Callable[[str], str]]:
    """A factory: fresh migrated databases of the suite's kind (SQLite file or PostgreSQL database)."""
    created: list[str] = []
    postgres = request.config.getoption("--db") == "postgresql"

    def make(label: str) -> str:
        if not postgres:
            path = tmp_path / f"{label}.db"
            shutil.copyfile(_db_template, path)
            return f"sqlite:///{path}"
        name = f"tg_r_{_worker()}_{label}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(_pg_admin_url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{_db_template}" STRATEGY FILE_COPY')
        created.append(name)
        return _pg_admin_url().rsplit("/", 1)[0] + f"/{name}"

    yield make
    for name in created:
        with psycopg.connect(_pg_admin_url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def simulators(request: pytest.FixtureRequest) -> Callable[..., object]:
    """The simulator helper's `make_simulator` factory, or a skip while it has not landed."""
    try:
        return request.getfixturevalue("make_simulator")
    except pytest.FixtureLookupError:
        pytest.skip("the simulator's make_simulator fixture is not in this tree yet")
