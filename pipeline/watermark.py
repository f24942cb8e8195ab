"""How far in event time the streams anomaly detection reads are collected (its watermark).

Anomaly detection judges events in event time (`detectors.anomaly`): a sign-in is compared with
what the person did before it, in any stream. Collectors commit page by page and stream by
stream, in no order across streams, so the detector waits for the slowest: it judges events
older than the time every stream it reads (of every enabled connection of the tenant partition
it judges) has completely read up to, the stream's checkpoint high water. A stream that has not finished its first window holds
everything; a failing stream, or one whose checkpoint has not moved for `HOLD_SECONDS` (nothing
runs it), holds nothing: what it delivers later is judged as a late arrival, against what is
known then. With no such stream configured there is nothing to wait for. So whether an event is
judged in its place or as a late arrival depends on its time and on when it was collected
relative to this watermark, not on ids (`detectors.anomaly`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlmodel import col, select

from collectors.streams.base import configured_streams
from collectors.streams.m365 import UNIFIED_AUDIT_CONTENT_TYPES
from core.clock import as_utc, parse_time, utcnow
from core.db import Database
from core.models import Checkpoint, Connection
from core.models.enums import Health
from detectors.anomaly.engine import READ_STREAMS

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A stream whose checkpoint has not moved for this long (no run commits anything) stops holding.
HOLD_SECONDS = 3600.0

# Streams read as several sub-streams one after another, each with its own checkpoint under its
# key (collectors/streams/m365.py): all of them must have read up to a time.
SUB_STREAMS: dict[tuple[str, str], tuple[str, Any]] = {
    ("m365", "signins"): ("signin_event_types", ("interactiveUser", "nonInteractiveUser")),
    ("m365", "unified_audit"): ("content_types", UNIFIED_AUDIT_CONTENT_TYPES),
}


def _high_water(cursor: Mapping[str, Any], keys: tuple[str, ...] | list[str] | None) -> datetime | None:
    if keys is None:
        value = cursor.get("high_water")
        return as_utc(parse_time(str(value))) if value else None
    marks = []
    for key in keys:
        part = cursor.get(key)
        mark = _high_water(part, None) if isinstance(part, Mapping) else None
        if mark is None:
            return None
        marks.append(mark)
    return min(marks) if marks else None


def anomaly_watermark(
    db: Database, connections: Sequence[int] | None = None, *, now: datetime | None = None
) -> datetime | None:
    """The event time before which every stream anomaly detection reads (of the enabled
    `connections`, a tenant partition's; None: of every connection) is collected; None when no
    such stream is collected (everything stored is complete)."""
    now = now or utcnow()
    with db.session(readonly=True) as session:
        query = select(Connection).where(col(Connection.enabled))
        if connections is not None:
            query = query.where(col(Connection.id).in_(list(connections)))
        enabled = session.exec(query).all()
        stored = select(Checkpoint).where(col(Checkpoint.connection_id).in_([c.id for c in enabled]))
        checkpoints = {(row.connection_id, row.stream): row for row in session.exec(stored).all()}
    marks: list[datetime] = []
    for connection in enabled:
        for spec in configured_streams(connection):
            if (connection.provider, spec.name) not in READ_STREAMS:
                continue
            checkpoint = checkpoints.get((int(connection.id or 0), spec.name))
            if checkpoint is not None and checkpoint.health == Health.UNHEALTHY:
                continue
            moved = checkpoint.updated_at if checkpoint is not None else connection.created_at
            if (now - as_utc(moved)).total_seconds() > HOLD_SECONDS:
                continue
            sub = SUB_STREAMS.get((connection.provider, spec.name))
            keys = (connection.config.get(sub[0]) or list(sub[1])) if sub else None
            mark = _high_water(checkpoint.cursor or {}, keys) if checkpoint is not None else None
            marks.append(mark if mark is not None else EPOCH)
    return min(marks) if marks else None
