"""Scale-out on PostgreSQL: three scheduler worker processes share the streams. No stream ever runs
in two places at once, every stream progresses, and when one worker is killed the others take over
its streams — and the store still ends equal to the simulator's ground truth."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from sqlmodel import func, select

from collectors import connections_from_simulator
from collectors.connections import definitions_to_toml
from core.db import Database
from core.models import Event
from core.models.connection import Checkpoint, CollectionRun

ROOT = Path(__file__).resolve().parents[2]
STREAMS = {
    "m365": ["signins", "directory_audits", "unified_audit", "risk_detections"],
    "google": ["login", "admin", "drive", "token", "saml", "user_accounts"],
    "slack": ["audit"],
}


def _truth(sim) -> set[tuple[str, str, str]]:
    return {
        (provider, stream, eid)
        for provider, streams in STREAMS.items()
        for stream in streams
        for eid in sim.events(f"{provider}:{stream}", visible=True, ids=True)["ids"]
    }


def _stored(db: Database) -> list[tuple[str, str, str]]:
    with db.session(readonly=True) as s:
        return [tuple(r) for r in s.exec(select(Event.provider, Event.stream, Event.provider_event_id)).all()]


def _runs(db: Database) -> list[CollectionRun]:
    with db.session(readonly=True) as s:
        return list(s.exec(select(CollectionRun).order_by(CollectionRun.started_at)).all())


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _pid(worker: str) -> int:
    return int(worker.split(":")[1])


@pytest.mark.slow
def test_workers_share_streams_never_overlap_and_take_over_a_killed_worker(
    db: Database, database_url: str, tmp_path: Path, past_simulator
) -> None:
    if db.dialect != "postgresql":
        pytest.skip("several worker processes is a PostgreSQL deployment; SQLite is for one process")
    # given a throttling tenant with eleven event streams polled every two seconds
    sim = past_simulator(faults="429=0.1,500=0.02,retry_after=0:1")
    truth = _truth(sim)
    definitions = [
        d
        for provider, streams in STREAMS.items()
        for d in connections_from_simulator(
            sim.info, providers=[provider], streams={provider: streams}, intervals=dict.fromkeys(streams, 2)
        )
    ]
    connections = tmp_path / "connections.toml"
    connections.write_text(definitions_to_toml(definitions))
    env = {
        **os.environ,
        "TENANTGUARD_DATABASE_URL": database_url,
        "TENANTGUARD_DATA_DIR": str(tmp_path / "data"),
        "TENANTGUARD_CONNECTIONS_FILE": str(connections),
        "TENANTGUARD_COLLECTOR_PAGE_SIZE": "5",
        "TENANTGUARD_COLLECTOR_THREADS": "2",
        "TENANTGUARD_COLLECTOR_LEASE_SECONDS": "4",
    }
    log = (tmp_path / "workers.log").open("ab")
    # when three workers run, and one is killed while it is collecting
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "collectors", "--refresh-seconds", "5"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
        )
        for _ in range(3)
    ]
    by_pid = {worker.pid: worker for worker in workers}
    caught: list[subprocess.Popen[bytes]] = []

    def a_worker_is_collecting() -> bool:
        # whichever worker won the leases first: the others may hold every stream for a while
        caught.extend(
            by_pid[_pid(r.worker)] for r in _runs(db) if r.status == "running" and _pid(r.worker) in by_pid
        )
        return bool(caught)

    try:
        _wait(a_worker_is_collecting, 90, "a worker to be collecting")
        victim = caught[0]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        _wait(lambda: set(_stored(db)) >= truth, 240, "every event to be stored")  # generous: CI is loaded
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        log.close()

    # then the store equals the ground truth, without duplicates
    stored = _stored(db)
    assert not [k for k, n in Counter(stored).items() if n > 1]
    assert set(stored) == truth
    runs = _runs(db)
    by_stream: dict[tuple[int, str], list[CollectionRun]] = defaultdict(list)
    for run in runs:
        by_stream[(run.connection_id, run.stream)].append(run)
    # and no stream ever had two runs at once (a killed run ends at its last heartbeat)
    for key, stream_runs in by_stream.items():
        for earlier, later in zip(stream_runs, stream_runs[1:], strict=False):
            assert later.started_at >= (earlier.finished_at or earlier.heartbeat_at), f"{key} overlapped"
    # and every stream progressed
    with db.session(readonly=True) as s:
        checkpoints = s.exec(select(Checkpoint)).all()
        assert int(s.exec(select(func.count()).select_from(Checkpoint)).one()) == 11
    assert all(c.last_success_at is not None for c in checkpoints)
    # and the killed worker's unfinished streams were completed by the others
    orphaned = {
        (r.connection_id, r.stream) for r in runs if _pid(r.worker) == victim.pid and r.finished_at is None
    }
    assert orphaned
    for key in orphaned:
        assert any(_pid(r.worker) != victim.pid and r.status == "succeeded" for r in by_stream[key]), (
            f"{key} was not taken over"
        )
    # and more than one worker did the work (which survivor takes which stream is lease timing:
    # one survivor may hold every stream, so sharing between survivors is not asserted)
    assert len({_pid(r.worker) for r in runs}) >= 2
