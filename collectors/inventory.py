"""Inventory that costs about nothing when nothing changed.

A snapshot stream reads everything only to reconcile: on its first run, then every
`reconcile_hours` (CollectorOptions; a connection may override it in its config). Between
reconciliations a run reads only what changed — the provider's delta link where the API has one
(`StreamSpec.delta`: Graph `users/delta`, `groups/delta`, `servicePrincipals/delta`), else the
objects that this connection's audit events named since the last run (`StreamSpec.watch`: a Google
admin or Slack audit event about a user or a setting re-reads it). With nothing named, the run
makes no request at all. Streams with neither — or whose connection does not collect the audit
stream that would name the changes — read everything every run, as before.

A committed page of new audit events is what makes such a run worth doing: `watchers` names the
snapshot streams of a connection that watch an events stream, so that a scheduler runs them right
after the events arrived (serve's collectors scheduler does; `collect_once` runs them after the
events streams of the same pass) instead of at their own, long interval.

The marks (when the stream last reconciled; which events it has looked at) live in the stream's
checkpoint cursor and are saved, fenced on the run's claim, only after the run succeeded, so a failed run
is simply done again. Event ids are only roughly in commit order on PostgreSQL (a transaction that
took id 100 may commit after one that took 101), so each run looks again at the events the
previous run saw: a change is re-read once or twice, never missed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import col, select

from collectors.options import CollectorOptions
from collectors.streams.base import ChangeWatch, StreamKind, StreamSpec, configured_streams
from core.db import Database
from core.models import Connection, Event

RECONCILED_AT = "reconciled_at"
EVENTS_SEEN = "watched_event_ids"  # [floor, newest]: the next run looks at ids above floor


@dataclass(frozen=True)
class InventoryPlan:
    """What one run of a snapshot stream reads, and the cursor marks to store once it succeeded."""

    full_read: bool = True
    changed: frozenset[str] = frozenset()
    marks: dict[str, Any] = field(default_factory=dict)
    skip: bool = False  # nothing can have changed: read nothing


def plan_inventory(
    db: Database,
    connection: Connection,
    spec: StreamSpec,
    cursor: dict[str, Any],
    options: CollectorOptions,
    now: datetime,
) -> InventoryPlan:
    if spec.kind is not StreamKind.SNAPSHOT or not (spec.delta or spec.watch):
        return InventoryPlan()
    hours = float(connection.config.get("reconcile_hours", options.reconcile_hours))
    last = _parse_time(cursor.get(RECONCILED_AT))
    full = last is None or now - last >= timedelta(hours=hours)
    marks: dict[str, Any] = {}
    changed: frozenset[str] = frozenset()
    watched = spec.watch is not None and _watched_streams_run(connection, spec.watch)
    if spec.watch is not None and not watched:
        return InventoryPlan()  # no audit stream tells this connection what changed: read it all
    if spec.watch is not None:
        seen = cursor.get(EVENTS_SEEN)
        if not _valid_marks(seen):
            full, seen = True, None
        assert connection.id is not None
        newest, changed = _named_since(db, connection.id, spec.watch, seen)
        marks[EVENTS_SEEN] = [seen[1] if seen else newest, newest]
        if not full and not spec.watch.per_subject and changed:
            full = True  # a small listing: read it whole
    if full:
        marks[RECONCILED_AT] = now.isoformat()
        return InventoryPlan(full_read=True, marks=marks)
    if spec.delta:
        return InventoryPlan(full_read=False, marks=marks)
    return InventoryPlan(full_read=False, changed=changed, marks=marks, skip=not changed)


def watchers(connection: Connection, stream: str) -> list[str]:
    """The configured snapshot streams of `connection` that new events of `stream` may ask to re-read."""
    return [
        spec.name
        for spec in configured_streams(connection)
        if spec.kind is StreamKind.SNAPSHOT and spec.watch is not None and stream in spec.watch.streams
    ]


def _watched_streams_run(connection: Connection, watch: ChangeWatch) -> bool:
    return bool({s.name for s in configured_streams(connection)} & set(watch.streams))


def _valid_marks(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value)


def _named_since(
    db: Database, connection_id: int, watch: ChangeWatch, seen: list[int] | None
) -> tuple[int, frozenset[str]]:
    """(newest event id now, the lower-cased actors and targets of matching events above the floor)."""
    with db.session(readonly=True) as session:
        newest = int(session.exec(select(func.max(Event.id))).one() or 0)
        if seen is None:
            return newest, frozenset()
        query = select(Event.actor, Event.target).where(
            col(Event.id) > seen[0],
            col(Event.id) <= newest,
            Event.connection_id == connection_id,
            col(Event.stream).in_(list(watch.streams)),
        )
        if watch.words:
            query = query.where(or_(*(func.lower(Event.action).contains(word) for word in watch.words)))
        subjects = {
            value.lower()
            for actor, target in session.exec(query).all()
            for value in (actor, target)
            if isinstance(value, str) and value
        }
    return newest, frozenset(subjects)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
