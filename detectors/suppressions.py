"""Suppressions as stored rows: create, list and remove them (CLI and API), each change audited.

Matching itself lives in detectors/sigma/suppressions.py; this module is the write path.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core.audit import Actor, AuditAction
from core.audit import record as audit_record
from core.clock import isoformat, utcnow
from core.errors import TenantguardError
from core.models import Suppression
from core.redaction import redact_typed
from detectors.sigma.definitions import RulePack
from detectors.sigma.suppressions import SuppressionError, SuppressionSpec, Suppressor


class SuppressionRequestError(TenantguardError):
    """A suppression cannot be created as asked; the message says which part and why."""


def _check(
    rule_id: str, match: Mapping[str, Any], reason: str, expires_at: datetime | None, pack: RulePack | None
) -> None:
    if not rule_id.strip():
        raise SuppressionRequestError("a suppression needs the id or name of the rule it silences")
    if not reason.strip():
        raise SuppressionRequestError("a suppression needs a reason (who asked, and why it is safe)")
    if expires_at is not None and expires_at <= utcnow():
        raise SuppressionRequestError(f"expiry {expires_at.isoformat()} is in the past")
    if pack is not None and rule_id not in pack.by_id():
        raise SuppressionRequestError(
            f"no rule {rule_id!r} in the loaded pack; use `tenantguard rules list` for rule ids"
        )
    try:
        Suppressor([SuppressionSpec(0, rule_id, dict(match))])
    except SuppressionError as exc:
        raise SuppressionRequestError(str(exc))


def create_suppression(
    session: Session,
    *,
    rule_id: str,
    match: Mapping[str, Any],
    reason: str,
    actor: Actor,
    expires_at: datetime | None = None,
    pack: RulePack | None = None,
) -> Suppression:
    """Store a suppression (validated against the pack when given) and audit it in `session`."""
    _check(rule_id, match, reason, expires_at, pack)
    row = Suppression(
        rule_id=rule_id.strip(),
        match=dict(match),
        reason=redact_typed(reason.strip()),
        created_by=actor.name,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    audit_record(
        session,
        actor=actor,
        action=AuditAction.SUPPRESSION_CREATED,
        object_type="suppression",
        object_id=row.id,
        details={
            "rule_id": row.rule_id,
            "match": row.match,
            "reason": row.reason,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
        before=None,
        after=snapshot(row),
    )
    return row


def snapshot(row: Suppression) -> dict[str, Any]:
    """A suppression as its audit record keeps it."""
    return {
        "id": row.id,
        "rule_id": row.rule_id,
        "match": row.match,
        "reason": row.reason,
        "created_by": row.created_by,
        "created_at": isoformat(row.created_at) if row.created_at else None,
        "expires_at": isoformat(row.expires_at) if row.expires_at else None,
    }


def list_suppressions(session: Session, *, include_expired: bool = False) -> list[Suppression]:
    rows = list(session.exec(select(Suppression).order_by(col(Suppression.id))).all())
    if include_expired:
        return rows
    now = utcnow()
    return [r for r in rows if r.expires_at is None or r.expires_at > now]


def remove_suppression(session: Session, suppression_id: int, *, actor: Actor) -> Suppression:
    row = session.get(Suppression, suppression_id)
    if row is None:
        raise SuppressionRequestError(
            f"no suppression with id {suppression_id}; see `tenantguard suppressions list --all`"
        )
    audit_record(
        session,
        actor=actor,
        action=AuditAction.SUPPRESSION_DELETED,
        object_type="suppression",
        object_id=suppression_id,
        details={"rule_id": row.rule_id, "match": row.match, "suppressed_count": row.suppressed_count},
        before=snapshot(row),
        after=None,
    )
    session.delete(row)
    return row
