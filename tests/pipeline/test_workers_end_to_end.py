"""End to end on several processes, as an operator deploys it on PostgreSQL: `tenantguard serve`
for the API (``TENANTGUARD_PIPELINE_ENGINE=procrastinate``: it runs no stage itself) and two
`tenantguard worker` processes, all watching the simulator through the file `simulator serve
--write-connections` wrote — nothing else touches them. The default scenario's attack story
becomes a P1/P2 incident, announced in Slack; the workers re-read inventory that audit events
named, and serve's /metrics carries the stages the workers ran."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from core.db import Database
from core.models import AuditRecord, Incident
from core.models.connection import CollectionRun
from core.settings import Settings
from simulator.http import free_port
from tests.pipeline.test_simulator_connections_end_to_end import _start_simulator, _urgent_incidents
from tests.serve_process import CLI, stop

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]


def _wait(condition: Callable[[], Any], what: str, processes: dict[str, subprocess.Popen], log: Path) -> Any:
    deadline = time.monotonic() + 480  # generous: a loaded machine (the goal is 2 minutes)
    while True:
        value = condition()
        if value:
            return value
        for name, process in processes.items():
            assert process.poll() is None, f"{name} exited ({process.returncode}):\n{log.read_text()[-4000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{log.read_text()[-4000:]}"
        time.sleep(1)


def _announced(admin_url: str, incident_ids: list[int]) -> bool:
    changes = httpx.get(f"{admin_url}/changes", timeout=30).json()
    posts = [str(c.get("target", {}).get("text", "")) for c in changes if c.get("action") == "post_message"]
    return any(f"Incident #{i}:" in p for i in incident_ids for p in posts)


def _runs_by_worker(db: Database) -> dict[str, set[str]]:
    with db.session(readonly=True) as session:
        rows = session.exec(
            select(CollectionRun.worker, CollectionRun.stream).where(
                col(CollectionRun.finished_at).is_not(None)
            )
        ).all()
    out: dict[str, set[str]] = {}
    for worker, stream in rows:
        out.setdefault(str(worker), set()).add(str(stream))
    return out


def test_serve_and_two_workers_raise_and_announce_the_attack_story(
    db: Database, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    if db.dialect != "postgresql":
        pytest.skip("workers are a PostgreSQL deployment; SQLite is for one process")
    # given a simulator that wrote its connections file (the default scenario: an account takeover)
    connections = tmp_path / "operator" / "connections.toml"
    simulator, info = _start_simulator(connections, tmp_path / "simulator.log")
    processes: dict[str, subprocess.Popen] = {"simulator": simulator}
    log = tmp_path / "processes.log"
    out = log.open("ab")
    port = free_port()
    try:
        # when serve (API only) and two workers start with that file and nothing else
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTGUARD_SIM")} | {
            "TENANTGUARD_DATA_DIR": str(settings.data_dir),
            "TENANTGUARD_DATABASE_URL": database_url,
            "TENANTGUARD_CONNECTIONS_FILE": str(connections),
            "TENANTGUARD_PIPELINE_ENGINE": "procrastinate",
            "TENANTGUARD_PIPELINE_SWEEP_SECONDS": "10",
            "TENANTGUARD_WORKER_HEARTBEAT_SECONDS": "1",
        }
        processes["serve"] = subprocess.Popen(
            [*CLI, "serve", "--port", str(port)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        for n in range(2):
            processes[f"worker {n}"] = subprocess.Popen(
                [*CLI, "worker", "--concurrency", "3"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        # then the attack story becomes a P1/P2 incident
        urgent = _wait(lambda: _urgent_incidents(db), "a P1/P2 incident", processes, log)
        # and it is announced in the Slack channel of the connections file
        _wait(
            lambda: _announced(info["admin_url"], [i for i, _ in _urgent_incidents(db)]),
            f"the Slack announcement of {urgent}",
            processes,
            log,
        )
        # and both workers ran streams, inventory included
        runs = _wait(  # both workers, and the inventory streams whichever worker took them
            lambda: (
                (r := _runs_by_worker(db))
                and len(r) >= 2
                and {"users", "inbox_rules"} <= set().union(*r.values())
                and r
            ),
            "runs on both workers, users and inbox_rules among them",
            processes,
            log,
        )
        assert {"users", "inbox_rules"} <= set().union(*runs.values()), runs

        # and serve's /metrics shows the stages the workers ran (serve runs none of them)
        def stage_series() -> str | None:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
            wanted = (
                'tenantguard_stage_last_success_timestamp_seconds{stage="detect"}',
                "tenantguard_worker_jobs{",
            )
            return text if all(w in text for w in wanted) else None

        metrics = _wait(stage_series, "per-stage series in /metrics", processes, log)
        assert 'tenantguard_stage_last_success_timestamp_seconds{stage="incidents"}' in metrics

        # and a worker signed the audit chain's head (serve runs no stage: the workers' cycle does)
        def checkpointed() -> AuditRecord | None:
            with db.session(readonly=True) as session:
                return session.exec(
                    select(AuditRecord).where(AuditRecord.action == "audit.checkpointed")
                ).first()

        signed = _wait(checkpointed, "a signed audit checkpoint", processes, log)
        assert signed.details["signature"] and signed.details["seq"] == signed.seq - 1
    finally:
        for name, process in processes.items():
            if name != "simulator":
                stop(process)
        stop(simulator)
        out.close()
    with db.session(readonly=True) as session:
        assert session.exec(select(Incident).where(col(Incident.priority).in_(["P1", "P2"]))).first()
