"""The embedded scheduler: one running instance per job key, a key asked for while it runs runs
once more afterwards, and APScheduler never has to skip (nor log that it skipped) an instance."""

from __future__ import annotations

import logging
import time

import pytest

from core.db import Database
from core.settings import Settings
from pipeline.cycle import Cycle
from pipeline.embedded import EmbeddedScheduler


def _settled(scheduler: EmbeddedScheduler, deadline: float) -> None:
    while scheduler.queued() or scheduler._running:
        assert time.monotonic() < deadline, "the scheduler never settled"
        time.sleep(0.05)


def test_a_flood_of_page_triggers_coalesces_without_skipped_instances(
    db: Database, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # given serve's embedded scheduler (a long sweep interval: only our requests run)
    cycle = Cycle(db, settings.model_copy(update={"pipeline_sweep_seconds": 3600}))
    scheduler = EmbeddedScheduler(cycle)
    scheduler.scheduler.remove_job("pipeline:sweep")
    caplog.set_level(logging.DEBUG, logger="apscheduler")
    scheduler.start()
    try:
        # when 300 committed pages ask for detection as fast as they can
        for _ in range(300):
            scheduler.enqueue("detect")
        _settled(scheduler, time.monotonic() + 120)
    finally:
        scheduler.shutdown(wait=True)
    # then detection ran, far fewer times than it was asked, and nothing was skipped
    record = cycle.book.snapshot()["detect"]
    assert 1 <= record.runs < 300
    assert record.seconds_total >= record.seconds > 0  # /metrics: tenantguard_stage_seconds_total
    assert not [r for r in caplog.records if "maximum number of running instances" in r.getMessage()]


def test_an_unknown_job_is_refused_by_name(db: Database, settings: Settings) -> None:
    scheduler = EmbeddedScheduler(Cycle(db, settings))
    with pytest.raises(KeyError, match="unknown pipeline job 'detekt'"):
        scheduler.enqueue("detekt")


def test_a_job_asked_for_while_it_runs_runs_again_and_the_key_stays_usable(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from pipeline import embedded

    started, release, runs = threading.Event(), threading.Event(), []

    def held(cycle: Cycle, scheduler: EmbeddedScheduler) -> None:
        runs.append(1)
        started.set()
        assert release.wait(60)

    monkeypatch.setitem(embedded.JOBS, "detect", held)
    scheduler = EmbeddedScheduler(Cycle(db, settings.model_copy(update={"pipeline_sweep_seconds": 3600})))
    scheduler.scheduler.remove_job("pipeline:sweep")
    submit = scheduler._submit

    def submit_then_stall(*args: object) -> None:
        # On a loaded machine the finishing run's thread may stall right after it submits its
        # rerun, while APScheduler still counts it as running: make that happen every time.
        submit(*args)  # type: ignore[arg-type]
        time.sleep(0.5)

    monkeypatch.setattr(scheduler, "_submit", submit_then_stall)
    scheduler.start()
    try:
        scheduler.enqueue("detect")
        assert started.wait(60)
        scheduler.enqueue("detect")  # while the first run holds: remembered, runs once more after it
        release.set()
        _settled(scheduler, time.monotonic() + 60)
        assert len(runs) == 2
        # and the key is free again: a later ask runs (a skipped rerun used to leave it "running")
        scheduler.enqueue("detect")
        _settled(scheduler, time.monotonic() + 60)
        assert len(runs) == 3
    finally:
        release.set()
        scheduler.shutdown(wait=True)


def test_a_skipped_periodic_run_is_quiet_and_a_skipped_one_shot_job_still_warns() -> None:
    # given APScheduler's warning for a periodic job (sweep, stream) and for a one-shot job
    from apscheduler.schedulers.background import BackgroundScheduler

    from pipeline.embedded import SKIPPED_MESSAGE, OverlapByDesign

    aps = BackgroundScheduler(timezone="UTC")
    periodic = aps.add_job(print, "interval", seconds=5, id="pipeline:sweep")
    one_shot = aps.add_job(print, "date", id="pipeline:detect")

    def warning(job: object) -> logging.LogRecord:
        return logging.LogRecord(
            "apscheduler.scheduler", logging.WARNING, __file__, 1,
            f'Execution of job "%s" skipped: {SKIPPED_MESSAGE} (%d)', (job, 1), None,
        )  # fmt: skip

    # then the overrun periodic run is dropped (its next tick comes) and the one-shot one is kept
    quiet = OverlapByDesign()
    assert not quiet.filter(warning(periodic))
    assert quiet.filter(warning(one_shot))
