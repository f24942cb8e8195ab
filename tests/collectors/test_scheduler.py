"""The schedule: one interval job per enabled (connection, stream), following connection changes."""

from __future__ import annotations

from collectors.connections import set_enabled
from collectors.scheduler import build_scheduler
from core.audit import Actor, Channel
from core.db import Database
from core.settings import Settings


def _jobs(scheduler) -> dict[str, float]:
    return {
        job.name: job.trigger.interval.total_seconds()
        for job in scheduler.get_jobs()
        if job.id.startswith("collect:")
    }


def test_each_enabled_stream_gets_its_interval_and_disabled_connections_drop_out(
    db: Database, settings: Settings, make_connection
) -> None:
    # given a Slack connection collecting audit logs every 60 s and users on the default interval
    make_connection(
        "acme",
        "slack",
        secrets={"audit_token": "env:A", "bot_token": "env:B"},
        streams=("audit", "users"),
        intervals={"audit": 60},
    )
    # when the scheduler is built
    scheduler = build_scheduler(db, settings)
    # then there is one job per stream with its interval
    assert _jobs(scheduler) == {"acme/audit": 60.0, "acme/users": 3600.0}
    # and when the connection is disabled, the next refresh removes its jobs
    set_enabled(db, "acme", False, actor=Actor("principal:test", Channel.CLI))
    scheduler.collector_jobs.refresh()
    assert _jobs(scheduler) == {}
