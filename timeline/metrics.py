"""Response metrics over the incidents opened in a period: MTTD, MTTA, MTTC, MTTR, volume, SLA.

* MTTD — first malicious event (the earliest evidence event) → first finding written about it,
  counted from when that event could first be read (history backfilled when a connection was
  added counts from the connection, not from the event: that wait is not detection delay);
* MTTA — incident opened → acknowledged (first triage, assignment or status change);
* MTTC — opened → contained; MTTR — opened → resolved;
* each of the four per priority too (``by_priority_times``: a P1's minutes are not averaged with a
  P4's days);
* volume and recurrence by incident type (the rule behind the most severe finding); a recurrence
  is an incident of a type already seen about the same person or asset in the 90 days before;
* SLA compliance — share of incidents acknowledged/resolved by their due dates, of those whose
  outcome is known (still-open incidents before their due date are "pending", not counted).

Duplicates are left out (they live on in the incident they were merged into); false positives
count in volume and acknowledgement but not in containment/resolution.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from core.clock import isoformat, utcnow
from core.db import Database
from core.models.enums import IncidentStatus, Priority
from core.models.incident import Incident
from timeline.sla import SlaState, acknowledge_sla, resolve_sla


@dataclass(frozen=True)
class DurationStats:
    count: int
    mean_seconds: float | None
    median_seconds: float | None
    p90_seconds: float | None

    @classmethod
    def of(cls, seconds: Iterable[float]) -> DurationStats:
        values = sorted(max(0.0, s) for s in seconds)
        if not values:
            return cls(0, None, None, None)
        p90 = values[min(len(values) - 1, int(round(0.9 * (len(values) - 1))))]
        return cls(len(values), statistics.fmean(values), statistics.median(values), p90)


@dataclass(frozen=True)
class SlaStats:
    met: int
    breached: int
    pending: int

    @property
    def compliance(self) -> float | None:
        decided = self.met + self.breached
        return None if decided == 0 else self.met / decided

    @classmethod
    def of(cls, states: Iterable[SlaState]) -> SlaStats:
        found = list(states)
        return cls(found.count(SlaState.MET), found.count(SlaState.BREACHED), found.count(SlaState.PENDING))


@dataclass(frozen=True)
class TypeStats:
    count: int
    recurrences: int
    by_priority: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricsReport:
    since: datetime
    until: datetime
    incidents: int
    by_status: dict[str, int]
    by_priority: dict[str, int]
    by_type: dict[str, TypeStats]
    mttd: DurationStats
    mtta: DurationStats
    mttc: DurationStats
    mttr: DurationStats
    # {"P1": {"mttd": ..., "mtta": ..., "mttc": ..., "mttr": ...}, ...}
    by_priority_times: dict[str, dict[str, DurationStats]]
    sla_acknowledge: SlaStats
    sla_resolve: SlaStats
    false_positive_rate: float | None

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["since"] = isoformat(self.since)
        body["until"] = isoformat(self.until)
        body["sla_acknowledge"]["compliance"] = self.sla_acknowledge.compliance
        body["sla_resolve"]["compliance"] = self.sla_resolve.compliance
        return body


def _seconds(end: datetime | None, start: datetime | None) -> float | None:
    if end is None or start is None:
        return None
    return (end - start).total_seconds()


def summarise(
    incidents: Iterable[Incident], since: datetime, until: datetime, now: datetime
) -> MetricsReport:
    """The metrics of these incidents (pure; `compute_metrics` reads them from the database)."""
    counted = [i for i in incidents if i.status != IncidentStatus.DUPLICATE]
    real = [i for i in counted if i.status != IncidentStatus.FALSE_POSITIVE]
    by_status: dict[str, int] = {}
    by_priority: dict[str, int] = {p.value: 0 for p in Priority}
    by_type: dict[str, dict[str, Any]] = {}
    for incident in counted:
        by_status[incident.status] = by_status.get(incident.status, 0) + 1
        by_priority[incident.priority] = by_priority.get(incident.priority, 0) + 1
        kind = by_type.setdefault(
            incident.incident_type or "unknown", {"count": 0, "recurrences": 0, "by_priority": {}}
        )
        kind["count"] += 1
        kind["recurrences"] += 1 if incident.recurrence_of_id else 0
        kind["by_priority"][incident.priority] = kind["by_priority"].get(incident.priority, 0) + 1

    def durations(pairs: Iterable[tuple[datetime | None, datetime | None]]) -> DurationStats:
        return DurationStats.of(s for end, start in pairs if (s := _seconds(end, start)) is not None)

    def times(of: list[Incident], fixed: list[Incident]) -> dict[str, DurationStats]:
        """MTTD and MTTA over `of`; MTTC and MTTR over `fixed` (false positives left out)."""
        return {
            "mttd": durations((i.detected_at, i.first_readable_at or i.first_event_at) for i in of),
            "mtta": durations((i.acknowledged_at, i.created_at) for i in of),
            "mttc": durations((i.contained_at, i.created_at) for i in fixed),
            "mttr": durations((i.resolved_at, i.created_at) for i in fixed),
        }

    overall = times(counted, real)
    by_priority_times = {
        p.value: times(
            [i for i in counted if i.priority == p.value], [i for i in real if i.priority == p.value]
        )
        for p in Priority
    }
    return MetricsReport(
        since=since,
        until=until,
        incidents=len(counted),
        by_status=by_status,
        by_priority=by_priority,
        by_type={name: TypeStats(**values) for name, values in sorted(by_type.items())},
        mttd=overall["mttd"],
        mtta=overall["mtta"],
        mttc=overall["mttc"],
        mttr=overall["mttr"],
        by_priority_times=by_priority_times,
        sla_acknowledge=SlaStats.of(acknowledge_sla(i, now) for i in counted),
        sla_resolve=SlaStats.of(resolve_sla(i, now) for i in real),
        false_positive_rate=(len(counted) - len(real)) / len(counted) if counted else None,
    )


def compute_metrics(
    db: Database, since: datetime, until: datetime | None = None, *, now: datetime | None = None
) -> MetricsReport:
    """Metrics of the incidents opened in [since, until)."""
    now = now or utcnow()
    until = until or now
    with db.session(readonly=True) as session:
        incidents = list(
            session.execute(
                select(Incident).where(col(Incident.created_at) >= since, col(Incident.created_at) < until)
            ).scalars()
        )
    return summarise(incidents, since, until, now)


def describe_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
