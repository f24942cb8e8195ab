"""The cycle's jobs and the seam any task engine plugs into.

Jobs, each a plain function of a `Cycle` and a `Scheduler` (plus small JSON-able arguments), so
APScheduler in one process (`pipeline.embedded`) and a distributed engine on PostgreSQL
(Procrastinate workers) call the very same code:

- ``detect(partition)`` — rules and correlations of one tenant partition (`detectors.partitions`),
                 bounded to ``pipeline_max_batches`` batches; asks for itself again while the
                 partition's backlog remains, then for its ``anomaly``, and for ``analyse`` when it
                 moved anything. Scheduled by every committed page of new events, for the
                 partition of the page's connection. One run at a time per partition (lock
                 ``detect:<partition>``), any number of partitions at once. Without a partition
                 (a job deferred before partitions, a sweep) it asks for every partition in use.
- ``anomaly(partition)`` — the anomaly detectors of one tenant partition, in event time (each
                 partition its own cursors, baselines, model and watermark); one run at a time
                 per partition (lock ``detect:anomaly:<partition>``). Without a partition it asks
                 for every partition in use.
- ``analyse``  — every stage after detection (posture, identity, incidents, notify, approved
                 remediation steps, and whatever is added to `STAGES`).
- ``sweep``    — the periodic safety net: asks for ``detect`` and ``anomaly`` of every
                 partition and ``analyse`` whatever happened.

Jobs are level-triggered (everything they do is derived from database state), so an engine may
lose, repeat or coalesce them: a lost one is made good by the next sweep, a repeated one finds
nothing to do. An engine should keep at most one queued instance per (job, key): APScheduler
replaces the pending one; Procrastinate's ``queueing_lock`` does the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from core.db import Database
from pipeline.cycle import Cycle
from pipeline.stages import DETECT, StageResult, after


class Scheduler(Protocol):
    """Anything that can run a job of `JOBS` soon: ``enqueue("detect", partition=3)``."""

    def enqueue(self, job: str, **args: Any) -> None: ...


def job_key(job: str, args: dict[str, Any]) -> str:
    """The coalescing key: one queued instance per job and arguments."""
    return ":".join([job, *(f"{k}={args[k]}" for k in sorted(args))])


def job_lock(job: str, args: dict[str, Any]) -> str | None:
    """What may not run twice at once: one partition's detection, one partition's anomaly pass,
    analysis."""
    if job == "detect" and args.get("partition") is not None:
        return f"detect:{args['partition']}"
    if job == "anomaly" and args.get("partition") is not None:
        return f"detect:anomaly:{args['partition']}"
    if job == "analyse":
        return "stage:analyse"
    return None


def partitions_in_use(db: Database, partitions: int) -> list[int]:
    from detectors.partitions import partition_map

    with db.session(readonly=True) as session:
        return partition_map(session, partitions).used


def partition_of_connection(db: Database, partitions: int, connection_id: int | None) -> int:
    from core.models import Connection
    from detectors.partitions import organisation, partition_of

    with db.session(readonly=True) as session:
        connection = session.get(Connection, connection_id) if connection_id is not None else None
        return partition_of(organisation(connection.config if connection is not None else None), partitions)


def detect(
    cycle: Cycle, scheduler: Scheduler, partition: int | None = None, connection_id: int | None = None
) -> StageResult | None:
    """Detection of one tenant partition. `connection_id` alone (a trigger deferred before
    partitions) means that connection's partition; neither means every partition in use."""
    partitions = cycle.settings.pipeline_partitions
    if partition is None and connection_id is not None:
        partition = partition_of_connection(cycle.db, partitions, connection_id)
    if partition is None:
        for each in partitions_in_use(cycle.db, partitions):
            scheduler.enqueue("detect", partition=each)
            scheduler.enqueue("anomaly", partition=each)
        return None
    ctx = cycle.context(partition=partition, with_anomaly=False)
    result = cycle.run_stage(DETECT, ctx, lock=job_lock("detect", {"partition": partition}))
    if result.pending:
        scheduler.enqueue("detect", partition=partition)
    scheduler.enqueue("anomaly", partition=partition)
    if result.counts or _snapshots_waiting(cycle):
        scheduler.enqueue("analyse")
    return result


def anomaly(cycle: Cycle, scheduler: Scheduler, partition: int | None = None) -> StageResult | None:
    """The anomaly detectors of one tenant partition once (bounded as detection is); without a
    partition (a job deferred before partitions), asks for every partition in use."""
    if partition is None:
        for each in partitions_in_use(cycle.db, cycle.settings.pipeline_partitions):
            scheduler.enqueue("anomaly", partition=each)
        return None
    ctx = cycle.context(partition=partition, with_rules=False)
    result = cycle.run_stage(DETECT, ctx, lock=job_lock("anomaly", {"partition": partition}))
    if result.pending:
        scheduler.enqueue("anomaly", partition=partition)
    if result.counts or _snapshots_waiting(cycle):
        scheduler.enqueue("analyse")
    return result


def analyse(cycle: Cycle, scheduler: Scheduler) -> list[StageResult]:
    """Every stage after detection, in cycle order."""
    return [cycle.run_stage(stage) for stage in after(DETECT.name) if stage in cycle.stages]


def sweep(cycle: Cycle, scheduler: Scheduler) -> None:
    """The safety sweep: whatever triggers were lost, the whole analysis runs again."""
    detect(cycle, scheduler)  # every partition's detection and anomaly pass
    scheduler.enqueue("analyse")


def page_committed(scheduler: Scheduler, partition: int | None) -> None:
    """What a collector calls after committing a page with new events or snapshots: detection
    of the page's partition (None: every partition)."""
    if partition is None:
        scheduler.enqueue("detect")
    else:
        scheduler.enqueue("detect", partition=partition)


def stream_read(scheduler: Scheduler, provider: str, stream: str, partition: int) -> None:
    """What a collector calls after a stream's run read to its end: a stream anomaly detection
    reads moved its tenant's event-time watermark (`pipeline.watermark`), so the partition's
    anomaly pass may go further — even when this run stored nothing new and so asked for nothing.
    The tenant's event streams are polled in phase (`collectors.scheduler.poll_phase`): the last
    of them to finish lets the anomaly pass through the events the first ones read."""
    from detectors.partitions import ANOMALY

    if ANOMALY.streams is None or (provider, stream) in ANOMALY.streams:
        scheduler.enqueue("anomaly", partition=partition)


def _snapshots_waiting(cycle: Cycle) -> bool:
    from detectors.posture import snapshots_pending

    return snapshots_pending(cycle.db)


JOBS: dict[str, Callable[..., Any]] = {
    "detect": detect,
    "anomaly": anomaly,
    "analyse": analyse,
    "sweep": sweep,
}
