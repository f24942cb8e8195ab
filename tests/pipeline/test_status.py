"""`tenantguard status`, run as the operator runs it: every connection's streams with their last
success, lag and errors, the stage lags, the workers seen and (with Procrastinate) the queue depth."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from collectors.connections import ConnectionDefinition, upsert_connection
from collectors.fencing import ensure_checkpoint
from core.audit import Actor, Channel
from core.clock import utcnow
from core.db import Database
from core.models.connection import Checkpoint, CollectionRun
from core.settings import Settings


def _status(database_url: str, tmp_path: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", "from cli.main import run; run()", "status"],
        capture_output=True,
        text=True,
        env={**os.environ, "TENANTGUARD_DATABASE_URL": database_url, "TENANTGUARD_DATA_DIR": str(tmp_path)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _row(output: str, *cells: str) -> str:
    rows = [line for line in output.splitlines() if all(cell in line for cell in cells)]
    assert rows, f"no row with {cells} in:\n{output}"
    return rows[0]


def test_status_shows_streams_stages_and_workers(
    db: Database, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    # given a Slack connection whose audit stream succeeded three hours ago and whose other stream fails
    definition = ConnectionDefinition(
        name="acme-slack", provider="slack", tenant="T1", secrets={"audit_token": "env:TG_TEST_AUDIT_TOKEN"}
    )
    connection, _ = upsert_connection(db, definition, actor=Actor("principal:test", Channel.CLI))
    assert connection.id is not None
    now = utcnow()
    healthy = ensure_checkpoint(db, connection.id, "audit")
    failing = ensure_checkpoint(db, connection.id, "conversations")
    with db.session() as session:
        ok = session.get(Checkpoint, healthy)
        ok.health, ok.last_success_at = "ok", now - timedelta(hours=3)
        bad = session.get(Checkpoint, failing)
        bad.health, bad.health_reason = "unhealthy", "missing scope channels:history"
        session.add_all([ok, bad])
        # and two failed runs of it in the last hour, and a worker collecting right now
        for minutes in (5, 20):
            started = now - timedelta(minutes=minutes)
            session.add(
                CollectionRun(
                    connection_id=connection.id,
                    stream="conversations",
                    worker="host-a:1:x",
                    started_at=started,
                    heartbeat_at=started,
                    finished_at=started,
                    status="failed",
                )
            )
        session.add(CollectionRun(connection_id=connection.id, stream="audit", worker="host-b:2:y"))
    jobs = 0
    if db.dialect == "postgresql":  # and, on the worker engine, one collect job waiting
        from pipeline.workers import WorkerApp

        app = WorkerApp(db, settings)
        with app.opened():
            assert app.defer_collect(connection.id, "audit")
            assert not app.defer_collect(connection.id, "audit")  # one waiting job per stream
            assert app.defer_collect(connection.id, "conversations", schedule_in={"seconds": 600})
        jobs = 1
    # when the operator runs `tenantguard status`
    output = _status(database_url, tmp_path)
    # then each stream is a row with its health, last success, lag and errors
    audit = _row(output, "acme-slack", "audit")
    assert [c.strip() for c in audit.split("│")][3:7] == ["ok", "3.0 h ago", "3.0 h", "0"], audit
    conversations = _row(output, "acme-slack", "conversations")
    cells = [c.strip() for c in conversations.split("│")]
    assert cells[3:7] == ["unhealthy", "never", "-", "2"], conversations  # 2 failed runs in the last hour
    assert cells[7].startswith("missing scope channels:history")
    # and the stages with their backlog, and the worker that is collecting
    _row(output, "detect")
    _row(output, "incidents")
    assert "1 stream(s)" in _row(output, "collector host-b:2:y")
    if jobs:
        assert "engine: procrastinate" in output
        collect = _row(output, "collect ")
        cells = [c.strip() for c in collect.split("│")]
        assert cells[1:5] == ["collect", "1", "1", "0"], collect  # due now, scheduled later, running
    else:
        assert "engine: embedded" in output
