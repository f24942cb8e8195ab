"""Retention: each class of data deleted once it is older than its setting, except what a legal hold covers.

The cycle's ``retention`` stage calls :func:`apply_retention` (at most every
``TENANTGUARD_RETENTION_INTERVAL``). Classes and their age:

- raw events (``TENANTGUARD_EVENT_RETENTION_DAYS``): when they occurred — findings keep their own
  evidence excerpts, so deleting the events they came from loses no finding;
- messages (``TENANTGUARD_RETENTION_MESSAGES``): when they were sent;
- findings (``TENANTGUARD_RETENTION_FINDINGS``): when last seen, and only once no incident holds them;
- incidents (``TENANTGUARD_RETENTION_INCIDENTS``): ended ones (resolved, closed, false positive,
  duplicate), from when they ended,
  with their timeline, remediation plan, approvals, escalation and pages (their findings are set
  free and age as findings);
- audit (``TENANTGUARD_RETENTION_AUDIT``): the oldest records, as a verifiable truncation
  (core.audit.truncate_chain: a checkpoint and its ``audit.truncated`` record signed with the
  installation's key, never a gap), and
  never at or past the first record about something on hold (or about a hold in force).

Deletion runs in batches, each in its own transaction with its one audit record (the tombstone:
class, how many, which ids, the cutoff, how many were kept for a hold), so a killed pass loses
nothing and the next pass carries on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Table, and_, delete, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from compliance.holds import HeldScope, held_scope
from core.audit import Actor, AuditAction, record, truncate_chain
from core.audit_keys import load_signing_key
from core.clock import utcnow
from core.db import Database
from core.models import (
    AuditRecord,
    Event,
    Finding,
    Incident,
    IncidentStatus,
    Message,
)
from core.settings import Settings

# Rows deleted per transaction, so one pass never holds a long write lock.
PURGE_BATCH = 5000
INCIDENT_BATCH = 200
ENDED = (
    IncidentStatus.RESOLVED,
    IncidentStatus.CLOSED,
    IncidentStatus.FALSE_POSITIVE,
    IncidentStatus.DUPLICATE,
)


class DataClass(StrEnum):
    EVENTS = "events"
    MESSAGES = "messages"
    FINDINGS = "findings"
    INCIDENTS = "incidents"
    AUDIT = "audit"


@dataclass
class RetentionReport:
    deleted: dict[str, int] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)  # due, but kept for a legal hold

    def add(self, bucket: dict[str, int], name: DataClass, value: int) -> None:
        if value:
            bucket[name.value] = bucket.get(name.value, 0) + value

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


def periods(settings: Settings) -> dict[DataClass, timedelta]:
    """How long each class is kept (zero: for ever)."""
    return {
        DataClass.EVENTS: timedelta(days=settings.event_retention_days),
        DataClass.MESSAGES: settings.retention.messages,
        DataClass.FINDINGS: settings.retention.findings,
        DataClass.INCIDENTS: settings.retention.incidents,
        DataClass.AUDIT: settings.retention.audit,
    }


def apply_retention(
    db: Database, settings: Settings, *, actor: Actor, now: datetime | None = None
) -> RetentionReport:
    """One pass over every class whose period is set: delete what is due, keep what is held."""
    now = now or utcnow()
    report = RetentionReport()
    kept = {name: period for name, period in periods(settings).items() if period > timedelta(0)}
    if not kept:
        return report
    with db.session(readonly=True) as session:
        scope = held_scope(session)
    # Incidents first: their findings, once set free, are then judged as findings in the same pass.
    if DataClass.INCIDENTS in kept:
        _purge_incidents(db, now - kept[DataClass.INCIDENTS], scope, actor, report)
    if DataClass.FINDINGS in kept:
        _purge_findings(db, now - kept[DataClass.FINDINGS], scope, actor, report)
    if DataClass.MESSAGES in kept:
        _purge_messages(db, now - kept[DataClass.MESSAGES], scope, actor, report)
    if DataClass.EVENTS in kept:
        _purge_events(db, now - kept[DataClass.EVENTS], scope, actor, report)
    if DataClass.AUDIT in kept:
        key = load_signing_key(settings.signing_key_path)
        _truncate_audit(db, now - kept[DataClass.AUDIT], scope, actor, report, key)
    return report


def _tombstone(
    session: Session, actor: Actor, name: DataClass, ids: list[int], cutoff: datetime, held: int, **extra: Any
) -> None:
    details: dict[str, Any] = {
        "class": name.value,
        "deleted": len(ids),
        "before": cutoff.isoformat(),
        "held": held,
    }
    details["ids"] = ids if len(ids) <= 500 else {"first": ids[0], "last": ids[-1]}
    record(
        session,
        actor=actor,
        action=AuditAction.EVENTS_PURGED if name is DataClass.EVENTS else AuditAction.DATA_PURGED,
        object_type=name.value.rstrip("s"),
        object_id=f"{ids[0]}-{ids[-1]}",
        details={**details, **extra},
    )


def _purge_events(
    db: Database, cutoff: datetime, scope: HeldScope, actor: Actor, report: RetentionReport
) -> None:
    after = 0
    while True:
        with db.session() as session:
            rows = session.exec(
                select(Event.id, Event.actor, Event.target)
                .where(col(Event.occurred_at) < cutoff, col(Event.id) > after)
                .order_by(col(Event.id))
                .limit(PURGE_BATCH)
            ).all()
            if not rows:
                return
            after = int(rows[-1][0] or 0)
            ids = [int(i) for i, a, t in rows if i is not None and not (scope and scope.holds_event(i, a, t))]
            held = len(rows) - len(ids)
            report.add(report.held, DataClass.EVENTS, held)
            if not ids:
                continue
            oldest = session.exec(select(func.min(Event.occurred_at)).where(col(Event.id).in_(ids))).one()
            session.exec(delete(Event).where(col(Event.id).in_(ids)))
            _tombstone(session, actor, DataClass.EVENTS, ids, cutoff, held, oldest=str(oldest))
            report.add(report.deleted, DataClass.EVENTS, len(ids))


def _purge_messages(
    db: Database, cutoff: datetime, scope: HeldScope, actor: Actor, report: RetentionReport
) -> None:
    after = 0
    while True:
        with db.session() as session:
            rows = session.exec(
                select(Message.id, Message.author)
                .where(col(Message.sent_at) < cutoff, col(Message.id) > after)
                .order_by(col(Message.id))
                .limit(PURGE_BATCH)
            ).all()
            if not rows:
                return
            after = int(rows[-1][0] or 0)
            ids = [int(i) for i, a in rows if i is not None and not (scope and scope.holds_message(i, a))]
            held = len(rows) - len(ids)
            report.add(report.held, DataClass.MESSAGES, held)
            if not ids:
                continue
            session.exec(delete(Message).where(col(Message.id).in_(ids)))
            _tombstone(session, actor, DataClass.MESSAGES, ids, cutoff, held)
            report.add(report.deleted, DataClass.MESSAGES, len(ids))


def _purge_findings(
    db: Database, cutoff: datetime, scope: HeldScope, actor: Actor, report: RetentionReport
) -> None:
    after = 0
    while True:
        with db.session() as session:
            rows = session.exec(
                select(Finding.id)
                .where(
                    col(Finding.last_seen) < cutoff,
                    col(Finding.incident_id).is_(None),
                    col(Finding.id) > after,
                )
                .order_by(col(Finding.id))
                .limit(PURGE_BATCH)
            ).all()
            if not rows:
                return
            after = int(rows[-1] or 0)
            ids = [int(i) for i in rows if i is not None and i not in scope.finding_ids]
            held = len(rows) - len(ids)
            report.add(report.held, DataClass.FINDINGS, held)
            if not ids:
                continue
            session.exec(delete(Finding).where(col(Finding.id).in_(ids)))
            _tombstone(session, actor, DataClass.FINDINGS, ids, cutoff, held)
            report.add(report.deleted, DataClass.FINDINGS, len(ids))


# Nullable links to an incident that still belong to it (deleted with it, not set free).
OWNED_BY_INCIDENT = frozenset({"remediationaction"})


def delete_incidents(session: Session, ids: list[int]) -> None:
    """Delete incidents with everything that exists only for them — every row whose required link
    leads to one (timeline, escalation and its pages, response records, ...) and its remediation
    steps with their approvals, found from the schema's foreign keys so a new table is covered too;
    rows that merely point at one (findings, drills, merged or recurring incidents) are set free."""
    _delete_rows(session, Incident.__table__, ids)  # type: ignore[attr-defined]


def _delete_rows(session: Session, table: Table, ids: list[Any]) -> None:
    for child in SQLModel.metadata.sorted_tables:
        for fk in child.foreign_keys:
            if fk.column.table is not table:
                continue
            column = fk.parent
            if child is table or (column.nullable and child.name not in OWNED_BY_INCIDENT):
                session.execute(child.update().where(column.in_(ids)).values({column.name: None}))
                continue
            key = next(iter(child.primary_key.columns))
            child_ids = list(session.execute(sa_select(key).where(column.in_(ids))).scalars())
            if child_ids:
                _delete_rows(session, child, child_ids)
    key = next(iter(table.primary_key.columns))
    session.execute(table.delete().where(key.in_(ids)))


def _purge_incidents(
    db: Database, cutoff: datetime, scope: HeldScope, actor: Actor, report: RetentionReport
) -> None:
    ended = func.coalesce(Incident.closed_at, Incident.resolved_at, Incident.updated_at)
    after = 0
    while True:
        with db.session() as session:
            rows = session.exec(
                select(Incident.id)
                .where(col(Incident.status).in_(ENDED), ended < cutoff, col(Incident.id) > after)
                .order_by(col(Incident.id))
                .limit(INCIDENT_BATCH)
            ).all()
            if not rows:
                return
            after = int(rows[-1] or 0)
            ids = [int(i) for i in rows if i is not None and i not in scope.incident_ids]
            held = len(rows) - len(ids)
            report.add(report.held, DataClass.INCIDENTS, held)
            if not ids:
                continue
            delete_incidents(session, ids)
            _tombstone(session, actor, DataClass.INCIDENTS, ids, cutoff, held)
            report.add(report.deleted, DataClass.INCIDENTS, len(ids))


def _first_held_audit_seq(session: Session, scope: HeldScope, up_to: int) -> int | None:
    """The lowest seq at or below `up_to` of a record about something on hold, or about a hold in
    force itself (None: none is)."""
    if not scope:
        return None
    conditions = [
        and_(
            col(AuditRecord.object_type) == "legal_hold",
            col(AuditRecord.object_id).in_([str(h.id) for h in scope.holds]),
        )
    ]
    if scope.incident_ids:
        conditions.append(
            and_(
                col(AuditRecord.object_type) == "incident",
                col(AuditRecord.object_id).in_([str(i) for i in sorted(scope.incident_ids)]),
            )
        )
    if scope.addresses:
        conditions.append(func.lower(AuditRecord.object_id).in_(sorted(scope.addresses)))
        conditions.append(col(AuditRecord.actor).in_(sorted(f"principal:{a}" for a in scope.addresses)))
    first = session.exec(
        select(func.min(AuditRecord.seq)).where(AuditRecord.seq <= up_to, or_(*conditions))
    ).one()
    return int(first) if first is not None else None


def _truncate_audit(
    db: Database,
    cutoff: datetime,
    scope: HeldScope,
    actor: Actor,
    report: RetentionReport,
    key: Ed25519PrivateKey,
) -> None:
    with db.session() as session:
        up_to = session.exec(select(func.max(AuditRecord.seq)).where(AuditRecord.at < cutoff)).one()
        if up_to is None:
            return
        up_to = int(up_to)
        held_from = _first_held_audit_seq(session, scope, up_to)
        if held_from is not None:
            report.add(report.held, DataClass.AUDIT, up_to - held_from + 1)
            up_to = held_from - 1
        if up_to < 1:
            return
        deleted = truncate_chain(
            session,
            up_to_seq=up_to,
            actor=actor,
            details={
                "class": DataClass.AUDIT.value,
                "before": cutoff.isoformat(),
                "held": held_from is not None,
            },
            key=key,
        )
        report.add(report.deleted, DataClass.AUDIT, deleted)
