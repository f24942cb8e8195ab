"""APScheduler: one interval job per (connection, stream), plus a job that follows connection changes.

This is the one-process form (`tenantguard serve` on SQLite): `max_instances=1` and `coalesce`
keep each stream to one run at a time and a slow stream from piling up. Several machines share
the streams through `tenantguard worker` (Procrastinate, `pipeline.workers`), not by running
this scheduler twice: two schedulers on one database would both run every stream, and the
fencing of checkpoint commits (`collectors.fencing`) would only keep them from corrupting it.

A run that stored new audit events runs at once the inventory streams that watch them
(`collectors.inventory.watchers`: e.g. a Google token revoke re-reads that user's grants now, not
at the tokens stream's hourly interval); one asked for while it runs runs again right after.

Polls are in phase per tenant (`poll_phase`): the event streams of one organisation fall due
together, at an offset within their interval hashed from the organisation (organisations spread
over the interval), and its snapshot streams half an interval later. Anomaly detection waits for
every anomaly stream of the tenant to be collected past an event's time (the event-time
watermark, `pipeline.watermark`); with the streams' phases scattered (each set by when its job
was first added) that took up to one more interval after the event's own stream had read it.
`tenantguard worker` defers each stream's next run to the same moments (`next_poll`).

A run that failed (the provider down after the run's own retries, a database error, a run fenced
off) is tried again on a doubling delay from `RETRY_FIRST_SECONDS`, never later than its interval,
instead of waiting out a whole interval (5 to 60 minutes) with the stream's data unread.
"""

from __future__ import annotations

import logging
import threading
import zlib
from datetime import UTC, datetime, timedelta
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
from core.models.connection import organisation
from core.settings import Settings
from providers.errors import ProviderError

log = logging.getLogger("tenantguard.collectors")
REFRESH_JOB = "collectors:refresh"
REFRESH_SECONDS = 60
RETRY_FIRST_SECONDS = 5.0


def retry_delay(failures: int, interval: float) -> float:
    """Seconds before the next try of a stream that failed `failures` times in a row (1-based)."""
    return min(float(interval), RETRY_FIRST_SECONDS * 2 ** max(0, failures - 1))


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def poll_phase(connection: Connection, kind: StreamKind, interval: float) -> float:
    """Seconds into each `interval` (counted from the epoch) at which a stream of this kind of
    this connection is polled: the same for every event stream of the connection's organisation
    with that interval (so the tenant's event-time watermark moves once they are all read),
    spread over the interval across organisations, half an interval later for snapshot streams
    (their burst of reads does not queue in front of the event streams')."""
    interval = max(1.0, float(interval))
    millis = zlib.crc32(organisation(connection.config).encode()) % int(interval * 1000)
    offset = millis / 1000 + (0.0 if kind is StreamKind.EVENTS else interval / 2)
    return offset % interval


def next_poll(connection: Connection, kind: StreamKind, interval: float, after: datetime) -> datetime:
    """The first moment after `after` in the stream's phase (`poll_phase`)."""
    return PhaseTrigger(connection, kind, interval).tick_after(after)


class PhaseTrigger(IntervalTrigger):
    """APScheduler's interval trigger held to the stream's phase: a run moved by hand (run now,
    a retry after a failure, the first run when the job is added) is followed by the next moment
    in phase, where the plain trigger would go on from the moved run (previous + interval)."""

    def __init__(self, connection: Connection, kind: StreamKind, interval: float) -> None:
        seconds = max(1.0, float(interval))
        anchor = EPOCH + timedelta(seconds=poll_phase(connection, kind, seconds))
        super().__init__(seconds=seconds, start_date=anchor, timezone=UTC)

    def tick_after(self, moment: datetime) -> datetime:
        ticks = (moment - self.start_date).total_seconds() // self.interval_length + 1
        return self.start_date + timedelta(seconds=ticks * self.interval_length)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        if previous_fire_time is None:
            return super().get_next_fire_time(previous_fire_time, now)
        return self.tick_after(previous_fire_time)


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
        wanted: dict[str, tuple[Connection, str, PhaseTrigger]] = {}
        for connection in select_connections(self.db):
            for spec in configured_streams(connection):
                seconds = interval_for(connection, spec.name, spec.interval_seconds)
                trigger = PhaseTrigger(connection, spec.kind, seconds)
                wanted[job_id(connection, spec.name)] = (connection, spec.name, trigger)
        for job in self.scheduler.get_jobs():
            if job.id.startswith("collect:") and job.id not in wanted:
                job.remove()
        for identifier, (connection, stream, trigger) in wanted.items():
            existing = self.scheduler.get_job(identifier)
            same = isinstance(getattr(existing, "trigger", None), PhaseTrigger) and (
                existing.trigger.interval,
                existing.trigger.start_date,
            ) == (trigger.interval, trigger.start_date)
            if same:
                continue
            if existing is not None:
                existing.remove()
            self.scheduler.add_job(
                self.run,
                trigger,
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
