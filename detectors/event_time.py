"""Reading stored events in event time, whatever order they were stored in.

Collectors store a backlog stream by stream and page by page (a stream's pages may come newest
first), so ids say nothing about event time. A reader here has two cursors: an id reader (a
`GapCursor`: which events have been committed and seen) and an event-time cursor (microseconds
since the epoch: every seen event before it was processed). Each pass first moves the id reader
over everything committed since the last pass (ids and times only); then it hands over

- the *late arrivals*: events seen now whose time the event-time cursor had already passed
  (stored after it passed them: a lagging stream's page), in event time, and
- the *window*: seen events from the event-time cursor on, in event time, at most `limit`, cut
  between two instants; one instant's events ordered by provider identity (`ORDER`).

So a backlog stored at once is processed in event time however it was stored and however the
passes are cut, and whether an event counts as late depends only on when it was stored relative
to the cursor passing its time. The caller moves both cursors in its own transaction
(`EventTimePass.commit`) together with what it derived, so a crash repeats or loses nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, not_, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from core.clock import as_utc, utcnow
from core.models import Event
from core.models.anomaly import AnalysisCursor
from detectors.cursor import DEFAULT_GAP_TIMEOUT, GapCursor

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# One instant's events by their provider identity, never by id (the order they were stored in).
ORDER = [
    col(Event.occurred_at),
    col(Event.provider),
    col(Event.stream),
    col(Event.provider_event_id),
    col(Event.connection_id),
]
_ID_COLUMNS = [col(Event.id), col(Event.occurred_at)]


def micros(at: datetime) -> int:
    return (as_utc(at) - EPOCH) // timedelta(microseconds=1)


def at_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


@dataclass
class EventTimePass:
    """What one pass hands over: late arrivals then the window (rows of the requested columns)."""

    rows: list[Any] = field(default_factory=list)
    late: int = 0  # how many of `rows` (the first ones) are late arrivals
    position: int = 0  # the event-time cursor once these rows are processed
    pending: bool = False  # more waits: the id reader or the window stopped at `limit`
    _clock: AnalysisCursor | None = None

    def commit(self, session: Session) -> None:
        """Move the event-time cursor past this pass, in the caller's transaction."""
        assert self._clock is not None
        self._clock.position = self.position
        self._clock.updated_at = utcnow()
        session.add(self._clock)


class EventTimeReader:
    """Stored events (of `where`) in event time: an id reader named `name` and an event-time
    cursor named `name` + ".event_time"."""

    def __init__(
        self, name: str, *, where: Any = None, skip: Any = None, gap_timeout: float = DEFAULT_GAP_TIMEOUT
    ) -> None:
        self.ids = GapCursor(name, Event, where=where, skip=skip, gap_timeout=gap_timeout)
        self.clock = GapCursor(f"{name}.event_time", Event)  # only its row is used (no gaps)

    def position(self, session: Session) -> tuple[int, int]:
        """(id reader, event-time cursor): what a process that read up to here has seen."""
        return int(self.ids.row(session).position), int(self.clock.row(session).position)

    def _seen(self, session: Session) -> Any:
        row = self.ids.row(session)
        ident = col(Event.id)
        seen = ident <= row.position
        if self.ids.where is not None:
            seen = and_(self.ids.where, seen)
        gaps = [(int(g[0]), int(g[1])) for g in row.gaps or []]
        if gaps:
            seen = and_(seen, not_(or_(*(and_(ident >= low, ident <= high) for low, high in gaps))))
        return seen

    def _scan(self, session: Session, position: int, limit: int) -> tuple[list[int], bool]:
        """Move the id reader over what was committed since the last pass; the late ids among it
        (at most about `limit`), and whether the reader got to the end."""
        late: list[int] = []
        while True:
            rows = self.ids.read(session, limit, columns=_ID_COLUMNS)
            self.ids.advance(session, rows)
            late.extend(int(row.id) for row in rows if micros(row.occurred_at) < position)
            if len(rows) < limit:
                return late, True
            if len(late) >= limit:
                return late, False

    def read(self, session: Session, limit: int, columns: Sequence[Any]) -> EventTimePass:
        """The next pass (see the module's docstring); `columns` must include id and occurred_at."""
        clock = self.clock.row(session)
        position = int(clock.position)
        late_ids, complete = self._scan(session, position, limit)
        rows = self._by_ids(session, late_ids, columns)
        out = EventTimePass(late=len(rows), pending=not complete, _clock=clock)
        if complete:  # else more late arrivals wait: the window waits until the reader has seen all
            query = sa_select(*columns).where(
                self._seen(session), col(Event.occurred_at) >= at_micros(position)
            )
            window = list(session.execute(query.order_by(*ORDER).limit(limit + 1)).all())
            if len(window) > limit:  # the rest next pass, cut between two instants
                cut = window[limit].occurred_at
                kept = [row for row in window if row.occurred_at < cut]
                if kept:
                    window, position = kept, micros(cut)
                else:  # more events at one instant than a pass holds: that instant whole
                    same = query.where(col(Event.occurred_at) == cut).order_by(*ORDER)
                    window, position = list(session.execute(same).all()), micros(cut) + 1
                out.pending = True
            elif window:
                position = max(position, micros(window[-1].occurred_at) + 1)
            rows.extend(window)
        out.rows = rows
        out.position = position
        return out

    def replay(self, session: Session, position: int, seconds: float, columns: Sequence[Any]) -> list[Any]:
        """The seen events of the `seconds` of event time before `position`, in event time: what a
        process at `position` has processed lately (a restart rebuilds its windows from them)."""
        if position <= 0:
            return []
        end = at_micros(position)
        query = sa_select(*columns).where(
            self._seen(session),
            col(Event.occurred_at) < end,
            col(Event.occurred_at) >= end - timedelta(seconds=seconds),
        )
        return list(session.execute(query.order_by(*ORDER)).all())

    @staticmethod
    def _by_ids(session: Session, ids: list[int], columns: Sequence[Any]) -> list[Any]:
        """Rows of `ids` in event time (`ORDER`)."""
        found: list[Any] = []
        for start in range(0, len(ids), 1000):
            query = sa_select(*columns).where(col(Event.id).in_(ids[start : start + 1000]))
            found.extend(session.execute(query).all())
        found.sort(key=lambda r: (as_utc(r.occurred_at), r.provider, r.stream, r.provider_event_id or ""))
        return found
