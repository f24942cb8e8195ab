"""Reading findings: filters compose into one WHERE clause; pages are keyset scans (see api.pagination)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlmodel import Session, col, select

from api.errors import NotFound
from api.findings.schemas import FindingFilters, FindingSort, FindingSummary
from core.clock import as_utc
from core.entities import EntityKind, entity_list_contains, scanned
from core.models import Finding, Severity
from core.pagination import after_key, decode_cursor, encode_cursor

_SEVERITY_ORDER = sorted(Severity, key=lambda s: s.rank)
# Lists read only what a summary shows: no ORM objects, no evidence or context JSON to decode.
SUMMARY_COLUMNS = [Finding.__table__.c[name] for name in FindingSummary.model_fields]  # type: ignore[attr-defined]

# sort -> (key columns, their Python types, descending)
_KEYSETS: dict[FindingSort, tuple[tuple[Any, ...], tuple[type, ...], bool]] = {
    FindingSort.NEWEST: ((col(Finding.first_seen), col(Finding.id)), (datetime, int), True),
    FindingSort.OLDEST: ((col(Finding.first_seen), col(Finding.id)), (datetime, int), False),
    FindingSort.RECENTLY_SEEN: ((col(Finding.last_seen), col(Finding.id)), (datetime, int), True),
    FindingSort.LEAST_RECENTLY_SEEN: ((col(Finding.last_seen), col(Finding.id)), (datetime, int), False),
    FindingSort.ID_DESC: ((col(Finding.id),), (int,), True),
    FindingSort.ID_ASC: ((col(Finding.id),), (int,), False),
}


def _conditions(filters: FindingFilters, dialect: str) -> list[Any]:
    where: list[Any] = []
    if filters.provider:
        where.append(col(Finding.provider).in_([p.value for p in filters.provider]))
    if filters.rule_id:
        where.append(col(Finding.rule_id).in_(filters.rule_id))
    if filters.kind:
        where.append(col(Finding.kind).in_([k.value for k in filters.kind]))
    if filters.severity:
        where.append(col(Finding.severity).in_([s.value for s in filters.severity]))
    if filters.status:
        where.append(col(Finding.status).in_([s.value for s in filters.status]))
    if filters.incident_id is not None:
        where.append(col(Finding.incident_id) == filters.incident_id)
    if filters.person:
        where.append(
            entity_list_contains(
                col(Finding.entities), EntityKind.PEOPLE, filters.person.lower(), dialect=dialect
            )
        )
    if filters.since is not None:
        where.append(col(Finding.last_seen) >= as_utc(filters.since))
    if filters.until is not None:
        where.append(col(Finding.first_seen) < as_utc(filters.until))
    return where


def list_findings(
    session: Session, filters: FindingFilters, *, sort: FindingSort, limit: int, cursor: str | None
) -> tuple[list[Row[Any]], str | None]:
    """One page of findings in `sort` order, and the cursor of the next page (None at the end)."""
    dialect = session.get_bind().dialect.name
    where = _conditions(filters, dialect)
    if sort in (FindingSort.MOST_SEVERE, FindingSort.LEAST_SEVERE):
        return _by_severity(session, where, sort=sort, limit=limit, cursor=cursor)
    columns, types, descending = _KEYSETS[sort]
    query = select(*SUMMARY_COLUMNS).where(*where)
    if cursor is not None:
        query = query.where(
            after_key(list(columns), decode_cursor(cursor, sort.value, types), descending=descending)
        )
    # A person matches few rows: find them, then sort (see core.entities.scanned).
    keys = [scanned(c) for c in columns] if filters.person else columns
    order = [c.desc() if descending else c.asc() for c in keys]
    rows = list(session.exec(query.order_by(*order).limit(limit + 1)).all())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, encode_cursor(sort.value, [getattr(last, c.key) for c in columns])


def _by_severity(
    session: Session, where: list[Any], *, sort: FindingSort, limit: int, cursor: str | None
) -> tuple[list[Row[Any]], str | None]:
    """Most (or least) severe first, newest first inside a severity.

    Severity is stored as text, so its order is not the column's order: walk the severities one
    by one, each an indexed (severity, first_seen) range scan, until the page is full.
    """
    descending = sort == FindingSort.MOST_SEVERE
    order = list(reversed(_SEVERITY_ORDER)) if descending else list(_SEVERITY_ORDER)
    key: list[Any] | None = None
    if cursor is not None:
        key = decode_cursor(cursor, sort.value, (str, datetime, int))
        if key[0] not in order:
            key = None
            order = []
        else:
            order = order[order.index(Severity(key[0])) :]
    keys = (col(Finding.first_seen), col(Finding.id))
    rows: list[Row[Any]] = []
    for severity in order:
        query = select(*SUMMARY_COLUMNS).where(*where, col(Finding.severity) == severity.value)
        if key is not None and key[0] == severity.value:
            query = query.where(after_key(list(keys), key[1:], descending=descending))
        ordering = [c.desc() if descending else c.asc() for c in keys]
        rows.extend(session.exec(query.order_by(*ordering).limit(limit + 1 - len(rows))).all())
        if len(rows) > limit:
            break
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, encode_cursor(sort.value, [last.severity, last.first_seen, last.id])


def get_finding(session: Session, finding_id: int) -> Finding:
    finding = session.get(Finding, finding_id)
    if finding is None:
        raise NotFound(f"finding {finding_id} does not exist")
    return finding
