"""`tenantguard status`: one screen — every connection's streams, stage lags, workers, queue depth."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from rich.table import Table

from cli.context import console, database
from core.clock import as_utc, utcnow


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    return _seconds((now - as_utc(moment)).total_seconds()) + " ago"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    value = max(0.0, value)
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"


def status() -> None:
    """Streams (health, last success, lag, failed runs in the last hour), stage backlogs and lags,
    workers and queue depth — read from the database, so it works from any machine."""
    from pipeline.status import read_status

    db = database()
    try:
        now = utcnow()
        report = read_status(db, now=now)
    finally:
        db.dispose()
    streams = Table(
        "connection", "stream", "health", "last success", "lag", "errors 1h", "reason", title="Streams"
    )
    for s in report.lag.streams:
        style = "red" if s.health == "unhealthy" else ""
        errors = report.errors.get((s.connection, s.stream), 0)
        streams.add_row(
            s.connection,
            s.stream,
            s.health,
            _ago(s.last_success, now),
            _seconds(s.seconds_since_success),
            str(errors),
            (s.reason or "")[:80],
            style=style,
        )
    if not report.lag.streams:
        streams.add_row("-", "no streams yet", "", "", "", "", "")
    stages = Table("stage", "waiting", "oldest waiting", title="Stages")
    for stage in report.lag.stages:
        stages.add_row(stage.stage, str(stage.backlog), _seconds(stage.oldest_seconds))
    console.print(streams)
    console.print(stages)
    workers = Table("worker", "last seen", "running", title=f"Workers (engine: {report.engine})")
    for w in report.workers:
        workers.add_row(w.name, _ago(w.last_seen, now), str(w.running))
    for w in report.collectors:
        workers.add_row(f"collector {w.name}", _ago(w.last_seen, now), f"{w.running} stream(s)")
    if not report.workers and not report.collectors:
        workers.add_row("-", "no worker seen in the last 10 min", "")
    console.print(workers)
    if report.engine == "procrastinate":
        queues = Table("queue", "due now", "scheduled later", "running", title="Queue depth")
        for q in report.queues:
            queues.add_row(q.queue, str(q.due), str(q.scheduled), str(q.running))
        if not report.queues:
            queues.add_row("-", "0", "0", "0")
        console.print(queues)
        jobs = Table("job", "task", "arguments", "status", "at", title="Recent jobs")
        for j in report.jobs:
            jobs.add_row(str(j.id), j.task, j.args, j.status, _ago(j.at, now))
        console.print(jobs)
    else:
        console.print("Queue depth: embedded engine — jobs are queued inside `tenantguard serve`")


COMMANDS: dict[str, Callable[..., Any]] = {"status": status}
