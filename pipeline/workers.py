"""The cycle on Procrastinate workers: what `tenantguard worker` runs on PostgreSQL, on any number of machines.

Jobs live in the data's own database (Procrastinate's tables come with our migrations, revision
0003), so a job is deferred in the transaction that makes it necessary. The tasks, each
idempotent and derived from database state (checkpoints, cursors, due timers):

- ``tenantguard.collect(connection_id, stream)`` — one run of one stream. Job lock and queueing
  lock ``collect:<id>:<stream>``: one running and at most one waiting per stream, on whichever
  worker is free. Every page that stores something new defers ``detect`` inside the page's own
  transaction, and for an events stream brings forward the inventory streams that watch it
  (`collectors.inventory.watchers`: an audit event naming an object re-reads it now, not at the
  watcher's interval); the run ends by deferring its successor to the stream's next poll in phase
  (`collectors.scheduler.next_poll`: a tenant's event streams fall due together).
- ``tenantguard.detect(partition)`` — `pipeline.jobs.detect`: one tenant partition's rules and
  correlations (`detectors.partitions`, a cursor per partition). Lock ``detect:<partition>``: one
  run per partition at a time, as many partitions at once as there are free workers; queueing
  lock = the job key (``detect:partition=<p>``), so a partition's triggers coalesce into one
  waiting job. Every page's trigger names its connection's partition.
- ``tenantguard.anomaly(partition)`` — `pipeline.jobs.anomaly`: one tenant partition's anomaly
  pass (lock ``detect:anomaly:<partition>``: partitions side by side, one run per partition);
  queueing lock = the job key (``anomaly:partition=<p>``).
- ``tenantguard.analyse`` — `pipeline.jobs.analyse`: the stages after detection (lock
  ``stage:analyse``), one run at a time across all workers; queueing lock = the job key.
- ``tenantguard.escalate`` — the on-call escalations stage alone, deferred ``schedule_at`` the next
  moment a step or page retry comes due (the escalation timers), one job per moment.
- ``tenantguard.sweep`` — periodic, deduplicated across workers by Procrastinate: detection and
  analysis again, a collect job for every stream that has none, the connections file, pruning.
- ``tenantguard.recover`` — periodic: jobs of workers whose heartbeat stopped (SIGKILL, lost
  machine) are marked failed, which frees their stream's lock, and deferred again.

A recovered stream's new run claims the checkpoint (`collectors.fencing`), so even a presumed-dead
worker that wakes up cannot commit. `ProcrastinateScheduler` is the `pipeline.jobs.Scheduler`
seam for the API process (`serve` with ``TENANTGUARD_PIPELINE_ENGINE=procrastinate``), which
defers and never runs jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import procrastinate
from procrastinate import exceptions as procrastinate_errors
from procrastinate.jobs import Status
from procrastinate.utils import sync_to_async
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from collectors.options import CollectorOptions
from core.db import Database
from core.errors import TenantguardError
from core.models import Connection
from core.settings import Settings
from detectors.partitions import organisation, partition_of
from pipeline.cycle import Cycle
from pipeline.jobs import JOBS, job_key, job_lock, stream_read
from pipeline.stages import ESCALATIONS

log = logging.getLogger("tenantguard.workers")

COLLECT_QUEUE, ANALYSIS_QUEUE = "collect", "analysis"
# Analysis before collection when both wait: fresh events reach findings first.
ANALYSIS_PRIORITY = 10
TASK_PREFIX = "tenantguard."
TASKS: dict[str, tuple[str, int]] = {  # task -> (queue, priority)
    "collect": (COLLECT_QUEUE, 0),
    **{
        name: (ANALYSIS_QUEUE, ANALYSIS_PRIORITY)
        for name in ("detect", "anomaly", "analyse", "escalate", "sweep", "periodic_sweep", "recover")
    },
}
# A stream whose run died with its worker goes before every routine run.
RECOVERED_PRIORITY = 5
# Finished jobs are kept this long (`tenantguard status` shows the recent ones), then deleted.
JOB_HISTORY_HOURS = 1


class WorkerEngineError(TenantguardError):
    """The Procrastinate engine cannot be used with this configuration."""


def conninfo(db: Database) -> str:
    """The libpq connection string of the data's database (Procrastinate's psycopg connector)."""
    if db.dialect != "postgresql":
        raise WorkerEngineError(
            f"the worker engine needs PostgreSQL, not {db.dialect}; set TENANTGUARD_DATABASE_URL to a "
            "postgresql:// URL, or use the embedded engine (TENANTGUARD_PIPELINE_ENGINE=embedded)"
        )
    return make_url(db.url).set(drivername="postgresql").render_as_string(hide_password=False)


def sweep_cron(seconds: float) -> str:
    """A cron line for 'every `seconds`' (Procrastinate's sixth field is seconds)."""
    whole = max(1, int(seconds))
    if whole < 60:
        return f"* * * * * */{whole}"
    return f"*/{max(1, whole // 60)} * * * *"


def _stream_lock(connection_id: int, stream: str) -> str:
    return f"collect:{connection_id}:{stream}"


def _driver_connection(session: Session) -> Any:
    """The psycopg connection under a session, so Procrastinate defers in the session's transaction."""
    return session.connection().connection.driver_connection


class WorkerApp:
    """The Procrastinate app with tenantguard's tasks, bound to one database and its settings."""

    def __init__(self, db: Database, settings: Settings, *, options: CollectorOptions | None = None) -> None:
        self.db = db
        self.settings = settings
        self.options = options or settings.collector
        self.cycle = Cycle(db, settings)
        self.scheduler = ProcrastinateScheduler(self)
        dsn = conninfo(db)
        # the worker's own event loop runs on the async connector; job threads and the API process
        # defer through a synchronous one (which also defers on a session's own connection)
        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))
        self.deferrer = procrastinate.App(
            connector=procrastinate.SyncPsycopgConnector(conninfo=dsn, min_size=1, max_size=4)
        )
        self.stalled_after = max(3.0, 5 * settings.worker_heartbeat_seconds)
        self._register()

    # ---- deferring -------------------------------------------------------------------------------

    def defer(
        self,
        task: str,
        *,
        lock: str | None = None,
        queueing_lock: str | None = None,
        session: Session | None = None,
        schedule_at: datetime | None = None,
        schedule_in: dict[str, float] | None = None,
        priority: int | None = None,
        **args: Any,
    ) -> bool:
        """Defer a task; False when an identical one already waits (its queueing lock is taken).

        With `session`, the job is inserted in that session's transaction (under a savepoint, so a
        taken queueing lock does not abort the caller's transaction)."""
        options: dict[str, Any] = {"lock": lock, "queueing_lock": queueing_lock}
        if schedule_at is not None:
            options["schedule_at"] = schedule_at
        if schedule_in is not None:
            options["schedule_in"] = schedule_in
        options["queue"], options["priority"] = TASKS[task]
        if priority is not None:
            options["priority"] = priority
        name = TASK_PREFIX + task
        try:
            if session is None:
                self.deferrer.configure_task(name, **options).defer(**args)
            else:
                with session.begin_nested():
                    connection = _driver_connection(session)
                    self.deferrer.configure_task(name, connection=connection, **options).defer(**args)
        except procrastinate_errors.AlreadyEnqueued:
            return False
        return True

    def defer_collect(
        self, connection_id: int, stream: str, *, session: Session | None = None, **when: Any
    ) -> bool:
        key = _stream_lock(connection_id, stream)
        return self.defer(
            "collect",
            lock=key,
            queueing_lock=key,
            session=session,
            connection_id=connection_id,
            stream=stream,
            **when,
        )

    def collect_soon(self, connection_id: int, stream: str, *, session: Session) -> None:
        """Run the stream now: its waiting job (the successor its last run deferred to the next
        interval) is brought forward, or one is deferred — in the caller's transaction."""
        moved = session.execute(
            text(
                "UPDATE procrastinate_jobs SET scheduled_at = now() WHERE queueing_lock = :lock "
                "AND status = 'todo' AND scheduled_at > now()"
            ),
            {"lock": _stream_lock(connection_id, stream)},
        )
        if not getattr(moved, "rowcount", 0):
            self.defer_collect(connection_id, stream, session=session)

    def defer_job(self, job: str, *, session: Session | None = None, **args: Any) -> bool:
        """One of `pipeline.jobs.JOBS`, coalesced on its key."""
        if job not in JOBS:
            raise KeyError(f"unknown pipeline job {job!r}; known: {', '.join(JOBS)}")
        return self.defer(
            job, lock=job_lock(job, args), queueing_lock=job_key(job, args), session=session, **args
        )

    def defer_escalation_timer(self) -> None:
        """A delayed job for the next moment on-call has something to do (one job per moment)."""
        from oncall.service import next_due_at

        due = next_due_at(self.db)
        if due is not None:
            # No job lock: Procrastinate holds back every job of a lock behind an earlier waiting one,
            # even one scheduled minutes ahead, so a locked timer would stall analysis (and earlier
            # timers) until it came due. The escalations stage is safe to run concurrently (rows
            # locked SKIP LOCKED, pages and starts keyed).
            self.defer("escalate", queueing_lock=f"escalate:{due.isoformat()}", schedule_at=due)

    # ---- the tasks -------------------------------------------------------------------------------

    def _register(self) -> None:
        app = self.app

        def task(name: str) -> Callable[[Callable[..., Any]], Any]:
            queue, priority = TASKS[name]
            return app.task(name=TASK_PREFIX + name, queue=queue, priority=priority)

        task("collect")(self.collect)
        task("detect")(self.detect)
        task("anomaly")(self.anomaly)
        task("analyse")(self.analyse)
        task("escalate")(self.escalate)
        task("sweep")(self.sweep_job)
        sweep_every = sweep_cron(self.settings.pipeline_sweep_seconds)
        app.periodic(cron=sweep_every, periodic_id="sweep")(task("periodic_sweep")(self.periodic_sweep))
        recover_every = sweep_cron(max(1.0, self.stalled_after / 2))
        app.periodic(cron=recover_every, periodic_id="recover")(task("recover")(self.recover))

    def collect(self, connection_id: int, stream: str) -> str:
        from collectors.inventory import watchers
        from collectors.runner import run_stream, select_connections
        from collectors.scheduler import interval_for, next_poll
        from collectors.streams.base import StreamKind, stream_spec
        from core.clock import utcnow

        connection = next(iter(select_connections(self.db, [connection_id])), None)
        if connection is None:
            return "connection gone or disabled"
        try:
            spec = stream_spec(connection.provider, stream)
        except KeyError as exc:
            return str(exc)

        watching = watchers(connection, stream) if spec.kind is StreamKind.EVENTS else []

        partition = partition_of(organisation(connection.config), self.settings.pipeline_partitions)

        def page_stored(session: Session, conn: Connection) -> None:
            self.defer_job("detect", session=session, partition=partition)
            for watcher in watching:  # audit events may name inventory objects: re-read them now
                self.collect_soon(connection_id, watcher, session=session)

        result = run_stream(
            self.db,
            connection,
            spec,
            options=self.options,
            owner=self.worker_name,
            in_transaction=page_stored,
        )
        if result.ok:
            stream_read(self.scheduler, connection.provider, stream, partition)
        seconds = interval_for(connection, stream, spec.interval_seconds)
        # the next run in the stream's phase, as `serve` schedules it (collectors.scheduler.poll_phase)
        self.defer_collect(
            connection_id, stream, schedule_at=next_poll(connection, spec.kind, seconds, utcnow())
        )
        return str(result.status)

    def detect(self, partition: int | None = None, connection_id: int | None = None) -> None:
        JOBS["detect"](self.cycle, self.scheduler, partition=partition, connection_id=connection_id)

    def anomaly(self, partition: int | None = None) -> None:
        JOBS["anomaly"](self.cycle, self.scheduler, partition=partition)

    def analyse(self) -> None:
        JOBS["analyse"](self.cycle, self.scheduler)
        self.defer_escalation_timer()

    def escalate(self) -> None:
        self.cycle.run_stage(ESCALATIONS)
        self.defer_escalation_timer()

    def sweep_job(self) -> None:
        self.sweep()

    def periodic_sweep(self, timestamp: int) -> None:
        self.sweep()

    def sweep(self) -> None:
        """The safety net: every trigger that was lost is made good here."""
        from collectors.runner import select_connections
        from collectors.store import prune_runs
        from collectors.streams.base import configured_streams

        JOBS["sweep"](self.cycle, self.scheduler)
        self.sync_connections()
        with self.db.session() as session:
            prune_runs(session, keep_days=self.options.run_history_days)
        running = {
            job.queueing_lock
            for job in self.deferrer.job_manager.list_jobs(task=TASK_PREFIX + "collect", status="doing")
        }
        for connection in select_connections(self.db):
            assert connection.id is not None
            try:
                streams = configured_streams(connection)
            except Exception as exc:  # a bad connection never stops the others
                log.error("%s: %s", connection.name, exc)
                continue
            for spec in streams:  # a running stream defers its own successor
                if _stream_lock(connection.id, spec.name) not in running:
                    self.defer_collect(connection.id, spec.name)

    def sync_connections(self) -> None:
        if not self.settings.connections_file:
            return
        from collectors.connections import sync_connections_file
        from collectors.errors import CollectorError
        from providers.errors import ProviderError

        try:
            sync_connections_file(self.db, self.settings.connections_file)
        except (CollectorError, ProviderError) as exc:
            log.error("connections file: %s", exc)

    async def recover(self, timestamp: int) -> None:
        """Fail the jobs of workers that stopped heartbeating and defer them again."""
        manager = self.app.job_manager
        for job in await manager.get_stalled_jobs(seconds_since_heartbeat=self.stalled_after):
            assert job.id is not None
            log.warning("job %s (%s) of a dead worker: failed, deferred again", job.id, job.call_string)
            await manager.finish_job(job, Status.FAILED, delete_job=False)
            # again from a thread: deferring is synchronous code (and so is the escalation timer)
            await sync_to_async(self._defer_again, job.task_name.removeprefix(TASK_PREFIX), job.task_kwargs)
        await manager.delete_old_jobs(nb_hours=JOB_HISTORY_HOURS, include_failed=True)

    def _defer_again(self, name: str, args: dict[str, Any]) -> None:
        if name == "collect":
            # ahead of the routine runs: this stream is the one furthest behind
            self.defer_collect(int(args["connection_id"]), str(args["stream"]), priority=RECOVERED_PRIORITY)
        elif name in ("detect", "anomaly"):
            kept = {k: args[k] for k in ("partition", "connection_id") if args.get(k) is not None}
            self.defer_job(name, **kept)
        elif name in JOBS:
            self.defer_job(name)
        elif name == "escalate":
            self.defer_escalation_timer()

    # ---- running ---------------------------------------------------------------------------------

    @property
    def worker_name(self) -> str:
        name = getattr(self, "_worker_name", None)
        if name is None:
            name = self._worker_name = self.options.worker()
        return name

    def run_worker(self, *, concurrency: int = 4, poll_seconds: float = 1.0) -> None:
        """Run jobs until SIGTERM/SIGINT (Procrastinate installs the signal handlers)."""
        with self.deferrer.open():
            try:
                self.sweep()  # a fresh deployment has no jobs yet
            except Exception:  # e.g. several workers starting at once: the periodic sweep follows
                log.exception("first sweep failed; the periodic sweep will make it good")
            self.app.run_worker(
                name=self.worker_name,
                concurrency=concurrency,
                fetch_job_polling_interval=poll_seconds,
                update_heartbeat_interval=self.settings.worker_heartbeat_seconds,
                stalled_worker_timeout=self.stalled_after,
            )

    @contextmanager
    def opened(self) -> Iterator[WorkerApp]:
        """Open for deferring (the API process)."""
        with self.deferrer.open():
            yield self


class ProcrastinateScheduler:
    """The `pipeline.jobs.Scheduler` seam over Procrastinate: `enqueue` defers, workers run."""

    def __init__(self, worker_app: WorkerApp) -> None:
        self.worker_app = worker_app

    def enqueue(self, job: str, **args: Any) -> None:
        self.worker_app.defer_job(job, **args)
