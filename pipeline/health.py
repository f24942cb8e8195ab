"""How far behind each stream and stage is, read from the database (any process can ask).

`read_lag` gives, per stream: health, last success and how long ago; per stage: the backlog
(detection: events after its cursor; anomaly: events of the streams it reads not yet judged in
event time; incidents: findings that could open an incident and are in none) and the age of its
oldest waiting item. `problems` names what fails or lags beyond the
settings' `pipeline_lag_seconds`; `/health` says ``degraded`` when there are any.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, tuple_
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from core.clock import as_utc, utcnow
from core.db import Database
from core.models import AnalysisCursor, Checkpoint, Connection, Event, Finding
from core.models.enums import FindingStatus, Health

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# detectors.anomaly's event-time cursor and the streams it reads (equal to its TIME_CURSOR and
# READ_STREAMS, tests/pipeline/test_health.py checks): not imported, since /health runs on the
# API's threads while the cycle's threads may be importing detectors.anomaly, and two threads
# importing one package at once can fail (KeyError from importlib)
ANOMALY_TIME_CURSOR = "anomaly.event_time"
ANOMALY_STREAMS = frozenset(
    {
        ("m365", "signins"),
        ("m365", "unified_audit"),
        ("google", "login"),
        ("google", "drive"),
        ("slack", "audit"),
    }
)
DETECTION_CURSOR = "detection"


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


@dataclass
class LagReport:
    streams: list[StreamLag] = field(default_factory=list)
    stages: list[StageLag] = field(default_factory=list)

    def problems(self, lag_seconds: float, stage_errors: dict[str, str] | None = None) -> list[str]:
        out = []
        for s in self.streams:
            if s.health == Health.UNHEALTHY:
                out.append(f"stream {s.connection}/{s.stream} failing: {s.reason or 'unknown'}"[:300])
        for stage in self.stages:
            if stage.backlog and stage.oldest_seconds > lag_seconds:
                out.append(
                    f"stage {stage.stage} lags: {stage.backlog} waiting, oldest {stage.oldest_seconds:.0f} s"
                )
        for name, error in sorted((stage_errors or {}).items()):
            out.append(f"stage {name} failing: {error}"[:300])
        return out


def read_lag(db: Database, *, now: datetime | None = None) -> LagReport:
    now = now or utcnow()
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
        cursor = session.get(AnalysisCursor, DETECTION_CURSOR)
        position = cursor.position if cursor is not None else 0
        backlog, oldest = session.exec(
            select(func.count(), func.min(Event.ingested_at)).where(col(Event.id) > position)
        ).one()
        report.stages.append(StageLag("detect", int(backlog or 0), _age(now, oldest)))
        # anomaly detection judges in event time, behind the slowest stream it reads: what waits
        # for it is the stored events of those streams at or after its event-time cursor
        clock = session.get(AnalysisCursor, ANOMALY_TIME_CURSOR)
        judged_to = EPOCH + timedelta(microseconds=clock.position if clock is not None else 0)
        held, oldest_held = session.exec(
            select(func.count(), func.min(Event.ingested_at)).where(
                tuple_(col(Event.provider), col(Event.stream)).in_(sorted(ANOMALY_STREAMS)),
                col(Event.occurred_at) >= judged_to,
            )
        ).one()
        report.stages.append(StageLag("anomaly", int(held or 0), _age(now, oldest_held)))
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


def _age(now: datetime, then: datetime | None) -> float:
    return max(0.0, (now - as_utc(then)).total_seconds()) if then is not None else 0.0
