"""The cycle in-process on APScheduler: what `tenantguard serve` runs on one machine (SQLite).

`EmbeddedScheduler` is the `pipeline.jobs.Scheduler` seam over a BackgroundScheduler: `enqueue`
adds a one-shot job due now under the job's coalescing key (replacing one still waiting), and a
periodic ``sweep`` job is the safety net. Collection keeps its own schedule (one job per stream,
`collectors.scheduler`); its progress sink tells this scheduler when a page was committed.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from core.clock import utcnow
from core.db import Database
from core.settings import Settings
from pipeline.cycle import Cycle
from pipeline.jobs import JOBS, job_key, page_committed

log = logging.getLogger("tenantguard.pipeline")
SWEEP_JOB = "pipeline:sweep"


class EmbeddedScheduler:
    """Runs `pipeline.jobs.JOBS` on a BackgroundScheduler's thread pool."""

    def __init__(self, cycle: Cycle, *, threads: int = 2) -> None:
        self.cycle = cycle
        self.scheduler = BackgroundScheduler(
            timezone="UTC",
            executors={"default": {"type": "threadpool", "max_workers": max(1, threads)}},
            # one running and one waiting per key: the waiting one sees what the running one missed
            job_defaults={"max_instances": 2, "coalesce": True, "misfire_grace_time": None},
        )
        self.scheduler.add_job(
            self._run,
            IntervalTrigger(seconds=max(1.0, cycle.settings.pipeline_sweep_seconds)),
            args=("sweep", {}),
            id=SWEEP_JOB,
            name="pipeline sweep",
            next_run_time=utcnow(),
            max_instances=1,
        )

    def enqueue(self, job: str, **args: Any) -> None:
        if job not in JOBS:
            raise KeyError(f"unknown pipeline job {job!r}; known: {', '.join(JOBS)}")
        key = f"pipeline:{job_key(job, args)}"
        self.scheduler.add_job(
            self._run,
            "date",
            run_date=utcnow(),
            args=(job, args),
            id=key,
            name=key,
            replace_existing=True,
        )

    def queued(self) -> int:
        """Jobs waiting to run (not counting the periodic sweep)."""
        return sum(1 for job in self.scheduler.get_jobs() if job.id != SWEEP_JOB)

    def _run(self, job: str, args: dict[str, Any]) -> None:
        try:
            JOBS[job](self.cycle, self, **args)
        except Exception:  # logged; the next sweep runs it again
            log.exception("pipeline job %s failed", job)

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self, wait: bool = False) -> None:
        self.scheduler.shutdown(wait=wait)


class PageTrigger:
    """A collectors ProgressSink: every page that stored something new schedules detection."""

    def __init__(self, scheduler: EmbeddedScheduler) -> None:
        self.scheduler = scheduler

    def started(self, key: str) -> None:
        return None

    def page(self, key: str, *, records: int, new: int, window: tuple[datetime, datetime] | None) -> None:
        if new:
            page_committed(self.scheduler, None)

    def waiting(self, key: str, seconds: float, why: str) -> None:
        return None

    def finished(self, key: str, status: str) -> None:
        return None


def embedded(db: Database, settings: Settings, *, collect: bool = True) -> tuple[EmbeddedScheduler, Any]:
    """The pipeline's scheduler and (with `collect`) the collectors' scheduler wired to it; neither
    is started."""
    cycle = Cycle(db, settings)
    pipeline = EmbeddedScheduler(cycle)
    collectors = None
    if collect:
        from collectors.scheduler import build_scheduler

        collectors = build_scheduler(db, settings, progress=PageTrigger(pipeline))
    return pipeline, collectors
