"""Risk acceptance for failing checks: request, approve (a second person), expire; each change audited.

Every entry point takes the caller's session and actor and writes its one audit record in that
transaction. An exception is in force at a time `t` when it was approved at or before `t`, expires
after `t` and was not expired early before `t` (`in_force`), so reports as of a past date show the
exceptions that applied then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, or_, select

from compliance.errors import ExceptionConflictError, ExceptionError, ExceptionNotFoundError
from core.audit import Actor, AuditAction, record
from core.clock import as_utc, isoformat, utcnow
from core.models import ComplianceException, Connection

MAX_DURATION = timedelta(days=366)
EXPIRY_WARNING = timedelta(days=7)
ACTOR = Actor.system("compliance")


@dataclass(frozen=True)
class ExceptionRequest:
    check_id: str
    owner: str
    reason: str
    expires_at: datetime
    connection_id: int | None = None


def snapshot(row: ComplianceException) -> dict[str, Any]:
    """The row as audit records and API answers show it."""
    return {
        "id": row.id,
        "check_id": row.check_id,
        "connection_id": row.connection_id,
        "owner": row.owner,
        "reason": row.reason,
        "expires_at": isoformat(row.expires_at),
        "requested_by": row.requested_by,
        "requested_at": isoformat(row.requested_at),
        "approved_by": row.approved_by,
        "approved_at": isoformat(row.approved_at) if row.approved_at else None,
        "expired_by": row.expired_by,
        "expired_at": isoformat(row.expired_at) if row.expired_at else None,
        "expiry_reason": row.expiry_reason,
    }


def state_of(row: ComplianceException, at: datetime | None = None) -> str:
    """pending | active | expired | withdrawn (expired early) at `at` (default now)."""
    at = as_utc(at) if at else utcnow()
    if row.expired_at is not None and as_utc(row.expired_at) <= at:
        return "withdrawn" if as_utc(row.expired_at) < as_utc(row.expires_at) else "expired"
    if as_utc(row.expires_at) <= at:
        return "expired"
    if row.approved_at is None or as_utc(row.approved_at) > at:
        return "pending"
    return "active"


def in_force(row: ComplianceException, at: datetime) -> bool:
    return state_of(row, at) == "active"


def _known_checks() -> set[str]:
    from detectors.posture.service import shipped_checks

    return {c.id for c in shipped_checks()}


def request_exception(
    session: Session, request: ExceptionRequest, *, actor: Actor, now: datetime | None = None
) -> ComplianceException:
    """A pending exception: it counts in reports only once someone else approves it."""
    now = now or utcnow()
    expires = as_utc(request.expires_at)
    if request.check_id not in _known_checks():
        raise ExceptionError(f"no posture check {request.check_id!r}: see `tenantguard posture checks`")
    if not request.owner.strip():
        raise ExceptionError("an exception needs an owner (the person accountable for the risk)")
    if len(request.reason.strip()) < 10:
        raise ExceptionError(
            "an exception needs a reason of at least 10 characters (why the risk is accepted)"
        )
    if expires <= now:
        raise ExceptionError(f"expires_at {isoformat(expires)} is not in the future")
    if expires - now > MAX_DURATION:
        raise ExceptionError(f"expires_at {isoformat(expires)} is more than {MAX_DURATION.days} days away")
    if request.connection_id is not None and session.get(Connection, request.connection_id) is None:
        raise ExceptionError(f"no connection {request.connection_id}")
    row = ComplianceException(
        check_id=request.check_id,
        connection_id=request.connection_id,
        owner=request.owner.strip(),
        reason=request.reason.strip(),
        expires_at=expires,
        requested_by=actor.name,
        requested_at=now,
    )
    session.add(row)
    session.flush()
    record(
        session,
        actor=actor,
        action=AuditAction.COMPLIANCE_EXCEPTION_REQUESTED,
        object_type="compliance_exception",
        object_id=row.id or 0,
        before=None,
        after=snapshot(row),
    )
    return row


def _get(session: Session, exception_id: int) -> ComplianceException:
    row = session.get(ComplianceException, exception_id, with_for_update=True)
    if row is None:
        raise ExceptionNotFoundError(f"no compliance exception {exception_id}")
    return row


def approve_exception(
    session: Session, exception_id: int, *, actor: Actor, now: datetime | None = None
) -> ComplianceException:
    """Four eyes: the requester cannot approve their own exception."""
    now = now or utcnow()
    row = _get(session, exception_id)
    state = state_of(row, now)
    if state != "pending":
        raise ExceptionError(
            f"compliance exception {exception_id} is {state}; only a pending one can be approved"
        )
    if actor.name == row.requested_by:
        raise ExceptionConflictError(
            f"{actor.name} requested compliance exception {exception_id} and cannot approve it too (four eyes)"
        )
    before = snapshot(row)
    row.approved_by, row.approved_at = actor.name, now
    session.add(row)
    session.flush()
    record(
        session,
        actor=actor,
        action=AuditAction.COMPLIANCE_EXCEPTION_APPROVED,
        object_type="compliance_exception",
        object_id=exception_id,
        before=before,
        after=snapshot(row),
    )
    return row


def expire_exception(
    session: Session, exception_id: int, *, actor: Actor, reason: str, now: datetime | None = None
) -> ComplianceException:
    """End an exception now (withdrawn before its expiry, or a pending one refused)."""
    now = now or utcnow()
    row = _get(session, exception_id)
    state = state_of(row, now)
    if state in ("expired", "withdrawn"):
        raise ExceptionConflictError(f"compliance exception {exception_id} is already {state}")
    if not reason.strip():
        raise ExceptionError("say why the exception ends (reason)")
    before = snapshot(row)
    row.expired_by, row.expired_at, row.expiry_reason = actor.name, now, reason.strip()
    session.add(row)
    session.flush()
    record(
        session,
        actor=actor,
        action=AuditAction.COMPLIANCE_EXCEPTION_EXPIRED,
        object_type="compliance_exception",
        object_id=exception_id,
        before=before,
        after=snapshot(row),
    )
    return row


def exceptions_for(
    session: Session, *, check_ids: set[str] | None = None, connection_id: int | None = None
) -> list[ComplianceException]:
    query = select(ComplianceException)
    if check_ids is not None:
        query = query.where(col(ComplianceException.check_id).in_(sorted(check_ids)))
    if connection_id is not None:
        query = query.where(
            or_(
                col(ComplianceException.connection_id) == connection_id,
                col(ComplianceException.connection_id).is_(None),
            )
        )
    return list(session.exec(query.order_by(col(ComplianceException.id))).all())


def announce_expiring(session: Session, *, now: datetime | None = None) -> list[ComplianceException]:
    """Expiring loudly: exceptions in force that end within a week, or ended since the last pass, are
    announced once each (one audit record per exception; the caller logs or notifies)."""
    now = now or utcnow()
    rows = session.exec(
        select(ComplianceException).where(
            col(ComplianceException.approved_at).is_not(None),
            col(ComplianceException.expired_at).is_(None),
            col(ComplianceException.expiry_announced_at).is_(None),
            col(ComplianceException.expires_at) <= now + EXPIRY_WARNING,
        )
    ).all()
    for row in rows:
        before = snapshot(row)
        row.expiry_announced_at = now
        session.add(row)
        record(
            session,
            actor=ACTOR,
            action=AuditAction.COMPLIANCE_EXCEPTION_EXPIRED
            if as_utc(row.expires_at) <= now
            else AuditAction.COMPLIANCE_EXCEPTION_EXPIRING,
            object_type="compliance_exception",
            object_id=row.id or 0,
            before=before,
            after={**snapshot(row), "state": state_of(row, now)},
        )
    return list(rows)
