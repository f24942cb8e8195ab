"""Reading incidents and their timelines: filters, cursor pagination, role-aware excerpts.

A timeline page is read from the stored entries alone (indexed by incident and time; evidence
already collapsed; remediation steps are entries the remediation stage journals). Cursors are
opaque strings encoding the position ``(time, entry id)`` of the last item, so pages are stable
while new entries arrive.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlmodel import Session, col

from core.clock import isoformat, parse_time
from core.db import Database
from core.models.finding import Finding
from core.models.incident import Incident, TimelineEntry
from timeline.entries import EntryKind, hide_excerpt
from timeline.errors import IncidentNotFoundError, TimelineError

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


def _encode(at: datetime, entry_id: int) -> str:
    raw = f"{isoformat(at)}|{entry_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, entry_id = raw.split("|")
        return parse_time(at), int(entry_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TimelineError(
            f"cursor {cursor!r} is not one this server gave out; start again without it"
        ) from exc


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
        if entry.kind == EntryKind.MESSAGE and not include_excerpts:
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


@dataclass(frozen=True)
class IncidentFilter:
    status: Sequence[str] | None = None
    priority: Sequence[str] | None = None
    assignee: str | None = None
    since: datetime | None = None
    include_duplicates: bool = False


def list_incidents(
    db: Database, filters: IncidentFilter | None = None, *, limit: int = 50, after_id: int | None = None
) -> list[Incident]:
    """Newest first; `after_id` continues from the last id of the previous page."""
    filters = filters or IncidentFilter()
    query = select(Incident)
    if filters.status:
        query = query.where(col(Incident.status).in_(list(filters.status)))
    elif not filters.include_duplicates:
        query = query.where(col(Incident.status) != "duplicate")
    if filters.priority:
        query = query.where(col(Incident.priority).in_(list(filters.priority)))
    if filters.assignee:
        query = query.where(col(Incident.assignee) == filters.assignee)
    if filters.since:
        query = query.where(col(Incident.created_at) >= filters.since)
    if after_id is not None:
        query = query.where(col(Incident.id) < after_id)
    query = query.order_by(col(Incident.id).desc()).limit(max(1, min(limit, MAX_PAGE)))
    with db.session(readonly=True) as session:
        return list(session.execute(query).scalars())


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
