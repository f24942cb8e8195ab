"""The cycle in-process on APScheduler: what `tenantguard serve` runs on one machine (SQLite).

`EmbeddedScheduler` is the `pipeline.jobs.Scheduler` seam over a BackgroundScheduler: `enqueue`
adds a one-shot job due now under the job's coalescing key (replacing one still waiting), and a
periodic ``sweep`` job is the safety net. Collection keeps its own schedule (one job per stream,
`collectors.scheduler`); its progress sink tells this scheduler when a page was committed, and
for which tenant partition (``detect(partition)``: partitions run side by side on the pool, one
run per partition at a time, as on the workers).

At most one instance per key runs; a key asked for while it runs is remembered and runs once
more when the running one ends (it then sees everything the running one may have missed). So
APScheduler is never asked to start a second instance and never has to skip one (it used to log
"maximum number of running instances reached" for every page committed during a detection run).
The sweep has its own thread, so it is never queued behind long stage runs.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from collectors.report import RunStatus
from core.clock import utcnow
from core.db import Database
from core.settings import Settings
from pipeline.cycle import Cycle
from pipeline.jobs import JOBS, job_key, page_committed, stream_read

log = logging.getLogger("tenantguard.pipeline")
SWEEP_JOB = "pipeline:sweep"
SKIPPED_MESSAGE = "maximum number of running instances reached"


class OverlapByDesign(logging.Filter):
    """Drops APScheduler's warning that a periodic run (a collection stream, the sweep, the
    connection refresh) was not started because its previous run is still going: one run at a
    time is the design (a collection run reads to the end, a sweep covers everything since the
    last), the next tick comes anyway, and an overrun logged it at every interval. The stage lag
    in /metrics is where an overrun shows. One-shot pipeline jobs never reach this (`enqueue`
    remembers a second ask instead), so a skipped one still warns."""

    def filter(self, record: logging.LogRecord) -> bool:
        if SKIPPED_MESSAGE not in str(record.msg) or not record.args:
            return True
        job = record.args[0] if isinstance(record.args, tuple) else None
        return not isinstance(getattr(job, "trigger", None), IntervalTrigger)


class EmbeddedScheduler:
    """Runs `pipeline.jobs.JOBS` on a BackgroundScheduler's thread pool."""

    def __init__(self, cycle: Cycle, *, threads: int = 2) -> None:
        self.cycle = cycle
        self.scheduler = BackgroundScheduler(
            timezone="UTC",
            executors={
                "default": {"type": "threadpool", "max_workers": max(1, threads)},
                "sweep": {"type": "threadpool", "max_workers": 1},
            },
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
        )
        # key -> asked for again while running (guarded by _guard)
        self._running: dict[str, bool] = {}
        self._guard = threading.Lock()
        self.scheduler.add_job(
            JOBS["sweep"],
            IntervalTrigger(seconds=max(1.0, cycle.settings.pipeline_sweep_seconds)),
            args=(cycle, self),
            id=SWEEP_JOB,
            name="pipeline sweep",
            next_run_time=utcnow(),
            executor="sweep",
        )

    def enqueue(self, job: str, **args: Any) -> None:
        if job not in JOBS:
            raise KeyError(f"unknown pipeline job {job!r}; known: {', '.join(JOBS)}")
        key = f"pipeline:{job_key(job, args)}"
        with self._guard:
            if key in self._running:  # submitted or running: once more after it ends
                self._running[key] = True
                return
            self._running[key] = False
        self._submit(key, job, args)

    def _submit(self, key: str, job: str, args: dict[str, Any]) -> None:
        self.scheduler.add_job(
            self._run,
            "date",
            run_date=utcnow(),
            args=(key, job, args),
            id=key,
            name=key,
            replace_existing=True,
            # A rerun is submitted from the finishing run, which APScheduler still counts until it
            # returns: with max_instances=1 it skipped the rerun and the key stayed "running" for
            # ever (no pipeline job ran again). `_running` keeps one logical run per key.
            max_instances=2,
        )

    def queued(self) -> int:
        """Jobs waiting to run (not counting the periodic sweep), asked-for reruns included."""
        with self._guard:
            again = sum(1 for wanted in self._running.values() if wanted)
        return again + sum(1 for job in self.scheduler.get_jobs() if job.id != SWEEP_JOB)

    def _run(self, key: str, job: str, args: dict[str, Any]) -> None:
        with self._guard:
            self._running[key] = False  # what was asked for until now, this run sees
        try:
            JOBS[job](self.cycle, self, **args)
        except Exception:  # logged; the next sweep runs it again
            log.exception("pipeline job %s failed", job)
        finally:
            with self._guard:
                again = self._running.get(key, False) and self.scheduler.running
                if again:
                    self._running[key] = False  # submitted again
                else:
                    self._running.pop(key, None)
            if again:
                self._submit(key, job, args)

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self, wait: bool = False) -> None:
        self.scheduler.shutdown(wait=wait)


class PageTrigger:
    """A collectors ProgressSink: every page that stored something new schedules detection of its
    connection's partition (the key is ``<connection name>/<stream>``), and every run of an anomaly
    stream that read to its end schedules its partition's anomaly pass (`pipeline.jobs.stream_read`)."""

    def __init__(self, scheduler: EmbeddedScheduler) -> None:
        self.scheduler = scheduler

    def started(self, key: str) -> None:
        return None

    def page(self, key: str, *, records: int, new: int, window: tuple[datetime, datetime] | None) -> None:
        if new:
            found = self._connection(key.rsplit("/", 1)[0])
            page_committed(self.scheduler, found[1] if found is not None else None)

    def _connection(self, connection_name: str) -> tuple[str, int] | None:
        """(provider, partition) of a connection; None when it was renamed or removed meanwhile."""
        from sqlmodel import select

        from core.models import Connection
        from detectors.partitions import organisation, partition_of

        cycle = self.scheduler.cycle
        with cycle.db.session(readonly=True) as session:
            row = session.exec(
                select(Connection.provider, Connection.config).where(Connection.name == connection_name)
            ).first()
        if row is None:
            return None
        return row[0], partition_of(organisation(row[1]), cycle.settings.pipeline_partitions)

    def waiting(self, key: str, seconds: float, why: str) -> None:
        return None

    def finished(self, key: str, status: str) -> None:
        if status != RunStatus.SUCCEEDED:
            return
        connection_name, stream = key.rsplit("/", 1)
        found = self._connection(connection_name)
        if found is not None:
            stream_read(self.scheduler, found[0], stream, found[1])


def embedded(db: Database, settings: Settings, *, collect: bool = True) -> tuple[EmbeddedScheduler, Any]:
    """The pipeline's scheduler and (with `collect`) the collectors' scheduler wired to it; neither
    is started."""
    cycle = Cycle(db, settings)
    pipeline = EmbeddedScheduler(cycle)
    scheduler_log = logging.getLogger("apscheduler.scheduler")
    if not any(isinstance(f, OverlapByDesign) for f in scheduler_log.filters):
        scheduler_log.addFilter(OverlapByDesign())
    collectors = None
    if collect:
        from collectors.scheduler import build_scheduler

        collectors = build_scheduler(db, settings, progress=PageTrigger(pipeline))
    return pipeline, collectors
