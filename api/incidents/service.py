"""Reading incidents: filters, keyset pages, and the detail view with the incident's findings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, func
from sqlmodel import Session, col, select

from api.entities import entity_list_contains
from api.errors import NotFound
from api.findings.schemas import FindingSummary
from api.incidents.schemas import IncidentDetail, IncidentFilters, IncidentSort
from api.pagination import after_key, decode_cursor, encode_cursor
from core.clock import as_utc
from core.models import Finding, Incident, Severity

DETAIL_FINDINGS = 200

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


def _conditions(filters: IncidentFilters, dialect: str) -> list[Any]:
    where: list[Any] = []
    if filters.status:
        where.append(col(Incident.status).in_([s.value for s in filters.status]))
    if filters.priority:
        where.append(col(Incident.priority).in_([p.value for p in filters.priority]))
    if filters.severity:
        where.append(col(Incident.severity).in_([s.value for s in filters.severity]))
    if filters.assignee:
        where.append(col(Incident.assignee) == filters.assignee)
    if filters.person:
        where.append(
            entity_list_contains(col(Incident.entities), "people", filters.person.lower(), dialect=dialect)
        )
    if filters.since is not None:
        where.append(col(Incident.last_seen) >= as_utc(filters.since))
    if filters.until is not None:
        where.append(col(Incident.first_seen) < as_utc(filters.until))
    return where


def list_incidents(
    session: Session, filters: IncidentFilters, *, sort: IncidentSort, limit: int, cursor: str | None
) -> tuple[list[Incident], str | None]:
    columns, types, descending = _KEYSETS[sort]
    query = select(Incident).where(*_conditions(filters, session.get_bind().dialect.name))
    if cursor is not None:
        query = query.where(
            after_key(list(columns), decode_cursor(cursor, sort.value, types), descending=descending)
        )
    order = [c.desc() if descending else c.asc() for c in columns]
    rows = list(session.exec(query.order_by(*order).limit(limit + 1)).all())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(sort.value, [getattr(rows[-1], c.key) for c in columns])


def load_incident(session: Session, incident_id: int) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"incident {incident_id} does not exist")
    return incident


def incident_detail(session: Session, incident_id: int) -> IncidentDetail:
    incident = load_incident(session, incident_id)
    rank = case({s.value: s.rank for s in Severity}, value=col(Finding.severity), else_=-1)
    findings = session.exec(
        select(Finding)
        .where(Finding.incident_id == incident_id)
        .order_by(rank.desc(), col(Finding.first_seen).desc(), col(Finding.id).desc())
        .limit(DETAIL_FINDINGS)
    ).all()
    total = session.exec(
        select(func.count()).select_from(Finding).where(Finding.incident_id == incident_id)
    ).one()
    fields = {
        name: getattr(incident, name) for name in IncidentDetail.model_fields if hasattr(incident, name)
    }
    fields.update(findings=[FindingSummary.model_validate(f) for f in findings], findings_total=total)
    return IncidentDetail.model_validate(fields)
