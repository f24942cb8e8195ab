"""Event retention: events that occurred more than ``TENANTGUARD_EVENT_RETENTION_DAYS`` ago are
deleted (the pipeline's ``retention`` stage calls :func:`purge_events`). Findings keep their own
evidence excerpts, so deleting the raw events they came from loses no finding."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import col, select

from core.audit import Actor, AuditAction, record
from core.db import Database
from core.models import Event

# Rows deleted per transaction, so one purge never holds a long write lock.
PURGE_BATCH = 5000


def purge_events(db: Database, *, days: int, actor: Actor, now: datetime) -> int:
    """Delete events that occurred before `now - days` (none when `days` is 0); one audit record
    per batch, in the batch's transaction. Returns how many were deleted."""
    if days <= 0:
        return 0
    cutoff = now - timedelta(days=days)
    total = 0
    while True:
        with db.session() as session:
            ids = list(
                session.exec(
                    select(Event.id)
                    .where(col(Event.occurred_at) < cutoff)
                    .order_by(col(Event.id))
                    .limit(PURGE_BATCH)
                ).all()
            )
            if not ids:
                return total
            oldest = session.exec(select(func.min(Event.occurred_at)).where(col(Event.id).in_(ids))).one()
            session.exec(delete(Event).where(col(Event.id).in_(ids)))
            record(
                session,
                actor=actor,
                action=AuditAction.EVENTS_PURGED,
                object_type="event",
                object_id=f"{ids[0]}-{ids[-1]}",
                details={"deleted": len(ids), "occurred_before": cutoff.isoformat(), "oldest": str(oldest)},
            )
            total += len(ids)
