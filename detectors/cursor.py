"""Reading rows "not yet processed" by id without losing the ones concurrent writers commit late.

Ids come from a sequence that every writer draws from at insert time, but writers commit in
their own order: on PostgreSQL, with several collector workers, id 41 can become visible after
id 42 was read. A plain `id > cursor` reader would skip 41 forever. So the cursor remembers the
ids below it it has not seen (the *gaps*, as ranges) and reads them again on every pass until
they turn up or `gap_timeout` passes: a rolled-back insert or an `ON CONFLICT DO NOTHING` also
burns a sequence value that will never appear, and those must not be re-read for ever. The
timeout is the longest a writer's transaction may stay open (collectors commit per page, in
seconds); anything committed later than that is logged as a late arrival, not processed.

The gap state lives in the cursor row (`AnalysisCursor.gaps`) and moves in the caller's
transaction together with whatever was derived from the rows, so a crash repeats or loses
nothing. Rows are returned in id order; gap rows first (they are the oldest).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, not_, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from core.clock import utcnow
from core.models.anomaly import AnalysisCursor

__all__ = ["GapCursor", "DEFAULT_GAP_TIMEOUT", "MAX_GAP_RANGES"]

log = logging.getLogger(__name__)

DEFAULT_GAP_TIMEOUT = 600.0
MAX_GAP_RANGES = 500


@dataclass(frozen=True)
class _Gap:
    low: int
    high: int
    since: float

    def as_json(self) -> list[float]:
        return [self.low, self.high, self.since]


def _gaps(cursor: AnalysisCursor) -> list[_Gap]:
    return [_Gap(int(g[0]), int(g[1]), float(g[2])) for g in (cursor.gaps or [])]


def _missing(ids: Sequence[int], after: int, since: float) -> list[_Gap]:
    """Ranges of ids in (after, max(ids)] absent from the sorted `ids`."""
    out: list[_Gap] = []
    previous = after
    for value in ids:
        if value > previous + 1:
            out.append(_Gap(previous + 1, value - 1, since))
        previous = max(previous, value)
    return out


def _remove_seen(gaps: list[_Gap], seen: Sequence[int]) -> list[_Gap]:
    """Split each gap range around the ids that have now turned up."""
    if not seen:
        return gaps
    ordered = sorted(seen)
    out: list[_Gap] = []
    for gap in gaps:
        low = gap.low
        for value in ordered:
            if value < low or value > gap.high:
                continue
            if value > low:
                out.append(_Gap(low, value - 1, gap.since))
            low = value + 1
        if low <= gap.high:
            out.append(_Gap(low, gap.high, gap.since))
    return out


class GapCursor:
    """A named id cursor over one table (`model`, with an integer `id`) that re-reads its gaps."""

    def __init__(
        self,
        name: str,
        model: Any,
        *,
        where: Any = None,
        skip: Any = None,
        gap_timeout: float = DEFAULT_GAP_TIMEOUT,
    ) -> None:
        """`where`: a filter on the rows this reader cares about (others are skipped, not gaps).

        `skip`: the rows that are certainly not this reader's (default: those failing `where`).
        Narrower when `where` may grow (a partition's connections: an event of a connection
        created after the filter was made stays a gap, read again with the next filter)."""
        self.name = name
        self.model = model
        self.where = where
        self.skip = skip
        self.gap_timeout = gap_timeout

    def row(self, session: Session, *, lock: bool = False) -> AnalysisCursor:
        """The cursor's row (made at position 0 if missing); with `lock`, locked until the
        transaction ends (PostgreSQL), so a second reader waits and then sees where it stands."""
        cursor = session.get(AnalysisCursor, self.name, with_for_update=lock or None)
        if cursor is None:
            cursor = AnalysisCursor(name=self.name, position=0, gaps=[])
            session.add(cursor)
        return cursor

    def read(self, session: Session, limit: int, *, columns: Sequence[Any] | None = None) -> list[Any]:
        """Rows that appeared in a gap since the last pass, then up to `limit` rows after the cursor.

        With `columns` (which must include `id`), plain read-only rows of those columns rather
        than ORM objects: no identity map, no change tracking, for readers that only read."""
        where = self.where
        cursor = self.row(session)
        ident = col(self.model.id)

        def rows(query: Any) -> list[Any]:
            if columns is not None:
                return list(session.execute(query).all())
            return list(session.exec(query).all())

        def base() -> Any:
            return sa_select(*columns) if columns is not None else select(self.model)

        late: list[Any] = []
        gaps = _gaps(cursor)
        if gaps:
            query = base().where(or_(*(and_(ident >= g.low, ident <= g.high) for g in gaps)))
            if where is not None:
                query = query.where(where)
            late = rows(query.order_by(ident))
        query = base().where(ident > cursor.position)
        if where is not None:
            query = query.where(where)
        fresh = rows(query.order_by(ident).limit(limit))
        return late + fresh

    def pending(self, session: Session) -> bool:
        """Whether a `read` would return anything (without reading it)."""
        cursor = session.get(AnalysisCursor, self.name)
        ident = col(self.model.id)
        position = cursor.position if cursor is not None else 0
        query = select(ident).where(ident > position)
        if self.where is not None:
            query = query.where(self.where)
        if session.exec(query.limit(1)).first() is not None:
            return True
        gaps = _gaps(cursor) if cursor is not None else []
        if not gaps:
            return False
        query = select(ident).where(or_(*(and_(ident >= g.low, ident <= g.high) for g in gaps)))
        if self.where is not None:
            query = query.where(self.where)
        return session.exec(query.limit(1)).first() is not None

    def advance(self, session: Session, rows: Sequence[Any]) -> None:
        """Record `rows` (as returned by `read`) as processed; ids skipped over become gaps."""
        cursor = self.row(session)
        if not rows and not cursor.gaps:
            return
        now = utcnow().timestamp()
        ids = {int(r.id) for r in rows if r.id is not None}
        position = cursor.position
        newest = max([position, *ids])
        gaps = _gaps(cursor)
        ids |= self._filtered_out(session, position, newest, gaps)
        seen = sorted(ids)
        gaps = _remove_seen(gaps, [i for i in seen if i <= position])
        fresh = [i for i in seen if position < i <= newest]
        if fresh:
            gaps.extend(_missing(fresh, position, now))
            position = newest
        gaps = self._expire(gaps, now)
        cursor.position = position
        cursor.gaps = [g.as_json() for g in gaps]
        cursor.updated_at = utcnow()
        session.add(cursor)

    def _filtered_out(self, session: Session, position: int, newest: int, gaps: list[_Gap]) -> set[int]:
        """Ids in the range just read (or in a gap) that exist but fail `where` (or match `skip`):
        not gaps.

        Only rows *failing* the filter are taken: a matching row that committed after `read`
        must stay a gap to be read next time."""
        if self.where is None:
            return set()
        skipped = self.skip if self.skip is not None else not_(self.where)
        ident = col(self.model.id)
        ranges = [(position + 1, newest)] if newest > position else []
        ranges += [(g.low, g.high) for g in gaps]
        if not ranges:
            return set()
        query = select(ident).where(or_(*(and_(ident >= low, ident <= high) for low, high in ranges)))
        return {int(i) for i in session.exec(query.where(skipped)).all()}

    def _expire(self, gaps: list[_Gap], now: float) -> list[_Gap]:
        kept = [g for g in gaps if now - g.since < self.gap_timeout]
        if len(kept) < len(gaps):
            log.info("cursor %s: %d id range(s) never committed, given up", self.name, len(gaps) - len(kept))
        if len(kept) > MAX_GAP_RANGES:  # bound the re-read query: drop the oldest ranges
            log.warning(
                "cursor %s: more than %d open id ranges, dropping the oldest", self.name, MAX_GAP_RANGES
            )
            kept = sorted(kept, key=lambda g: g.since)[-MAX_GAP_RANGES:]
        return sorted(kept, key=lambda g: g.low)
