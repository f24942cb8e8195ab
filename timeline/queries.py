"""Reading incidents and their timelines: filters, cursor pagination, role-aware excerpts.

A timeline page is read from the stored entries alone (indexed by incident and time; evidence
already collapsed; remediation steps are entries the remediation stage journals). Cursors are
the one cursor format (:mod:`core.pagination`) holding the position ``(time, entry id)`` of the
last item, so pages are stable while new entries arrive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Row, and_, func, or_, select
from sqlmodel import Session, col

from core.clock import as_utc, isoformat
from core.db import Database
from core.entities import EntityKind, entity_list_contains, scanned
from core.errors import CursorError, IncidentNotFoundError
from core.models.enums import TimelineEntryKind
from core.models.finding import Finding
from core.models.incident import Incident, TimelineEntry
from core.pagination import after_key, decode_cursor, encode_cursor
from timeline.entries import hide_excerpt
from timeline.errors import TimelineError

MAX_PAGE = 1000


@dataclass(frozen=True)
class TimelineItem:
    id: str  # "e<TimelineEntry.id>"
    at: datetime
    kind: str
    source: str
    title: str
    body: dict[str, Any]
    ref_type: str | None
    ref_id: str | None
    count: int
    actor: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": isoformat(self.at),
            "kind": self.kind,
            "source": self.source,
            "title": self.title,
            "body": self.body,
            "ref": {"type": self.ref_type, "id": self.ref_id} if self.ref_type else None,
            "count": self.count,
            "actor": self.actor,
        }


@dataclass(frozen=True)
class TimelinePage:
    incident_id: int
    items: list[TimelineItem]
    next_cursor: str | None
    total: int
    counts: dict[str, int] = field(default_factory=dict)


_TIMELINE_SORT = "timeline"  # the one order of a timeline: (time, entry id)


def _encode(at: datetime, entry_id: int) -> str:
    return encode_cursor(_TIMELINE_SORT, [at, entry_id])


def _decode(cursor: str) -> tuple[datetime, int]:
    try:
        at, entry_id = decode_cursor(cursor, _TIMELINE_SORT, (datetime, int))
    except CursorError as exc:
        raise TimelineError(
            f"cursor {cursor!r} is not one this server gave out; start again without it ({exc})"
        ) from exc
    return at, entry_id


def _position(item: TimelineItem) -> tuple[datetime, int]:
    return item.at, int(item.id[1:])


def _stored_page(
    session: Session,
    incident_id: int,
    after: tuple[datetime, int] | None,
    limit: int,
    kinds: Sequence[str] | None,
    include_excerpts: bool,
) -> list[TimelineItem]:
    query = select(TimelineEntry).where(col(TimelineEntry.incident_id) == incident_id)
    if kinds:
        query = query.where(col(TimelineEntry.kind).in_(list(kinds)))
    if after is not None:
        at, entry_id = after
        query = query.where(
            or_(
                col(TimelineEntry.at) > at,
                and_(col(TimelineEntry.at) == at, col(TimelineEntry.id) > entry_id),
            )
        )
    query = query.order_by(col(TimelineEntry.at), col(TimelineEntry.id)).limit(limit)
    items = []
    for entry in session.execute(query).scalars():
        body = dict(entry.body or {})
        if entry.kind == TimelineEntryKind.MESSAGE and not include_excerpts:
            body = hide_excerpt(body)
        items.append(
            TimelineItem(
                f"e{entry.id}",
                entry.at,
                entry.kind,
                entry.source,
                entry.title,
                body,
                entry.ref_type,
                entry.ref_id,
                entry.count,
                entry.actor,
            )
        )
    return items


def get_timeline(
    db: Database,
    incident_id: int,
    *,
    cursor: str | None = None,
    limit: int = 100,
    kinds: Sequence[str] | None = None,
    include_excerpts: bool = False,
) -> TimelinePage:
    """One page of an incident's timeline in time order; `include_excerpts` only for roles allowed."""
    limit = max(1, min(limit, MAX_PAGE))
    after = _decode(cursor) if cursor else None
    with db.session(readonly=True) as session:
        if session.get(Incident, incident_id) is None:
            raise IncidentNotFoundError(f"incident {incident_id} does not exist")
        # Remediation steps are stored entries too (remediation.journal writes them with the audit
        # record), so the timeline is one ordered table read.
        stored = _stored_page(session, incident_id, after, limit + 1, kinds, include_excerpts)
        page = stored[:limit]
        more = len(stored) > limit
        count_query = select(col(TimelineEntry.kind), func.count()).where(
            col(TimelineEntry.incident_id) == incident_id
        )
        counts: dict[str, int] = {
            row[0]: row[1] for row in session.execute(count_query.group_by(col(TimelineEntry.kind)))
        }
        total = sum(v for k, v in counts.items() if not kinds or k in kinds)
    next_cursor = _encode(*_position(page[-1])) if more and page else None
    return TimelinePage(incident_id, page, next_cursor, total, {str(k): v for k, v in counts.items()})


