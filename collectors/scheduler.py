"""APScheduler: one interval job per (connection, stream), plus a job that follows connection changes.

This is the one-process form (`tenantguard serve` on SQLite): `max_instances=1` and `coalesce`
keep each stream to one run at a time and a slow stream from piling up. Several machines share
the streams through `tenantguard worker` (Procrastinate, `pipeline.workers`), not by running
this scheduler twice: two schedulers on one database would both run every stream, and the
fencing of checkpoint commits (`collectors.fencing`) would only keep them from corrupting it.

A run that stored new audit events runs at once the inventory streams that watch them
(`collectors.inventory.watchers`: e.g. a Google token revoke re-reads that user's grants now, not
at the tokens stream's hourly interval); one asked for while it runs runs again right after.

A run that failed (the provider down after the run's own retries, a database error, a run fenced
off) is tried again on a doubling delay from `RETRY_FIRST_SECONDS`, never later than its interval,
instead of waiting out a whole interval (5 to 60 minutes) with the stream's data unread.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from collectors.errors import CollectorError
from collectors.inventory import watchers
from collectors.options import CollectorOptions
from collectors.progress import ProgressSink
from collectors.runner import run_stream, select_connections
from collectors.store import prune_runs
from collectors.streams.base import StreamKind, configured_streams, stream_spec
from core.db import Database
from core.models import Connection
from core.settings import Settings
from providers.errors import ProviderError

log = logging.getLogger("tenantguard.collectors")
REFRESH_JOB = "collectors:refresh"
REFRESH_SECONDS = 60
RETRY_FIRST_SECONDS = 5.0


def retry_delay(failures: int, interval: float) -> float:
    """Seconds before the next try of a stream that failed `failures` times in a row (1-based)."""
    return min(float(interval), RETRY_FIRST_SECONDS * 2 ** max(0, failures - 1))


def job_id(connection: Connection, stream: str) -> str:
    return f"collect:{connection.id}:{stream}"


def interval_for(connection: Connection, stream: str, default: int) -> int:
    intervals = connection.config.get("intervals") or {}
    return int(intervals.get(stream, default))


class CollectorJobs:
    """Keeps the scheduler's jobs equal to the enabled (connection, stream) pairs in the database."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        scheduler: BackgroundScheduler,
        options: CollectorOptions,
        progress: ProgressSink | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.scheduler = scheduler
        self.options = options
        self.owner = options.worker()
        self.progress = progress
        # (connection id, stream) running here -> asked to run again once it ends
        self._running: dict[tuple[int, str], bool] = {}
        # (connection id, stream) -> runs failed in a row (cleared by a success)
        self._failures: dict[tuple[int, str], int] = {}
        self._guard = threading.Lock()

    def run(self, connection_id: int, stream: str) -> None:
        key = (connection_id, stream)
        with self._guard:
            self._running[key] = False
        try:
            while self._run_once(connection_id, stream):
                with self._guard:
                    if not self._running.get(key):
                        break
                    self._running[key] = False
        finally:
            with self._guard:
                self._running.pop(key, None)

    def _run_once(self, connection_id: int, stream: str) -> bool:
        connection = next((c for c in select_connections(self.db, [connection_id])), None)
        if connection is None:
            return False
        try:
            spec = stream_spec(connection.provider, stream)
        except KeyError as exc:
            log.error("%s", exc)
            return False
        result = run_stream(
            self.db, connection, spec, options=self.options, owner=self.owner, progress=self.progress
        )
        key = (connection_id, stream)
        if not result.ok:
            with self._guard:
                failures = self._failures[key] = self._failures.get(key, 0) + 1
            delay = retry_delay(failures, interval_for(connection, stream, spec.interval_seconds))
            log.warning("%s/%s: %s (trying again in %.0f s)", connection.name, stream, result.error, delay)
            self._retry_in(connection, stream, delay)
            return False
        with self._guard:
            self._failures.pop(key, None)
        if spec.kind is StreamKind.EVENTS and result.records_new:
            for watcher in watchers(connection, stream):
                self.run_soon(connection, watcher)
        return True

    def run_soon(self, connection: Connection, stream: str) -> None:
        """Run the stream's job now (or once more right after the run in progress)."""
        assert connection.id is not None
        with self._guard:
            if (connection.id, stream) in self._running:
                self._running[(connection.id, stream)] = True
                return
        job = self.scheduler.get_job(job_id(connection, stream))
        if job is not None:
            job.modify(next_run_time=_now())

    def failures_in_a_row(self, connection_id: int, stream: str) -> int:
        """Runs of this stream that failed since its last success (0 after a success)."""
        with self._guard:
            return self._failures.get((connection_id, stream), 0)

    def _retry_in(self, connection: Connection, stream: str, seconds: float) -> None:
        job = self.scheduler.get_job(job_id(connection, stream))
        if job is not None:
            job.modify(next_run_time=_now() + timedelta(seconds=seconds))

    def refresh(self) -> None:
        """Add jobs for new connections/streams, drop jobs for removed or disabled ones."""
        if self.settings.connections_file:
            from collectors.connections import sync_connections_file

            try:
                sync_connections_file(self.db, self.settings.connections_file)
            except (CollectorError, ProviderError) as exc:
                log.error("connections file: %s", exc)
        with self.db.session() as session:
            prune_runs(session, keep_days=self.options.run_history_days)
        wanted: dict[str, tuple[Connection, str, int]] = {}
        for connection in select_connections(self.db):
            for spec in configured_streams(connection):
                seconds = interval_for(connection, spec.name, spec.interval_seconds)
                wanted[job_id(connection, spec.name)] = (connection, spec.name, seconds)
        for job in self.scheduler.get_jobs():
            if job.id.startswith("collect:") and job.id not in wanted:
                job.remove()
        for identifier, (connection, stream, seconds) in wanted.items():
            existing = self.scheduler.get_job(identifier)
            if existing is not None and getattr(existing.trigger, "interval", None) is not None:
                if existing.trigger.interval.total_seconds() == seconds:
                    continue
                existing.remove()
            self.scheduler.add_job(
                self.run,
                IntervalTrigger(seconds=seconds),
                args=(connection.id, stream),
                id=identifier,
                name=f"{connection.name}/{stream}",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,  # late (a busy pool): run once, late, without a warning
                next_run_time=_now(),
                replace_existing=True,
            )


def _now() -> Any:
    from core.clock import utcnow

    return utcnow()


def build_scheduler(
    db: Database,
    settings: Settings,
    *,
    options: CollectorOptions | None = None,
    progress: ProgressSink | None = None,
    refresh_seconds: int = REFRESH_SECONDS,
) -> BackgroundScheduler:
    """A scheduler (not started) with one job per enabled stream; call `.start()` to run it."""
    options = options or settings.collector
    scheduler = BackgroundScheduler(
        timezone="UTC",
        executors={"default": {"type": "threadpool", "max_workers": max(1, options.threads)}},
        job_defaults={"max_instances": 1, "coalesce": True},
    )
    jobs = CollectorJobs(db, settings, scheduler, options, progress)
    jobs.refresh()
    scheduler.add_job(
        jobs.refresh,
        IntervalTrigger(seconds=refresh_seconds),
        id=REFRESH_JOB,
        name="follow connection changes",
    )
    scheduler.collector_jobs = jobs
    return scheduler
