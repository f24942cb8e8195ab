"""The schedule: one interval job per enabled (connection, stream), following connection changes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from collectors import connections_from_simulator
from collectors.connections import set_enabled, sync_connections
from collectors.runner import select_connections
from collectors.scheduler import (
    EPOCH,
    RETRY_FIRST_SECONDS,
    build_scheduler,
    job_id,
    next_poll,
    poll_phase,
    retry_delay,
)
from core.audit import Actor, Channel
from core.clock import utcnow
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


def test_a_failing_stream_is_tried_again_after_seconds_doubling_and_a_success_resets_the_delay(
    db: Database, settings: Settings, past_simulator: Callable[..., Any]
) -> None:
    # given a tenant whose sign-in log refuses the connection's permission, collected every 5 min
    sim = past_simulator(faults="403=m365:signins")
    streams = {"m365": ["signins"]}
    sync_connections(
        db, connections_from_simulator(sim.info, providers=["m365"], streams=streams), source="simulator"
    )
    scheduler = build_scheduler(db, settings)
    jobs = scheduler.collector_jobs
    (connection,) = select_connections(db)
    assert connection.id is not None
    job_name = job_id(connection, "signins")
    interval = scheduler.get_job(job_name).trigger.interval.total_seconds()

    def run_and_next_try() -> tuple[datetime, datetime, datetime]:
        before = utcnow()
        jobs.run(connection.id, "signins")
        return before, scheduler.get_job(job_name).next_run_time, utcnow()

    # when a run fails, then the next try is due after the first retry delay, not the interval
    before, due, after = run_and_next_try()
    assert (
        before + timedelta(seconds=RETRY_FIRST_SECONDS)
        <= due
        <= after + timedelta(seconds=RETRY_FIRST_SECONDS)
    )
    # and when it fails again, after twice that
    before, due, after = run_and_next_try()
    assert (
        before + timedelta(seconds=2 * RETRY_FIRST_SECONDS)
        <= due
        <= after + timedelta(seconds=2 * RETRY_FIRST_SECONDS)
    )
    assert jobs.failures_in_a_row(connection.id, "signins") == 2
    # and once the permission is granted the run succeeds and the count starts again
    sim.set_faults("")
    jobs.run(connection.id, "signins")
    assert jobs.failures_in_a_row(connection.id, "signins") == 0
    # and the delay never exceeds the stream's interval
    assert retry_delay(30, interval) == interval


def test_a_tenants_event_streams_fall_due_together_and_stay_in_phase_after_a_moved_run(
    db: Database, settings: Settings, make_connection
) -> None:
    # given two organisations: contoso with an Entra and a Slack connection, fabrikam with Slack
    make_connection("contoso-m365", "m365", config={"organisation": "contoso"},
                    streams=("signins", "directory_audits", "users"), intervals={"signins": 30, "directory_audits": 30, "users": 30})  # fmt: skip
    make_connection("contoso-slack", "slack", config={"organisation": "contoso"},
                    secrets={"audit_token": "env:A", "bot_token": "env:B"}, streams=("audit",), intervals={"audit": 30})  # fmt: skip
    make_connection("fabrikam-slack", "slack", config={"organisation": "fabrikam"},
                    secrets={"audit_token": "env:A", "bot_token": "env:B"}, streams=("audit",), intervals={"audit": 30})  # fmt: skip
    # when the scheduler is built
    scheduler = build_scheduler(db, settings)
    triggers = {job.name: job.trigger for job in scheduler.get_jobs() if job.id.startswith("collect:")}
    moment = datetime(2026, 12, 7, 12, 0, 7, 250_000, tzinfo=UTC)

    def phase(name: str) -> float:
        return (triggers[name].tick_after(moment) - EPOCH).total_seconds() % 30

    # then contoso's event streams, whatever the provider, are polled at the same moment of the interval
    assert (
        phase("contoso-m365/signins")
        == phase("contoso-m365/directory_audits")
        == phase("contoso-slack/audit")
    )
    # and its snapshot streams half an interval later
    assert phase("contoso-m365/users") == (phase("contoso-m365/signins") + 15) % 30
    # and another organisation at its own moment (an offset hashed from its name)
    assert phase("fabrikam-slack/audit") != phase("contoso-slack/audit")
    # and a run moved by hand (run now, a retry) is followed by the next moment in phase, not by
    # the moved run plus the interval
    signins = triggers["contoso-m365/signins"]
    following = signins.get_next_fire_time(moment, moment)
    assert moment < following <= moment + timedelta(seconds=30)
    assert (following - EPOCH).total_seconds() % 30 == pytest.approx(phase("contoso-m365/signins"))
    assert signins.get_next_fire_time(following, following) == following + timedelta(seconds=30)


def test_a_worker_defers_a_streams_next_run_to_the_same_moments(make_connection, db: Database) -> None:
    from collectors.streams.base import StreamKind

    connection = make_connection("contoso-m365", "m365", config={"organisation": "contoso"})
    moment = datetime(2026, 12, 7, 12, 0, 7, tzinfo=UTC)
    due = next_poll(connection, StreamKind.EVENTS, 30, moment)
    # the next moment in phase: within one interval, and where serve's trigger fires
    assert moment < due <= moment + timedelta(seconds=30)
    assert (due - EPOCH).total_seconds() % 30 == pytest.approx(poll_phase(connection, StreamKind.EVENTS, 30))
    assert next_poll(connection, StreamKind.EVENTS, 30, due) == due + timedelta(seconds=30)
