"""What `tenantguard status` shows, read from the database: streams, stage lags, workers, queues.

`read_status` works for either engine. Streams and stages come from `pipeline.health.read_lag`
plus each stream's failed runs in the last hour. Workers: on PostgreSQL with Procrastinate's
tables, its registered workers (heartbeat, running jobs), the queue depth per queue and the most
recent jobs; everywhere, the collector processes seen in run records of the last ten minutes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, text
from sqlmodel import col, select

from core.clock import as_utc, utcnow
from core.db import Database
from core.models import Connection
from core.models.connection import CollectionRun
from pipeline.health import LagReport, read_lag

RECENT = timedelta(minutes=10)
ERROR_WINDOW = timedelta(hours=1)
RECENT_JOBS = 10


@dataclass(frozen=True)
class WorkerView:
    name: str
    last_seen: datetime | None
    running: int


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    due: int  # waiting and due now
    scheduled: int  # waiting for a later time (next interval, escalation timers)
    running: int


@dataclass(frozen=True)
class JobView:
    id: int
    task: str
    args: str
    status: str
    at: datetime | None


@dataclass
class StatusReport:
    engine: str
    lag: LagReport
    errors: dict[tuple[str, str], int] = field(default_factory=dict)  # (connection, stream) -> failed runs
    collectors: list[WorkerView] = field(default_factory=list)
    workers: list[WorkerView] = field(default_factory=list)
    queues: list[QueueDepth] = field(default_factory=list)
    jobs: list[JobView] = field(default_factory=list)


def has_job_tables(db: Database) -> bool:
    if db.dialect != "postgresql":
        return False
    with db.session(readonly=True) as session:
        return bool(session.execute(text("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")).scalar())


def read_status(db: Database, *, now: datetime | None = None) -> StatusReport:
    now = now or utcnow()
    engine = "procrastinate" if has_job_tables(db) else "embedded"
    report = StatusReport(engine=engine, lag=read_lag(db, now=now))
    with db.session(readonly=True) as session:
        failed = session.exec(
            select(Connection.name, CollectionRun.stream, func.count())
            .join(Connection, col(Connection.id) == col(CollectionRun.connection_id))
            .where(col(CollectionRun.status) == "failed", col(CollectionRun.started_at) >= now - ERROR_WINDOW)
            .group_by(col(Connection.name), col(CollectionRun.stream))
        ).all()
        report.errors = {(name, stream): int(n) for name, stream, n in failed}
        runs = session.exec(
            select(CollectionRun.worker, CollectionRun.heartbeat_at, CollectionRun.finished_at).where(
                col(CollectionRun.heartbeat_at) >= now - RECENT
            )
        ).all()
        if engine == "procrastinate":
            report.workers, report.queues, report.jobs = _engine_views(session)
    seen: dict[str, datetime] = {}
    running: Counter[str] = Counter()
    for worker, heartbeat, finished in runs:
        seen[worker] = max(seen.get(worker, as_utc(heartbeat)), as_utc(heartbeat))
        running[worker] += finished is None
    report.collectors = [
        WorkerView(name, seen[name], running[name])
        for name in sorted(seen, key=lambda n: seen[n], reverse=True)
    ]
    return report


def _engine_views(session: Any) -> tuple[list[WorkerView], list[QueueDepth], list[JobView]]:
    workers = [
        WorkerView(f"worker {wid}", as_utc(beat), int(doing))
        for wid, beat, doing in session.execute(
            text(
                "SELECT w.id, w.last_heartbeat, count(j.id) FROM procrastinate_workers w "
                "LEFT JOIN procrastinate_jobs j ON j.worker_id = w.id AND j.status = 'doing' "
                "GROUP BY w.id, w.last_heartbeat ORDER BY w.id"
            )
        ).all()
    ]
    queues = [
        QueueDepth(queue, int(due), int(scheduled), int(doing))
        for queue, due, scheduled, doing in session.execute(
            text(
                "SELECT queue_name,"
                " count(*) FILTER (WHERE status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())),"
                " count(*) FILTER (WHERE status = 'todo' AND scheduled_at > now()),"
                " count(*) FILTER (WHERE status = 'doing')"
                " FROM procrastinate_jobs WHERE status IN ('todo', 'doing') GROUP BY queue_name ORDER BY queue_name"
            )
        ).all()
    ]
    jobs = [
        JobView(int(jid), task, _args(args), status, as_utc(at) if at else None)
        for jid, task, args, status, at in session.execute(
            text(
                "SELECT j.id, j.task_name, j.args, j.status, max(e.at) FROM procrastinate_jobs j "
                "LEFT JOIN procrastinate_events e ON e.job_id = j.id WHERE j.status <> 'todo' "
                "GROUP BY j.id ORDER BY j.id DESC LIMIT :limit"
            ),
            {"limit": RECENT_JOBS},
        ).all()
    ]
    return workers, queues, jobs


@dataclass
class EngineStages:
    """Per-stage series of the Procrastinate engine, for /metrics of an API process that runs no
    stage itself: when a job running each stage last finished, jobs by task and status in the kept
    history (`pipeline.workers.JOB_HISTORY_HOURS`), and the jobs due now (the queue depth)."""

    last_success: dict[str, float] = field(default_factory=dict)  # stage -> epoch seconds
    jobs: dict[tuple[str, str], int] = field(default_factory=dict)  # (task, status) -> count
    due: int = 0


def task_stages() -> dict[str, list[str]]:
    """The stages each worker task runs (`pipeline.workers`)."""
    from pipeline.stages import DETECT, ESCALATIONS, after

    return {
        "collect": ["collect"],
        "detect": [DETECT.name],
        "anomaly": [DETECT.name],
        "analyse": [stage.name for stage in after(DETECT.name)],
        "escalate": [ESCALATIONS.name],
    }


def read_engine_stages(db: Database) -> EngineStages:
    """Read from Procrastinate's tables; empty where there are none (the embedded engine)."""
    if not has_job_tables(db):
        return EngineStages()
    report = EngineStages()
    stages = task_stages()
    with db.session(readonly=True) as session:
        finished = session.execute(
            text(
                "SELECT j.task_name, max(e.at) FROM procrastinate_events e "
                "JOIN procrastinate_jobs j ON j.id = e.job_id WHERE e.type = 'succeeded' GROUP BY j.task_name"
            )
        ).all()
        for task, at in finished:
            for stage in stages.get(str(task).removeprefix("tenantguard."), []):
                moment = as_utc(at).timestamp()
                report.last_success[stage] = max(report.last_success.get(stage, 0.0), moment)
        counts = session.execute(
            text("SELECT task_name, status, count(*) FROM procrastinate_jobs GROUP BY task_name, status")
        ).all()
        report.jobs = {
            (str(task).removeprefix("tenantguard."), str(status)): int(n) for task, status, n in counts
        }
        report.due = int(
            session.execute(
                text(
                    "SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo' "
                    "AND (scheduled_at IS NULL OR scheduled_at <= now())"
                )
            ).scalar()
            or 0
        )
    return report


def _args(args: Any) -> str:
    if not isinstance(args, dict):
        return ""
    return ", ".join(f"{k}={v}" for k, v in sorted(args.items()))
