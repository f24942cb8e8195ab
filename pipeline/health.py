"""How far behind each stream and stage is, read from the database (any process can ask).

`read_lag` gives, per stream: health, last success and how long ago; per stage: the backlog
(detection: events after its cursors, in all and per tenant partition as ``detect:p<k>``;
anomaly: events of the streams it reads not yet judged in event time, likewise per partition
as ``anomaly:p<k>``; incidents: findings that
could open an incident and are in none) and the age of its oldest waiting item. `problems` names
what fails or lags beyond the settings' `pipeline_lag_seconds` (a lagging detection partition by
its number and connections); `/health` says ``degraded`` when there are any.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from core.clock import as_utc, utcnow
from core.db import Database
from core.models import Checkpoint, Connection, Event, Finding
from core.models.enums import FindingStatus, Health
from detectors.partitions import (
    ANOMALY,
    DETECTION,
    CursorFamily,
    cursor_name,
    partition_map,
    starting_point,
    stored_cursors,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# the streams detectors.anomaly reads (`ANOMALY`, equal to its READ_STREAMS: tests/pipeline/
# test_health.py checks): not imported from it, since /health runs on the API's threads while the
# cycle's threads may be importing detectors.anomaly, and two threads importing one package at
# once can fail (KeyError from importlib)
ANOMALY_STREAMS = ANOMALY.streams or frozenset()
# a partition's stage in the report: ``detect:p<k>`` (rules), ``anomaly:p<k>`` (anomaly detectors)
PARTITION_STAGES = {"detect": DETECTION, "anomaly": ANOMALY}


@dataclass(frozen=True)
class StreamLag:
    connection: str
    stream: str
    health: str
    reason: str | None
    last_success: datetime | None
    seconds_since_success: float | None


@dataclass(frozen=True)
class StageLag:
    stage: str
    backlog: int
    oldest_seconds: float  # how long the oldest waiting item has waited (0 when none)
    connections: int | None = None  # a detection partition's connections


def _partition_of(stage: StageLag) -> str | None:
    """The stage a partition's entry belongs to (``detect`` for ``detect:p3``), else None."""
    name, _, rest = stage.stage.partition(":p")
    return name if rest and name in PARTITION_STAGES else None


@dataclass
class LagReport:
    streams: list[StreamLag] = field(default_factory=list)
    stages: list[StageLag] = field(default_factory=list)

    def problems(self, lag_seconds: float, stage_errors: dict[str, str] | None = None) -> list[str]:
        out = []
        for s in self.streams:
            if s.health == Health.UNHEALTHY:
                out.append(f"stream {s.connection}/{s.stream} failing: {s.reason or 'unknown'}"[:300])
        partitioned = {name for stage in self.stages if (name := _partition_of(stage))}
        for stage in self.stages:
            if stage.stage in partitioned:
                continue  # named by its partitions
            if stage.backlog and stage.oldest_seconds > lag_seconds:
                where = f" ({stage.connections} connection(s))" if stage.connections is not None else ""
                out.append(
                    f"stage {stage.stage}{where} lags: {stage.backlog} waiting, "
                    f"oldest {stage.oldest_seconds:.0f} s"
                )
        for name, error in sorted((stage_errors or {}).items()):
            out.append(f"stage {name} failing: {error}"[:300])
        return out


def read_lag(db: Database, *, now: datetime | None = None, partitions: int | None = None) -> LagReport:
    """`partitions`: the detection partitions (default: the database's settings')."""
    now = now or utcnow()
    count = partitions or db.settings.pipeline_partitions
    report = LagReport()
    with db.session(readonly=True) as session:
        rows = session.execute(
            sa_select(
                col(Connection.name),
                col(Checkpoint.stream),
                col(Checkpoint.health),
                col(Checkpoint.health_reason),
                col(Checkpoint.last_success_at),
            )
            .join(Connection, col(Connection.id) == col(Checkpoint.connection_id))
            .where(col(Connection.enabled).is_(True))
            .order_by(col(Connection.name), col(Checkpoint.stream))
        ).all()
        for name, stream, health, reason, success in rows:
            ago = (now - as_utc(success)).total_seconds() if success is not None else None
            report.streams.append(StreamLag(name, stream, health, reason, success, ago))
        report.stages.extend(_partition_lags(session, count, now, "detect"))
        # anomaly detection judges in event time, behind the slowest stream it reads of the
        # partition's connections: what waits for it is the stored events of those streams at or
        # after its event-time cursor
        report.stages.extend(_partition_lags(session, count, now, "anomaly"))
        waiting, oldest_finding = session.exec(
            select(func.count(), func.min(Finding.created_at)).where(
                col(Finding.incident_id).is_(None),
                col(Finding.status) == FindingStatus.OPEN,
                col(Finding.kind) != "posture",
                col(Finding.severity) != "informational",
            )
        ).one()
        report.stages.append(StageLag("incidents", int(waiting or 0), _age(now, oldest_finding)))
    return report


def _partition_lags(session: Any, partitions: int, now: datetime, stage: str) -> list[StageLag]:
    """A partitioned stage's backlog in all, then per partition in use (``<stage>:p<k>``). Detection:
    a partition's events not yet read, or read and not yet processed in event time; anomaly: its
    events of the anomaly streams not yet judged in event time. Where a partition's cursors are
    not made yet: from where the upgrade rule will start them."""
    family: CursorFamily = PARTITION_STAGES[stage]
    layout = partition_map(session, partitions)
    readers, clocks = stored_cursors(session, family)
    by_name = {row.name: row for row in readers}
    start: tuple[int, list[list[float]], int] | None = None
    out: list[StageLag] = []
    for partition in layout.used:
        name = cursor_name(partition, layout.partitions, family)
        row = by_name.get(name)
        if row is not None:
            position = int(row.position)
            clock = int(clocks[name].position) if name in clocks else 0
        else:
            start = start or starting_point(session, readers, clocks, layout.partitions, family)
            position, clock = start[0], start[2]
        unjudged = col(Event.occurred_at) >= EPOCH + timedelta(microseconds=clock)
        waiting = or_(col(Event.id) > position, unjudged) if family is DETECTION else unjudged
        backlog, oldest = session.exec(
            select(func.count(), func.min(Event.ingested_at)).where(
                family.scoped(layout.events(partition)), waiting
            )
        ).one()
        out.append(
            StageLag(
                f"{stage}:p{partition}",
                int(backlog or 0),
                _age(now, oldest),
                connections=len(layout.members.get(partition, ())),
            )
        )
    total = StageLag(stage, sum(s.backlog for s in out), max((s.oldest_seconds for s in out), default=0.0))
    return [total, *out]


def _age(now: datetime, then: datetime | None) -> float:
    return max(0.0, (now - as_utc(then)).total_seconds()) if then is not None else 0.0
