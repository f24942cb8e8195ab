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
    runs = cycle.book.snapshot()["detect"].runs
    assert 1 <= runs < 300
    assert not [r for r in caplog.records if "maximum number of running instances" in r.getMessage()]


def test_an_unknown_job_is_refused_by_name(db: Database, settings: Settings) -> None:
    scheduler = EmbeddedScheduler(Cycle(db, settings))
    with pytest.raises(KeyError, match="unknown pipeline job 'detekt'"):
        scheduler.enqueue("detekt")
