"""Two tenants' detection on two `tenantguard worker` processes at once (PostgreSQL): tenant A's
huge backlog does not delay tenant B's findings.

Before partitions one cursor read every event in id order under one lock, so B's events, stored
after A's backlog, waited for all of it. Now each tenant partition has its own cursor and job
(`detect:<partition>`), so B's spray becomes a finding while A's backlog is still being read, and
the jobs of the two partitions run at the same time on different workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import col, func, select

from core.db import Database
from core.models import Connection, Event, Finding
from core.models.anomaly import AnalysisCursor
from detectors.partitions import cursor_name, partition_of

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from cli.main import run; run()"]
P = 16
BACKLOG = 30_000  # tenant A's directory audits: about a minute of detection for one partition
T0 = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def _connection(db: Database, name: str, organisation: str) -> int:
    with db.session() as session:
        # disabled: nothing to collect, their stored events are still detected
        row = Connection(
            name=name,
            provider="m365",
            tenant=f"{organisation}.example",
            enabled=False,
            config={"organisation": organisation},
        )
        session.add(row)
        session.flush()
        return int(row.id or 0)


def _backlog(db: Database, connection_id: int) -> int:
    last = 0
    for start in range(0, BACKLOG, 5000):
        with db.session() as session:
            rows = [
                Event(
                    connection_id=connection_id,
                    provider="m365",
                    stream="directory_audits",
                    provider_event_id=f"audit-{n}",
                    occurred_at=T0 + timedelta(seconds=n),
                    actor="admin@northwind.example",
                    action="Update user",
                    raw={"id": f"audit-{n}", "activityDisplayName": "Update user", "result": "success"},
                )
                for n in range(start, min(BACKLOG, start + 5000))
            ]
            session.add_all(rows)
            session.flush()
            last = int(rows[-1].id or 0)
    return last


def _spray(db: Database, connection_id: int) -> None:
    with db.session() as session:
        for n in range(12):
            at = T0 + timedelta(hours=1, seconds=30 * n)
            raw = {
                "id": f"signin-{n}",
                "createdDateTime": at.isoformat().replace("+00:00", "Z"),
                "userPrincipalName": f"user{n}@contoso.example",
                "ipAddress": "185.220.101.34",
                "clientAppUsed": "Browser",
                "status": {"errorCode": 50126},
            }
            session.add(
                Event(
                    connection_id=connection_id,
                    provider="m365",
                    stream="signins",
                    provider_event_id=raw["id"],
                    occurred_at=at,
                    actor=raw["userPrincipalName"],
                    ip=raw["ipAddress"],
                    raw=raw,
                )
            )


def _spray_found(db: Database) -> bool:
    with db.session(readonly=True) as session:
        return (
            session.exec(select(Finding).where(Finding.rule_id == "m365_password_spray")).first() is not None
        )


def _position(db: Database, partition: int) -> int:
    with db.session(readonly=True) as session:
        row = session.get(AnalysisCursor, cursor_name(partition, P) + ".event_time")
        return int(row.position) if row is not None else 0


def _wait(condition: Callable[[], Any], timeout: float, what: str, processes: list, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        for process in processes:
            assert process.poll() is None, log.read_text()[-3000:]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return value


def _detect_jobs(db: Database) -> list[tuple[int, int, datetime, datetime]]:
    """(partition, worker, started, finished) of every finished detect job."""
    with db.session(readonly=True) as session:
        rows = session.execute(
            text(
                "SELECT (j.args->>'partition')::int, j.worker_id, "
                "min(e.at) FILTER (WHERE e.type = 'started'), max(e.at) FILTER (WHERE e.type = 'succeeded') "
                "FROM procrastinate_jobs j JOIN procrastinate_events e ON e.job_id = j.id "
                "WHERE j.task_name = 'tenantguard.detect' AND j.args->>'partition' IS NOT NULL "
                "GROUP BY j.id"
            )
        ).all()
    return [
        (int(p), int(w), s, f) for p, w, s, f in rows if w is not None and s is not None and f is not None
    ]


def test_two_tenants_are_detected_at_once_and_a_backlog_does_not_delay_the_other(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    if db.dialect != "postgresql":
        pytest.skip("workers are a PostgreSQL deployment; SQLite is for one process")
    north, contoso = partition_of("northwind", P), partition_of("contoso", P)
    assert north != contoso
    # given tenant A (northwind) with a backlog of 30,000 stored events, and tenant B (contoso)
    # whose password spray was stored after all of it
    a = _connection(db, "northwind-entra", "northwind")
    b = _connection(db, "contoso-entra", "contoso")
    last_of_a = _backlog(db, a)
    _spray(db, b)
    with db.session(readonly=True) as session:
        a_until = session.exec(select(func.max(Event.occurred_at)).where(col(Event.connection_id) == a)).one()
    env = {
        **os.environ,
        "TENANTGUARD_DATABASE_URL": database_url,
        "TENANTGUARD_DATA_DIR": str(tmp_path / "data"),
        "TENANTGUARD_PIPELINE_ENGINE": "procrastinate",
        "TENANTGUARD_PIPELINE_PARTITIONS": str(P),
        "TENANTGUARD_PIPELINE_SWEEP_SECONDS": "3",
        "TENANTGUARD_PIPELINE_BATCH_SIZE": "1000",
        "TENANTGUARD_PIPELINE_MAX_BATCHES": "1",
        "TENANTGUARD_WORKER_HEARTBEAT_SECONDS": "1",
    }
    log = tmp_path / "workers.log"
    out = log.open("ab")
    # when two workers (one job at a time each) start
    processes = [
        subprocess.Popen([*CLI, "worker", "--concurrency", "1"], cwd=ROOT, env=env, stdout=out, stderr=out)
        for _ in range(2)
    ]
    try:
        _wait(lambda: _spray_found(db), 120, "tenant B's password-spray finding", processes, log)
        # then B's finding exists while A's backlog is still being read
        assert _position(db, north) < int(a_until.timestamp() * 1_000_000), "A's backlog was already done"
        # and A's and B's detection jobs ran at the same time on the two workers

        def overlapping() -> bool:
            jobs = _detect_jobs(db)
            return any(
                pa == north and pb == contoso and wa != wb and sa < fb and sb < fa
                for pa, wa, sa, fa in jobs
                for pb, wb, sb, fb in jobs
            )

        _wait(overlapping, 120, "A's and B's detect jobs running at once on two workers", processes, log)
        # and A's backlog is read to the end
        _wait(
            lambda: _position(db, north) > int(a_until.timestamp() * 1_000_000),
            300,
            "A's backlog detected",
            processes,
            log,
        )
        with db.session(readonly=True) as session:
            reader = session.get(AnalysisCursor, cursor_name(north, P))
            assert reader is not None and reader.position >= last_of_a
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        out.close()
