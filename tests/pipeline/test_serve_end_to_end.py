"""End to end: `tenantguard serve`, started as a real process against the simulator and touched by
nothing else, collects, detects, raises the attack story's P1 incident and announces it in Slack."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlmodel import select

from collectors import connections_from_simulator
from collectors.connections import sync_connections
from core.audit import Actor
from core.db import Database
from core.models import Incident
from core.settings import Settings
from tests.serve_process import serve_until

pytestmark = pytest.mark.slow


def _p1_incidents(db: Database) -> list[int]:
    with db.session(readonly=True) as session:
        return [i for i in session.exec(select(Incident.id).where(Incident.priority == "P1")).all() if i]


def _posts_about(handle, incident_ids: list[int]) -> list[str]:
    """Slack messages about these incidents (announced when they opened, updated as they escalate)."""
    texts = [c["target"].get("text", "") for c in handle.changes if c["action"] == "post_message"]
    return [t for t in texts if any(f"Incident #{i}:" in t for i in incident_ids)]


def test_serve_alone_raises_the_p1_incident_and_announces_it(
    make_simulator, db: Database, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    # given a tenant in the simulator with an account takeover, connected as an operator would
    handle = make_simulator("account_takeover", users=30, days=3)
    sync_connections(
        db,
        connections_from_simulator(handle.info, extra_config={"notify_channel": "#security-ops"}),
        actor=Actor.cli("principal:test"),
    )
    # (the simulator link put the connections' secrets in this process's environment)
    env = dict(
        os.environ,
        TENANTGUARD_DATA_DIR=str(settings.data_dir),
        TENANTGUARD_DATABASE_URL=database_url,
    )
    log = tmp_path / "serve.log"
    # when `tenantguard serve` runs by itself
    serve_until(env, log, lambda: _posts_about(handle, _p1_incidents(db)), "announced P1 incident")
    # then the attack story is one P1 incident, announced in the configured channel
    [p1] = _p1_incidents(db)
    assert _posts_about(handle, [p1])
    # and the scheduler never skipped a job it had been asked for twice (it used to, page after page)
    assert "maximum number of running instances" not in log.read_text()