class IncidentSort(StrEnum):
    NEWEST = "-first_seen"
    OLDEST = "first_seen"
    RECENTLY_CREATED = "-created_at"
    FIRST_CREATED = "created_at"
    MOST_URGENT = "priority"
    LEAST_URGENT = "-priority"
    ID_DESC = "-id"
    ID_ASC = "id"


# sort -> (key columns, their types for the cursor, descending)
_KEYSETS: dict[IncidentSort, tuple[tuple[Any, ...], tuple[type, ...], bool]] = {
    IncidentSort.NEWEST: ((col(Incident.first_seen), col(Incident.id)), (datetime, int), True),
    IncidentSort.OLDEST: ((col(Incident.first_seen), col(Incident.id)), (datetime, int), False),
    IncidentSort.RECENTLY_CREATED: ((col(Incident.created_at), col(Incident.id)), (datetime, int), True),
    IncidentSort.FIRST_CREATED: ((col(Incident.created_at), col(Incident.id)), (datetime, int), False),
    # "P1" < "P2" < ... as text, so the most urgent come first in ascending order.
    IncidentSort.MOST_URGENT: ((col(Incident.priority), col(Incident.id)), (str, int), False),
    IncidentSort.LEAST_URGENT: ((col(Incident.priority), col(Incident.id)), (str, int), True),
    IncidentSort.ID_DESC: ((col(Incident.id),), (int,), True),
    IncidentSort.ID_ASC: ((col(Incident.id),), (int,), False),
}


@dataclass(frozen=True)
class IncidentFilter:
    """Every filter is optional; several values of one filter mean "any of them"."""

    status: Sequence[str] | None = None
    priority: Sequence[str] | None = None
    severity: Sequence[str] | None = None
    assignee: str | None = None
    person: str | None = None  # e-mail of a person among the incident's entities
    since: datetime | None = None  # active at or after (last_seen >= since)
    until: datetime | None = None  # started before (first_seen < until)


def _conditions(filters: IncidentFilter, dialect: str) -> list[Any]:
    where: list[Any] = []
    if filters.status:
        where.append(col(Incident.status).in_([str(s) for s in filters.status]))
    if filters.priority:
        where.append(col(Incident.priority).in_([str(p) for p in filters.priority]))
    if filters.severity:
        where.append(col(Incident.severity).in_([str(s) for s in filters.severity]))
    if filters.assignee:
        where.append(col(Incident.assignee) == filters.assignee)
    if filters.person:
        where.append(
            entity_list_contains(
                col(Incident.entities), EntityKind.PEOPLE, filters.person.lower(), dialect=dialect
            )
        )
    if filters.since is not None:
        where.append(col(Incident.last_seen) >= as_utc(filters.since))
    if filters.until is not None:
        where.append(col(Incident.first_seen) < as_utc(filters.until))
    return where


def list_incidents(
    session: Session,
    filters: IncidentFilter | None = None,
    *,
    sort: IncidentSort = IncidentSort.NEWEST,
    limit: int = 50,
    cursor: str | None = None,
    columns: Sequence[Any] | None = None,
) -> tuple[list[Row[Any]], str | None]:
    """One keyset page of incidents (the API's and the CLI's answer) and the next page's cursor.

    Rows carry `columns` (default: every incident column); the cursor is None on the last page.
    """
    keys, types, descending = _KEYSETS[sort]
    dialect = session.get_bind().dialect.name
    query = select(*(columns or Incident.__table__.c)).where(  # type: ignore[attr-defined]
        *_conditions(filters or IncidentFilter(), dialect)
    )
    if cursor is not None:
        query = query.where(
            after_key(list(keys), decode_cursor(cursor, sort.value, types), descending=descending)
        )
    # A person matches few rows: find them, then sort (see core.entities.scanned).
    ordered = [scanned(c) for c in keys] if filters and filters.person else keys
    limit = max(1, min(limit, MAX_PAGE))
    rows = list(
        session.execute(
            query.order_by(*(c.desc() if descending else c.asc() for c in ordered)).limit(limit + 1)
        )
    )
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(sort.value, [getattr(rows[-1], c.key) for c in keys])


def get_incident(db: Database, incident_id: int) -> tuple[Incident, list[Finding]]:
    with db.session(readonly=True) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise IncidentNotFoundError(f"incident {incident_id} does not exist")
        findings = list(
            session.execute(
                select(Finding)
                .where(col(Finding.incident_id) == incident_id)
                .order_by(col(Finding.first_seen))
            ).scalars()
        )
        return incident, findings
