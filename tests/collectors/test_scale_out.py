"""Scale-out on PostgreSQL: `tenantguard worker` processes (Procrastinate) share the streams.

Each stream runs in one place at a time (the job lock), three workers run a fair share of the
stream-runs each, and when a worker is SIGKILLed its streams resume on the others — with the
store still equal to the simulator's ground truth, nothing lost and nothing twice."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from collectors import connections_from_simulator
from collectors.connections import definitions_to_toml
from core.clock import as_utc, utcnow
from core.db import Database
from core.models import Event
from core.models.connection import CollectionRun

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
STREAMS = {
    "m365": ["signins", "directory_audits", "unified_audit", "risk_detections"],
    "google": ["login", "admin", "drive", "token", "saml", "user_accounts"],
    "slack": ["audit"],
}
COPIES = 3  # three tenants, each with a connection to each SaaS: 33 streams


def _truth(sim) -> set[tuple[str, str, str]]:
    return {
        (provider, stream, eid)
        for provider, streams in STREAMS.items()
        for stream in streams
        for eid in sim.events(f"{provider}:{stream}", visible=True, ids=True)["ids"]
    }


def _stored(db: Database) -> list[tuple[str, str, str, int]]:
    with db.session(readonly=True) as s:
        rows = s.exec(
            select(Event.provider, Event.stream, Event.provider_event_id, Event.connection_id)
        ).all()
        return [tuple(r) for r in rows]


def _runs(db: Database) -> list[CollectionRun]:
    with db.session(readonly=True) as s:
        return list(s.exec(select(CollectionRun).order_by(CollectionRun.started_at)).all())


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _pid(worker: str) -> int:
    return int(worker.split(":")[1])


@pytest.fixture
def workers(db: Database, database_url: str, tmp_path: Path, past_simulator) -> Iterator[dict]:
    """Three `tenantguard worker` processes over 33 streams of three throttling tenants, polled every 2 s."""
    if db.dialect != "postgresql":
        pytest.skip("workers are a PostgreSQL deployment; SQLite is for one process")
    sim = past_simulator(faults="429=0.1,500=0.02,retry_after=0:1")
    definitions = []
    for copy in range(COPIES):
        for provider, streams in STREAMS.items():
            for d in connections_from_simulator(
                sim.info,
                providers=[provider],
                streams={provider: streams},
                intervals=dict.fromkeys(streams, 2),
            ):
                # each copy is its own tenant (organisation): tenants' detection spreads across
                # workers as a deployment's would, rather than every event in one partition
                config = {**d.config, "organisation": f"tenant-{copy}"}
                definitions.append(dataclasses.replace(d, name=f"{d.name}-{copy}", config=config))
    connections = tmp_path / "connections.toml"
    connections.write_text(definitions_to_toml(definitions))
    env = {
        **os.environ,
        "TENANTGUARD_DATABASE_URL": database_url,
        "TENANTGUARD_DATA_DIR": str(tmp_path / "data"),
        "TENANTGUARD_CONNECTIONS_FILE": str(connections),
        "TENANTGUARD_PIPELINE_ENGINE": "procrastinate",
        "TENANTGUARD_PIPELINE_SWEEP_SECONDS": "5",
        "TENANTGUARD_WORKER_HEARTBEAT_SECONDS": "1",
        "TENANTGUARD_COLLECTOR_PAGE_SIZE": "5",
    }
    log_path = tmp_path / "workers.log"
    log = log_path.open("ab")
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", "from cli.main import run; run()", "worker", "--concurrency", "3"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
        )
        for _ in range(3)
    ]
    try:
        yield {"sim": sim, "processes": processes, "log": log_path}
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
        log.close()


def _assert_no_overlap(runs: list[CollectionRun]) -> None:
    by_stream: dict[tuple[int, str], list[CollectionRun]] = defaultdict(list)
    for run in runs:
        by_stream[(run.connection_id, run.stream)].append(run)
    for key, stream_runs in by_stream.items():  # a killed run ends at its last heartbeat
        for earlier, later in zip(stream_runs, stream_runs[1:], strict=False):
            assert later.started_at >= (earlier.finished_at or earlier.heartbeat_at), f"{key} overlapped"


def test_three_workers_each_run_a_third_of_the_stream_runs(db: Database, workers: dict) -> None:
    # given three workers and 33 streams, when they have run 300 stream-runs between them
    processes = workers["processes"]

    def enough() -> bool:
        for process in processes:
            assert process.poll() is None, workers["log"].read_text()[-3000:]
        return sum(1 for r in _runs(db) if r.finished_at is not None) >= 300

    _wait(enough, 400, "300 finished stream-runs")
    runs = [r for r in _runs(db) if r.finished_at is not None]
    # then each worker ran 33 % ± 10 % of them
    shares = Counter(_pid(r.worker) for r in runs)
    assert set(shares) == {p.pid for p in processes}
    for pid, count in shares.items():
        assert 0.233 <= count / len(runs) <= 0.433, f"worker {pid} ran {count} of {len(runs)}: {shares}"
    # and every stream ran, never in two places at once
    assert len({(r.connection_id, r.stream) for r in runs}) == COPIES * sum(map(len, STREAMS.values()))
    _assert_no_overlap(_runs(db))


def test_a_killed_workers_streams_resume_on_another_within_30_s(db: Database, workers: dict) -> None:
    processes = workers["processes"]
    by_pid = {p.pid: p for p in processes}
    truth = _truth(workers["sim"])
    caught: list[subprocess.Popen[bytes]] = []

    def a_worker_is_collecting() -> bool:
        caught.extend(
            by_pid[_pid(r.worker)] for r in _runs(db) if r.status == "running" and _pid(r.worker) in by_pid
        )
        return bool(caught)

    # when a worker is killed while it is collecting
    _wait(a_worker_is_collecting, 120, "a worker to be collecting")
    victim = caught[0]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = utcnow()
    orphaned = {
        (r.connection_id, r.stream)
        for r in _runs(db)
        if _pid(r.worker) == victim.pid and r.finished_at is None
    }
    assert orphaned

    def resumed() -> bool:
        done = {
            (r.connection_id, r.stream)
            for r in _runs(db)
            if _pid(r.worker) != victim.pid and r.status == "succeeded" and as_utc(r.started_at) >= killed_at
        }
        return orphaned <= done

    _wait(resumed, 120, "the killed worker's streams to run on the others")
    # then each of its streams started again on another worker within 30 s of the kill
    for key in orphaned:
        first = min(
            as_utc(r.started_at)
            for r in _runs(db)
            if (r.connection_id, r.stream) == key
            and _pid(r.worker) != victim.pid
            and as_utc(r.started_at) >= killed_at
        )
        assert first - killed_at <= timedelta(seconds=30), f"{key} resumed {first - killed_at} after the kill"

    # and the store ends equal to the ground truth: nothing lost, nothing twice
    def complete() -> bool:
        return len(set(_stored(db))) >= COPIES * len(truth)

    _wait(complete, 300, "every event of every connection to be stored")
    stored = _stored(db)
    assert not [k for k, n in Counter(stored).items() if n > 1]
    per_connection = Counter(connection_id for *_, connection_id in stored)
    assert len(per_connection) == COPIES * len(STREAMS)
    assert {(p, s, e) for p, s, e, _ in stored} == truth
    assert len(stored) == COPIES * len(truth)
    _assert_no_overlap(_runs(db))
