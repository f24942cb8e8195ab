"""Scale-out on this machine: N simulated tenants, K `tenantguard worker` processes, one PostgreSQL.

Each tenant is a set of connections (Entra/M365, Google, Slack; their event streams) to a live
simulator whose clock is the wall clock: the first day is a backlog when the workers start, then
events keep arriving as the simulated day goes on. Tenants are copies of one simulated tenant
served by one simulator process (the product stores and processes each connection on its own:
the events of tenant 7 are tenant 7's rows, its cursors, its jobs), so the simulator's cost does
not grow with N; the product's does. Sampled every few seconds for the run:

- stream-runs per worker (CollectionRun.worker): each worker's share of the runs;
- events stored per second (over the whole run, and after the backlog);
- stage lag (`pipeline.health.read_lag`): detection backlog and the age of its oldest event,
  findings waiting for an incident; stream lag: seconds since each stream's last success.

    python -m bench.scale_out                                      # 50 tenants, 3 workers, 60 s, 300 s
    TENANTGUARD_BENCH_SCALE_OUT="20x3x30x180" python -m bench.scale_out  # tenants x workers x interval x seconds
    --quick: 6 tenants, 2 workers, 20 s interval, 90 s

    python -m bench.scale_out --detection                          # detection: 6 tenants x 5,000 events, 1 vs 3 workers
    TENANTGUARD_BENCH_DETECTION="12x5000" python -m bench.scale_out --detection   # tenants x events each
    --detection --quick: 3 tenants x 2,000 events

The detection figure stores every tenant's backlog first, then times 1 and then 3 worker
processes (one job at a time each) in the same run, from the first detection job to every
tenant partition's cursor past its newest event: the ratio is what per-tenant partitions buy.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.e2e import simulator_process
from bench.harness import Figure, print_table
from bench.limits import postgres_database, postgres_problem

AREA = "scale-out (workers on PostgreSQL)"
CLI = [sys.executable, "-c", "from cli.main import run; run()"]
DAY = 86_400
USERS = 10
STREAMS = {
    "m365": ["signins", "directory_audits", "risk_detections"],
    "google": ["login", "admin", "drive", "token"],
    "slack": ["audit"],
}
SAMPLE_SECONDS = 5.0


@dataclass(frozen=True)
class Scale:
    tenants: int
    workers: int
    interval: int
    seconds: int


def scales(quick: bool) -> tuple[Scale, ...]:
    configured = os.environ.get("TENANTGUARD_BENCH_SCALE_OUT")
    if configured:
        return tuple(Scale(*(int(n) for n in item.split("x"))) for item in configured.split(","))
    return (Scale(6, 2, 20, 90),) if quick else (Scale(50, 3, 60, 300),)


@dataclass
class Sample:
    at: float
    events: int
    detect_backlog: int
    detect_oldest: float
    incidents_waiting: int
    stream_lag_max: float
    streams_unhealthy: int
    streams_succeeded: int


def _definitions(info: dict[str, Any], tenants: int, interval: int) -> list[Any]:
    from collectors import connections_from_simulator

    definitions = []
    for tenant in range(tenants):
        for provider, streams in STREAMS.items():
            for d in connections_from_simulator(
                info,
                providers=[provider],
                streams={provider: streams},
                intervals=dict.fromkeys(streams, interval),
            ):
                definitions.append(dataclasses.replace(d, name=f"t{tenant:03d}-{provider}"))
    return definitions


def _sample(db: Any, began: float) -> Sample:
    from sqlalchemy import func
    from sqlmodel import select

    from core.models import Event
    from pipeline.health import read_lag

    lag = read_lag(db)
    with db.session(readonly=True) as session:
        events = int(session.exec(select(func.count()).select_from(Event)).one())
    stages = {s.stage: s for s in lag.stages}
    ages = [s.seconds_since_success for s in lag.streams if s.seconds_since_success is not None]
    return Sample(
        at=time.time() - began,
        events=events,
        detect_backlog=stages["detect"].backlog,
        detect_oldest=stages["detect"].oldest_seconds,
        incidents_waiting=stages["incidents"].backlog,
        stream_lag_max=max(ages) if ages else float("nan"),
        streams_unhealthy=sum(1 for s in lag.streams if s.health == "unhealthy"),
        streams_succeeded=len(ages),
    )


def _runs(db: Any, since: datetime) -> list[tuple[str, float]]:
    from sqlmodel import col, select

    from core.models.connection import CollectionRun

    with db.session(readonly=True) as session:
        rows = session.exec(
            select(CollectionRun.worker, CollectionRun.started_at, CollectionRun.finished_at).where(
                col(CollectionRun.started_at) >= since, col(CollectionRun.finished_at).is_not(None)
            )
        ).all()
    return [(str(w), (f - s).total_seconds()) for w, s, f in rows]


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def measure(scale: Scale) -> list[Figure]:
    from collectors.connections import sync_connections
    from core.audit import Actor
    from core.db import Database

    load_before = os.getloadavg()
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - DAY))
    with (
        tempfile.TemporaryDirectory(prefix="tg-bench-scale-") as tmp,
        simulator_process("account_takeover", USERS, 2, 7, start=start) as info,
        postgres_database() as url,
    ):
        if info is None:
            raise RuntimeError("the simulator is not installed")
        clock = httpx.get(f"{info['admin_url']}/clock", timeout=30).json()  # live: the wall clock
        httpx.post(
            f"{info['admin_url']}/clock", json={"advance": time.time() - clock["now_epoch"]}, timeout=30
        )
        db = Database(url)
        definitions = _definitions(info, scale.tenants, scale.interval)
        sync_connections(db, definitions, actor=Actor.system("bench"), source="bench")
        env = {
            **os.environ,
            "TENANTGUARD_DATABASE_URL": url,
            "TENANTGUARD_DATA_DIR": str(Path(tmp) / "data"),
            "TENANTGUARD_PIPELINE_ENGINE": "procrastinate",
            "TENANTGUARD_LOG_LEVEL": "WARNING",
        }
        log = (Path(tmp) / "workers.log").open("ab")
        began = time.time()
        since = datetime.now(UTC)
        workers = [
            subprocess.Popen([*CLI, "worker", "--concurrency", "3"], env=env, stdout=log, stderr=log)
            for _ in range(scale.workers)
        ]
        samples: list[Sample] = []
        try:
            while time.time() - began < scale.seconds:
                for process in workers:
                    if process.poll() is not None:
                        raise RuntimeError(
                            f"a worker exited:\n{(Path(tmp) / 'workers.log').read_text()[-3000:]}"
                        )
                samples.append(_sample(db, began))
                time.sleep(SAMPLE_SECONDS)
            samples.append(_sample(db, began))
            runs = _runs(db, since)
        finally:
            _stop(workers)
            log.close()
            db.dispose()
    return figures(scale, samples, runs, load_before, os.getloadavg(), len(definitions))


def figures(
    scale: Scale,
    samples: list[Sample],
    runs: list[tuple[str, float]],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
    connections: int,
) -> list[Figure]:
    streams = scale.tenants * sum(len(s) for s in STREAMS.values())
    label = (
        f"{scale.tenants} tenants ({connections} connections, {streams} streams), {scale.workers} workers, "
        f"{scale.interval} s interval"
    )
    load = f"load average {load_before[0]:.1f} → {load_after[0]:.1f} (2 CPUs, shared)"
    per_worker = Counter(worker for worker, _ in runs)
    total = sum(per_worker.values()) or 1
    shares = sorted((100.0 * n / total for n in per_worker.values()), reverse=True)
    last = samples[-1]
    # the backlog is done once every stream has read to the end and detection has caught up
    drained = next((s for s in samples if s.streams_succeeded >= streams and s.detect_backlog == 0), None)
    after = [s for s in samples if drained is not None and s.at >= drained.at]
    steady_rate = (
        (after[-1].events - after[0].events) / (after[-1].at - after[0].at)
        if len(after) >= 2 and after[-1].at > after[0].at
        else float("nan")
    )
    lag_after = [s.detect_oldest for s in after] or [float("nan")]
    stream_lag_after = [s.stream_lag_max for s in after] or [float("nan")]
    run_seconds = sorted(seconds for _, seconds in runs)
    return [
        Figure(
            AREA,
            f"stream-runs per worker, {label}",
            shares[0] if shares else 0.0,
            "% (largest share)",
            shares[-1] if shares else None,
            shares[0] if shares else None,
            len(shares),
            goal=f"each {100 / scale.workers:.0f} % ± 10 %",
            notes=f"{total} stream-runs in {last.at:.0f} s: shares {', '.join(f'{s:.1f} %' for s in shares)}; "
            f"median run {statistics.median(run_seconds) if run_seconds else float('nan'):.2f} s; {load}",
            extra={"per_worker": dict(per_worker), "runs": total},
        ),
        Figure(
            AREA,
            f"backlog stored and detected per second, {label}",
            drained.events / drained.at if drained else last.events / last.at,
            "events/s",
            notes=f"{drained.events} events of the first simulated day stored and detected in {drained.at:.0f} s "
            f"(every stream read to the end, detection caught up); {last.events} events in {last.at:.0f} s in "
            f"all, {steady_rate:.2f} events/s after the backlog; detection lag during the backlog: max "
            f"{max(s.detect_oldest for s in samples):.0f} s"
            if drained
            else f"{last.events} events in {last.at:.0f} s; the backlog was not done by the end",
            extra={"steady_events_per_second": steady_rate, "drained_at": drained.at if drained else None},
        ),
        Figure(
            AREA,
            f"detection lag after the backlog, {label}",
            max(lag_after),
            "s (max oldest waiting event)",
            notes=f"median {statistics.median(lag_after):.1f} s; peak backlog "
            f"{max(s.detect_backlog for s in samples)} events; findings waiting for an incident at the end "
            f"{last.incidents_waiting}; slowest stream's time since success after the backlog: max "
            f"{max(stream_lag_after):.0f} s (interval {scale.interval} s); unhealthy streams at the end "
            f"{last.streams_unhealthy}",
            extra={"samples": [dataclasses.asdict(s) for s in samples]},
        ),
    ]


# --- detection across tenants: 1 worker against 3 -------------------------------------------------


@dataclass(frozen=True)
class DetectionScale:
    tenants: int
    events: int  # stored per tenant before the workers start
    workers: tuple[int, ...] = (1, 3)


def detection_scale(quick: bool) -> DetectionScale:
    configured = os.environ.get("TENANTGUARD_BENCH_DETECTION")
    if configured:
        tenants, events = (int(n) for n in configured.split("x"))
        return DetectionScale(tenants, events)
    return DetectionScale(3, 2000) if quick else DetectionScale(6, 5000)


def _stored_tenants(url: str, scale: DetectionScale, *, ready: Any = None) -> dict[int, int]:
    """`scale.tenants` organisations of one disabled connection each (nothing to collect), then,
    once `ready()` returns, `scale.events` provider-shaped events stored per tenant in one COPY
    (bench.limits' mix: sign-ins, directory audits, Google and Slack activity of 200 users over a
    week); the event time of each partition's newest event, in microseconds, by partition."""
    import psycopg

    from bench.limits import _pg_tuple, sample_events
    from collectors.store import EVENT_COLUMNS
    from core.db import Database
    from core.models import Connection
    from detectors.event_time import micros
    from detectors.partitions import partition_of

    db = Database(url)
    newest: dict[int, int] = {}
    try:
        ids = []
        with db.session() as session:
            for tenant in range(scale.tenants):
                connection = Connection(
                    name=f"t{tenant:03d}-entra",
                    provider="m365",
                    tenant=f"t{tenant:03d}.example",
                    enabled=False,
                    config={"organisation": f"t{tenant:03d}"},
                )
                session.add(connection)
                session.flush()
                ids.append(int(connection.id or 0))
        partitions = db.settings.pipeline_partitions
        if ready is not None:
            ready()
        now = datetime.now(UTC)
        with psycopg.connect(url) as conn, conn.cursor() as cur:
            with cur.copy(f"COPY event ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
                for tenant, connection_id in enumerate(ids):
                    rows = [row for _, row in sample_events(scale.events, seed=tenant, users=200)]
                    for row in rows:
                        copy.write_row(_pg_tuple(row, connection_id, now))
                    partition = partition_of(f"t{tenant:03d}", partitions)
                    newest[partition] = max(
                        newest.get(partition, 0), max(micros(r.occurred_at) for r in rows)
                    )
            conn.commit()
    finally:
        db.dispose()
    return newest


def _anomaly_newest(url: str) -> dict[int, int]:
    """The event time (microseconds) of the newest stored event of the streams anomaly detection
    reads, by tenant partition."""
    from sqlalchemy import func
    from sqlmodel import select

    from core.db import Database
    from core.models import Event
    from detectors.event_time import micros
    from detectors.partitions import ANOMALY, partition_map

    db = Database(url)
    try:
        with db.session(readonly=True) as session:
            layout = partition_map(session, db.settings.pipeline_partitions)
            newest: dict[int, int] = {}
            for partition in layout.used:
                at = session.exec(
                    select(func.max(Event.occurred_at)).where(ANOMALY.scoped(layout.events(partition)))
                ).one()
                if at is not None:
                    newest[partition] = micros(at)
    finally:
        db.dispose()
    return newest


def _anomaly_done(url: str, newest: dict[int, int]) -> bool:
    """Has every partition's anomaly pass judged past its newest event?"""
    from core.db import Database
    from core.models.anomaly import AnalysisCursor
    from detectors.partitions import ANOMALY, CLOCK_SUFFIX, cursor_name

    db = Database(url)
    try:
        partitions = db.settings.pipeline_partitions
        with db.session(readonly=True) as session:
            for partition, last in newest.items():
                row = session.get(AnalysisCursor, cursor_name(partition, partitions, ANOMALY) + CLOCK_SUFFIX)
                if row is None or int(row.position) <= last:
                    return False
        return True
    finally:
        db.dispose()


def _detected(url: str, newest: dict[int, int]) -> tuple[bool, bool]:
    """(has detection started, has every partition processed its newest event)."""
    from sqlmodel import col, select

    from core.db import Database
    from core.models.anomaly import AnalysisCursor
    from detectors.partitions import CLOCK_SUFFIX, cursor_name

    db = Database(url)
    try:
        with db.session(readonly=True) as session:
            rows = session.exec(
                select(AnalysisCursor).where(col(AnalysisCursor.name).startswith("detection.p"))
            ).all()
    finally:
        db.dispose()
    partitions = db.settings.pipeline_partitions
    clocks = {row.name: int(row.position) for row in rows if row.name.endswith(CLOCK_SUFFIX)}
    done = all(clocks.get(cursor_name(p, partitions) + CLOCK_SUFFIX, 0) > last for p, last in newest.items())
    return bool(rows), done


def _workers_up(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone()
    return int(row[0]) if row else 0


def measure_detection(
    scale: DetectionScale, workers: int, timeout: float = 900.0
) -> tuple[float, float, float]:
    """Seconds from storing every tenant's backlog (one COPY, the workers already up and idle) to
    every tenant's backlog through the rules and correlations (each tenant partition's event-time
    cursor past its newest event), and to the anomaly passes too (each partition's anomaly
    event-time cursor past its newest event of the anomaly streams), with `workers` worker processes (one job at a time each); the load average at
    the end."""
    with tempfile.TemporaryDirectory(prefix="tg-bench-detect-") as tmp, postgres_database() as url:
        env = {
            **os.environ,
            "TENANTGUARD_DATABASE_URL": url,
            "TENANTGUARD_DATA_DIR": str(Path(tmp) / "data"),
            "TENANTGUARD_PIPELINE_ENGINE": "procrastinate",
            "TENANTGUARD_PIPELINE_SWEEP_SECONDS": "1",
            "TENANTGUARD_LOG_LEVEL": "WARNING",
        }
        log_path = Path(tmp) / "workers.log"
        log = log_path.open("ab")
        processes: list[subprocess.Popen] = []
        deadline = time.time() + timeout

        def check() -> None:
            for process in processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a worker exited:\n{log_path.read_text()[-3000:]}")
            if time.time() > deadline:
                raise RuntimeError(f"detection not done within {timeout:.0f} s")

        def ready() -> None:  # every worker registered, then a few idle sweeps (imports done)
            processes.extend(
                subprocess.Popen([*CLI, "worker", "--concurrency", "1"], env=env, stdout=log, stderr=log)
                for _ in range(workers)
            )
            while _workers_up(url) < workers:
                check()
                time.sleep(0.25)
            time.sleep(3)

        try:
            newest = _stored_tenants(url, scale, ready=ready)
            began = time.time()
            anomaly_newest = _anomaly_newest(url)
            rules = everything = None
            while rules is None or everything is None:
                check()
                if rules is None and _detected(url, newest)[1]:
                    rules = time.time() - began
                if everything is None and rules is not None and _anomaly_done(url, anomaly_newest):
                    everything = time.time() - began
                time.sleep(0.25)
            return rules, everything, os.getloadavg()[0]
        finally:
            _stop(processes)
            log.close()


def detection_figures(quick: bool) -> list[Figure]:
    from core.settings import Settings
    from detectors.partitions import partition_of

    scale = detection_scale(quick)
    partitions = Settings().pipeline_partitions
    used = len({partition_of(f"t{t:03d}", partitions) for t in range(scale.tenants)})
    total = scale.tenants * scale.events
    load_before = os.getloadavg()[0]
    rules: dict[int, float] = {}
    everything: dict[int, float] = {}
    loads: dict[int, float] = {}
    for workers in scale.workers:
        print(
            f"-- {AREA}: detection, {scale.tenants} tenants x {scale.events} events, {workers} worker(s)",
            file=sys.stderr,
            flush=True,
        )
        rules[workers], everything[workers], loads[workers] = measure_detection(scale, workers)
    one = scale.workers[0]
    label = f"{scale.tenants} tenants x {scale.events:,} stored events ({used} of {partitions} partitions)"
    out = []
    for name, seconds in (("rules and correlations", rules), ("rules, correlations and anomaly", everything)):
        for workers in scale.workers:
            out.append(
                Figure(
                    AREA,
                    f"detection throughput ({name}), {label}, {workers} worker(s)",
                    total / seconds[workers],
                    "events/s",
                    baseline_name=f"{one} worker" if workers != one else None,
                    baseline=total / seconds[one] if workers != one else None,
                    notes=f"{total:,} events in {seconds[workers]:.1f} s"
                    + (
                        f"; {seconds[one] / seconds[workers]:.2f}x the {one}-worker rate"
                        if workers != one
                        else ""
                    )
                    + f"; load average {load_before:.1f} before, {loads[workers]:.1f} at the end (2 CPUs, shared)",
                )
            )
    return out


def run(quick: bool) -> list[Figure]:
    problem = postgres_problem()
    if problem:
        print(f"-- {AREA}: skipped, PostgreSQL unavailable ({problem})", file=sys.stderr)
        return []
    result: list[Figure] = []
    if "--detection" in sys.argv:
        measured = detection_figures(quick)
        for figure in measured:
            print(
                f"   {figure.name}: {figure.value:.1f} {figure.unit}; {figure.notes}",
                file=sys.stderr,
                flush=True,
            )
        return measured
    for scale in scales(quick):
        print(f"-- {AREA}: {scale}", file=sys.stderr, flush=True)
        measured = measure(scale)
        for figure in measured:
            print(
                f"   {figure.name}: {figure.value:.1f} {figure.unit}; {figure.notes}",
                file=sys.stderr,
                flush=True,
            )
        result.extend(measured)
    return result


def main() -> int:
    print_table(run(quick="--quick" in sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
