"""Detection partitions: the tenant's connections, hashed into P partitions, each with its own cursor.

Rules and correlations are per person within one tenant, so nothing they conclude crosses a
tenant. A *tenant* here is the organisation the connections belong to — all of them, whatever
the provider, since correlations join an Entra sign-in with a Google token grant by the same
person. It is the connection config's ``organisation`` (``config = {organisation = "contoso"}`` in
the connections file); connections without one, and events without a connection, belong to the
default organisation ``""``, so a deployment that names none has every event in one partition,
processed exactly as by the single cursor before partitions.

The organisation is hashed into `partitions` (the setting ``pipeline_partitions``); partition k of
P reads the events of its connections, in event time (`detectors.event_time`), through the id
reader ``detection.p<k>of<P>`` and the event-time cursor ``detection.p<k>of<P>.event_time``.

Upgrade rule (the cursors that existed before partitions, and a change of P): a partition's
cursors that do not exist yet start where the *lowest* of the detection cursors already stored
stand (the single ``detection`` id reader and its ``detection.event_time``, or another P's
partition cursors), with all their gaps. Every
event below that position was processed by the cursor it came from, so nothing is read twice;
every event above it, or in a gap, is read by its partition, so nothing is lost. With one old
cursor (the upgrade) the new cursors start exactly at its position. For a change of P the events
between the lowest old cursor and the others are read again (findings grow in place, their
counts by those events): change P when detection has caught up (an old partition with nothing left to read counts as at
the newest event). The old cursors are left as they are and no longer move.

Anomaly detection is partitioned the same way, with its own family of cursors (`CursorFamily`):
``anomaly.p<k>of<P>`` (the id reader over the anomaly streams of the partition's connections) and
``anomaly.p<k>of<P>.event_time``, started by the same upgrade rule from the single ``anomaly`` and
``anomaly.event_time`` cursors (`detectors.anomaly.service`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, false, func, not_, or_
from sqlmodel import Session, col, select

from core.clock import as_utc, utcnow
from core.models import Connection, Event
from core.models.anomaly import AnalysisCursor
from core.models.connection import ORGANISATION_KEY, organisation
from detectors.cursor import GapCursor

__all__ = [
    "ANOMALY",
    "DETECTION",
    "LEGACY_CURSOR",
    "ORGANISATION_KEY",
    "CursorFamily",
    "PartitionMap",
    "cursor_name",
    "ensure_cursor",
    "organisation",
    "partition_map",
    "partition_of",
]

LEGACY_CURSOR = "detection"  # the one cursor over every event, before partitions
CLOCK_SUFFIX = ".event_time"  # the event-time cursor beside each id reader (`detectors.event_time`)


@dataclass(frozen=True)
class CursorFamily:
    """One detector's partition cursors: the single cursor it had before partitions (`legacy`,
    with its event-time cursor `legacy + CLOCK_SUFFIX`), the partitions' names after it, and the
    streams its readers care about at all (`streams`, None: every event)."""

    legacy: str
    streams: frozenset[tuple[str, str]] | None = None

    @property
    def prefix(self) -> str:
        return self.legacy + ".p"

    @property
    def where(self) -> Any:
        """The family's events (None: all)."""
        if self.streams is None:
            return None
        return and_(
            col(Event.provider).in_(sorted({p for p, _ in self.streams})),
            col(Event.stream).in_(sorted({s for _, s in self.streams})),
        )

    def scoped(self, events: Any) -> Any:
        """A partition's events (`PartitionMap.events`) narrowed to the family's."""
        where = self.where
        return events if where is None else and_(where, events)

    def skip(self, others: Any) -> Any:
        """What a partition's reader of this family passes over (`PartitionMap.others`, and
        events not of the family's streams)."""
        where = self.where
        return others if where is None else or_(not_(where), others)


DETECTION = CursorFamily(LEGACY_CURSOR)  # rules and correlations (`detectors.pipeline`)
# the anomaly detectors (`detectors.anomaly.service`), over the streams they read (equal to
# `detectors.anomaly.engine.READ_STREAMS`: tests/pipeline/test_health.py checks; not imported, so
# that `pipeline.health` reads it without importing the detectors)
ANOMALY = CursorFamily(
    "anomaly",
    frozenset(
        {
            ("m365", "signins"),
            ("m365", "unified_audit"),
            ("google", "login"),
            ("google", "drive"),
            ("slack", "audit"),
        }
    ),
)


