"""End to end: `tenantguard serve`, a real process on the simulator, reads the configuration, runs
posture, and a compliance officer fetches each benchmark's framework report through the API."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from api.config import ApiSettings
from api.principals.service import create_principal
from api.tokens import load_pepper
from collectors import connections_from_simulator
from collectors.connections import sync_connections
from collectors.streams.base import StreamKind, configured_streams
from core.audit import Actor
from core.db import Database
from core.models import AuditRecord, Connection, PostureResult, Role
from core.models.connection import Checkpoint
from core.settings import Settings
from detectors.posture import snapshots_pending
from simulator.http import free_port
from tests.cli_process import popen_cli

pytestmark = pytest.mark.slow


def _posture_settled(db: Database) -> bool:
    """Every connection's snapshot streams have succeeded once and posture has evaluated what
    they stored (the first evaluation may come after one provider's snapshots and before another's)."""
    with db.session(readonly=True) as session:
        connections = session.exec(select(Connection)).all()
        succeeded = {
            (c.connection_id, c.stream)
            for c in session.exec(select(Checkpoint)).all()
            if c.last_success_at is not None
        }
        evaluated = set(session.exec(select(PostureResult.connection_id).distinct()).all())
    for connection in connections:
        snapshot_streams = [s for s in configured_streams(connection) if s.kind is StreamKind.SNAPSHOT]
        if any((connection.id, s.name) not in succeeded for s in snapshot_streams):
            return False
        if connection.id not in evaluated:
            return False
    return not snapshots_pending(db)


def test_serve_runs_posture_and_serves_the_framework_reports_to_a_compliance_officer(
    make_simulator, db: Database, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    # given a tenant in the simulator, connected as an operator would, and a compliance officer
    handle = make_simulator("quiet_week", users=10, days=1)
    sync_connections(db, connections_from_simulator(handle.info), actor=Actor.cli("principal:test"))
    _, token = create_principal(
        db,
        load_pepper(settings, ApiSettings()),
        name="carol",
        role=Role.COMPLIANCE_OFFICER,
        actor=Actor.cli("principal:test"),
    )
    port = free_port()
    env = dict(os.environ, TENANTGUARD_DATA_DIR=str(settings.data_dir), TENANTGUARD_DATABASE_URL=database_url)
    log = tmp_path / "serve.log"
    # when `tenantguard serve` runs by itself until posture has been evaluated
    with log.open("w") as out:
        server = popen_cli(
            ["serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 240  # generous: CI is a loaded machine
            while not _posture_settled(db):
                assert server.poll() is None, (
                    f"serve exited ({server.returncode}):\n{log.read_text()[-3000:]}"
                )
                assert time.monotonic() < deadline, f"posture never ran:\n{log.read_text()[-3000:]}"
                time.sleep(1)
            # then the framework reports come from the running service
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as client:
                for framework, provider in (("scuba-m365", "m365"), ("cis-gws", "google")):
                    response = client.get(f"/compliance/frameworks/{framework}/report")
                    assert response.status_code == 200, response.text
                    report = response.json()
                    assert [t["provider"] for t in report["tenants"]] == [provider]
                    failing = [c for c in report["controls"] if c["status"] == "fail"]
                    assert failing, report["summary"]
                    evidence = [
                        e
                        for c in failing
                        for r in c["checks"]
                        if r["status"] == "fail"
                        for e in r["evidence"]
                    ]
                    assert evidence and all(e["collected_at"] for e in evidence)
                html = client.get("/compliance/frameworks/soc2/report", params={"format": "html"})
                assert html.status_code == 200 and "CC6.1" in html.text
                assert client.get("/compliance/frameworks/soc2/report").status_code == 200
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)
    # and each export is in the audit chain, under the officer's name
    with db.session(readonly=True) as session:
        exports = session.exec(
            select(AuditRecord).where(AuditRecord.action == "compliance.report_exported")
        ).all()
        assert {r.actor for r in exports} == {"principal:carol"} and len(exports) == 4
