"""The cycle's jobs and the seam any task engine plugs into.

Three jobs, each a plain function of a `Cycle` and a `Scheduler` (plus small JSON-able
arguments), so APScheduler in one process (`pipeline.embedded`) and a distributed engine on
PostgreSQL (Procrastinate workers) call the very same code:

- ``detect``   — detection, bounded to ``pipeline_max_batches`` batches; asks for itself again
                 while a backlog remains (so other jobs get their turn) and for ``analyse`` when
                 it moved anything. Scheduled by every committed page of new events.
- ``analyse``  — every stage after detection (posture, identity, incidents, notify, approved
                 remediation steps, and whatever is added to `STAGES`).
- ``sweep``    — the periodic safety net: asks for ``detect`` and ``analyse`` whatever happened.

Jobs are level-triggered (everything they do is derived from database state), so an engine may
lose, repeat or coalesce them: a lost one is made good by the next sweep, a repeated one finds
nothing to do. An engine should keep at most one queued instance per (job, key): APScheduler
replaces the pending one; Procrastinate's ``queueing_lock`` does the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from pipeline.cycle import Cycle
from pipeline.stages import DETECT, StageResult, after


class Scheduler(Protocol):
    """Anything that can run a job of `JOBS` soon: ``enqueue("detect", connection_id=3)``."""

    def enqueue(self, job: str, **args: Any) -> None: ...


def job_key(job: str, args: dict[str, Any]) -> str:
    """The coalescing key: one queued instance per job and arguments."""
    return ":".join([job, *(f"{k}={args[k]}" for k in sorted(args))])


def detect(cycle: Cycle, scheduler: Scheduler, connection_id: int | None = None) -> StageResult:
    """Detection over new events (all connections share one cursor today; `connection_id` is
    the connection whose page asked for it, kept in the key so engines can partition by it)."""
    result = cycle.run_stage(DETECT)
    if result.pending:
        scheduler.enqueue("detect")
    if result.counts or _snapshots_waiting(cycle):
        scheduler.enqueue("analyse")
    return result


def analyse(cycle: Cycle, scheduler: Scheduler) -> list[StageResult]:
    """Every stage after detection, in cycle order."""
    return [cycle.run_stage(stage) for stage in after(DETECT.name) if stage in cycle.stages]


def sweep(cycle: Cycle, scheduler: Scheduler) -> None:
    """The safety sweep: whatever triggers were lost, the whole analysis runs again."""
    scheduler.enqueue("detect")
    scheduler.enqueue("analyse")


def page_committed(scheduler: Scheduler, connection_id: int | None) -> None:
    """What a collector calls after committing a page with new events or snapshots."""
    scheduler.enqueue("detect")


def _snapshots_waiting(cycle: Cycle) -> bool:
    from detectors.posture import snapshots_pending

    return snapshots_pending(cycle.db)


JOBS: dict[str, Callable[..., Any]] = {"detect": detect, "analyse": analyse, "sweep": sweep}