def partition_of(organisation_name: str, partitions: int) -> int:
    """The partition (0 .. partitions-1) of an organisation: a stable hash, the same in every process."""
    digest = hashlib.blake2b(organisation_name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % max(1, partitions)


def cursor_name(partition: int, partitions: int, family: CursorFamily = DETECTION) -> str:
    return f"{family.prefix}{partition}of{partitions}"


@dataclass(frozen=True)
class PartitionMap:
    """Which connections each partition holds, as of one read of the connections."""

    partitions: int
    members: dict[int, tuple[int, ...]]  # partition -> connection ids
    default: int  # the default organisation's partition: it also holds events without a connection

    @property
    def used(self) -> list[int]:
        """The partitions that hold a connection, and the default one (connection-less events)."""
        return sorted({self.default, *(p for p, ids in self.members.items() if ids)})

    def events(self, partition: int) -> Any:
        """The partition's events, as a filter on `Event`."""
        ids = self.members.get(partition, ())
        mine = col(Event.connection_id).in_(ids) if ids else false()
        return or_(mine, col(Event.connection_id).is_(None)) if partition == self.default else mine

    def others(self, partition: int) -> Any:
        """Events that are certainly another partition's: of a connection this map places elsewhere.

        An event of a connection created after this map was read is neither the partition's nor
        the others': its cursor keeps it as a gap and reads it again with the next map."""
        ids = [i for p, members in self.members.items() if p != partition for i in members]
        theirs = col(Event.connection_id).in_(ids) if ids else false()
        return theirs if partition == self.default else or_(theirs, col(Event.connection_id).is_(None))


def partition_map(session: Session, partitions: int) -> PartitionMap:
    """Every connection (enabled or not: a disabled one's stored events are still detected) by partition."""
    members: dict[int, list[int]] = {}
    for connection in session.exec(select(Connection)).all():
        if connection.id is None:
            continue
        partition = partition_of(organisation(connection.config), partitions)
        members.setdefault(partition, []).append(int(connection.id))
    return PartitionMap(
        partitions=max(1, partitions),
        members={p: tuple(sorted(ids)) for p, ids in members.items()},
        default=partition_of("", partitions),
    )


def stored_cursors(
    session: Session, family: CursorFamily = DETECTION
) -> tuple[list[AnalysisCursor], dict[str, AnalysisCursor]]:
    """The family's id readers stored (the single one, every partition's) and, by the reader's
    name, their event-time cursors."""
    rows = session.exec(
        select(AnalysisCursor).where(
            or_(
                col(AnalysisCursor.name).startswith(family.legacy + "."),
                col(AnalysisCursor.name) == family.legacy,
            )
        )
    ).all()
    prefix = family.prefix
    readers = [
        r
        for r in rows
        if r.name == family.legacy or (r.name.startswith(prefix) and "." not in r.name[len(prefix) :])
    ]
    clocks = {r.name.removesuffix(CLOCK_SUFFIX): r for r in rows if r.name.endswith(CLOCK_SUFFIX)}
    return readers, clocks


def _layout(name: str, family: CursorFamily) -> str:
    return name.rsplit("of", 1)[-1] if name.startswith(family.prefix) else family.legacy


def starting_point(
    session: Session,
    readers: Iterable[AnalysisCursor],
    clocks: Mapping[str, AnalysisCursor],
    partitions: int,
    family: CursorFamily = DETECTION,
) -> tuple[int, list[list[float]], int]:
    """Where a new partition's cursors start (the upgrade rule): among the cursors of an earlier
    layout (the single cursor, or the partition cursors of another P), those of the one that
    moved last. The id reader: the lowest position among them — a partition with nothing left to
    read counting as at the newest event — and their gaps below it; the event-time cursor: the
    lowest of the partitions with something left to read (else the highest), so an event it
    passes over unread is read later as a late arrival, never lost."""
    layouts: dict[str, list[AnalysisCursor]] = {}
    for row in readers:
        if _layout(row.name, family) != str(partitions):
            layouts.setdefault(_layout(row.name, family), []).append(row)
    if not layouts:
        return 0, [], 0
    layout, rows = max(layouts.items(), key=lambda item: max(as_utc(r.updated_at) for r in item[1]))
    busy = [True] * len(rows)
    positions = [int(row.position) for row in rows]
    if layout != family.legacy:
        old = partition_map(session, int(layout))
        head = int(session.exec(select(func.max(Event.id))).one() or 0)
        busy = [
            GapCursor(row.name, Event, where=family.scoped(old.events(_partition(row.name, family)))).pending(
                session
            )
            for row in rows
        ]
        positions = [p if waiting else max(p, head) for p, waiting in zip(positions, busy, strict=True)]
    low = min(positions)
    gaps = sorted(
        [float(gap[0]), float(min(gap[1], low)), float(gap[2])]
        for row in rows
        for gap in row.gaps or []
        if gap[0] <= low
    )
    times = [int(clocks[r.name].position) if r.name in clocks else 0 for r in rows]
    waiting_times = [t for t, waiting in zip(times, busy, strict=True) if waiting]
    clock = min(waiting_times) if waiting_times else max(times)
    return low, gaps, clock


def _partition(name: str, family: CursorFamily) -> int:
    return int(name.removeprefix(family.prefix).split("of", 1)[0])


def ensure_cursor(
    session: Session, partition: int, partitions: int, family: CursorFamily = DETECTION
) -> AnalysisCursor:
    """The partition's id reader row (and its event-time cursor), made by the upgrade rule
    (module docstring) if missing."""
    name = cursor_name(partition, partitions, family)
    row = session.get(AnalysisCursor, name)
    if row is not None:
        return row
    readers, clocks = stored_cursors(session, family)
    position, gaps, clock = starting_point(session, readers, clocks, partitions, family)
    row = AnalysisCursor(name=name, position=position, gaps=gaps, updated_at=utcnow())
    session.add(row)
    if session.get(AnalysisCursor, name + CLOCK_SUFFIX) is None:
        session.add(AnalysisCursor(name=name + CLOCK_SUFFIX, position=clock, gaps=[], updated_at=utcnow()))
    return row
