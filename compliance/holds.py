"""Legal holds: one incident, or one person, kept out of reach of retention and erasure until released.

A hold covers everything linked to what it names (`held_scope`): for an incident, the incident and
its timeline, its findings, the raw events those findings cite, the messages on its timeline and
the audit records about it; for a person, every address they are known by (primary e-mail,
aliases, every account's e-mail and aliases), the events they acted in or were the target of, the
messages they wrote, the findings and incidents that name them. Placing and releasing are audited
in the change's transaction and need the `legal_hold:write` permission (core.permissions).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from compliance.errors import HoldConflictError, HoldError, HoldNotFoundError, NotPermittedError
from core.audit import Actor, AuditAction, record
from core.clock import isoformat, utcnow
from core.models import Account, Finding, Incident, LegalHold, Person, TimelineEntry
from core.permissions import Permission, role_allows, roles_allowed


class HoldKind(StrEnum):
    INCIDENT = "incident"
    PERSON = "person"


def snapshot(row: LegalHold) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "target": row.target,
        "reason": row.reason,
        "placed_by": row.placed_by,
        "placed_at": isoformat(row.placed_at),
        "released_by": row.released_by,
        "released_at": isoformat(row.released_at) if row.released_at else None,
        "release_reason": row.release_reason,
        "active": row.released_at is None,
    }


def require_permission(role: str | None, permission: Permission, actor: Actor) -> None:
    if not role_allows(role, permission):
        raise NotPermittedError(
            f"{actor.name} has role {role or 'none (unknown or disabled principal)'}; {permission.value} needs one "
            f"of {', '.join(roles_allowed(permission))} (`tenantguard principals create NAME --role ROLE`)"
        )


def person_addresses(session: Session, who: str) -> set[str]:
    """Every address `who` (an e-mail or alias) is known by, lower-cased; `who` alone for a stranger."""
    who = who.strip().lower()
    addresses = {who}
    people = [
        p
        for p in session.exec(select(Person)).all()
        if who == p.primary_email.lower() or who in {a.lower() for a in p.aliases}
    ]
    accounts = session.exec(select(Account).where(col(Account.email).is_not(None))).all()
    for account in accounts:
        if (account.email or "").lower() == who or who in {a.lower() for a in account.aliases}:
            if account.person_id is not None:
                person = session.get(Person, account.person_id)
                if person is not None:
                    people.append(person)
            addresses.add((account.email or "").lower())
            addresses.update(a.lower() for a in account.aliases)
    for person in people:
        addresses.add(person.primary_email.lower())
        addresses.update(a.lower() for a in person.aliases)
        for account in session.exec(select(Account).where(Account.person_id == person.id)).all():
            if account.email:
                addresses.add(account.email.lower())
            addresses.update(a.lower() for a in account.aliases)
    addresses.discard("")
    return addresses


def mentions(entities: Mapping[str, list[str]], addresses: set[str]) -> bool:
    """True when any entity value of a finding or incident is one of `addresses`."""
    return any(str(value).lower() in addresses for values in entities.values() for value in values)


@dataclass
class HeldScope:
    """What the active legal holds cover, resolved once per retention or erasure pass."""

    holds: list[LegalHold] = field(default_factory=list)
    incident_ids: set[int] = field(default_factory=set)
    addresses: set[str] = field(default_factory=set)
    finding_ids: set[int] = field(default_factory=set)
    event_ids: set[int] = field(default_factory=set)
    message_ids: set[int] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.holds)

    def holds_event(self, event_id: int, actor: str | None, target: str | None) -> bool:
        return (
            event_id in self.event_ids
            or (actor or "").lower() in self.addresses
            or (target or "").lower() in self.addresses
        )

    def holds_message(self, message_id: int, author: str | None) -> bool:
        return message_id in self.message_ids or (author or "").lower() in self.addresses


def active_holds(session: Session) -> list[LegalHold]:
    return list(
        session.exec(
            select(LegalHold).where(col(LegalHold.released_at).is_(None)).order_by(col(LegalHold.id))
        ).all()
    )


def _keyset(session: Session, key: Any, *columns: Any, batch: int = 5000) -> Iterator[tuple[Any, ...]]:
    """(key, *columns) of every row in key order, read a batch at a time (memory stays flat)."""
    after = 0
    while True:
        rows = session.execute(sa_select(key, *columns).where(key > after).order_by(key).limit(batch)).all()
        if not rows:
            return
        yield from (tuple(row) for row in rows)
        after = rows[-1][0]


def held_scope(session: Session) -> HeldScope:
    """What the holds in force cover, resolved once (retention and erasure call it per pass)."""
    scope = HeldScope(holds=active_holds(session))
    if not scope.holds:
        return scope
    for hold in scope.holds:
        if hold.kind == HoldKind.INCIDENT:
            scope.incident_ids.add(int(hold.target))
        elif hold.kind == HoldKind.PERSON:
            scope.addresses |= person_addresses(session, hold.target)
    if scope.addresses:
        for incident_id, entities in _keyset(session, Incident.id, Incident.entities):
            if mentions(entities or {}, scope.addresses):
                scope.incident_ids.add(incident_id)
    # Without a person hold only the held incidents' findings count (an indexed read); with one,
    # every finding's entities are read, a keyset batch at a time.
    if scope.addresses:
        rows: Iterable[Any] = _keyset(
            session, Finding.id, Finding.incident_id, Finding.entities, Finding.evidence_event_ids
        )
    else:
        rows = session.exec(
            select(Finding.id, Finding.incident_id, Finding.entities, Finding.evidence_event_ids).where(
                col(Finding.incident_id).in_(sorted(scope.incident_ids))
            )
        ).all()
    for finding_id, incident_id, entities, evidence in rows:
        if finding_id is None:
            continue
        if incident_id in scope.incident_ids or (
            scope.addresses and mentions(entities or {}, scope.addresses)
        ):
            scope.finding_ids.add(finding_id)
            scope.event_ids.update(int(e) for e in evidence or [])
    if scope.incident_ids:
        refs = session.exec(
            select(TimelineEntry.ref_type, TimelineEntry.ref_id).where(
                col(TimelineEntry.incident_id).in_(sorted(scope.incident_ids)),
                col(TimelineEntry.ref_type).in_(["message", "event"]),
            )
        ).all()
        for ref_type, ref_id in refs:
            if ref_id and ref_id.isascii() and ref_id.isdigit():
                (scope.message_ids if ref_type == "message" else scope.event_ids).add(int(ref_id))
    return scope


def _validate_target(session: Session, kind: HoldKind, target: str) -> str:
    target = target.strip()
    if kind is HoldKind.INCIDENT:
        # ASCII digits only: str.isdigit() also takes '¹', which int() refuses; 18 digits fit a 64-bit id
        if (
            not (target.isascii() and target.isdigit() and len(target) <= 18)
            or session.get(Incident, int(target)) is None
        ):
            raise HoldNotFoundError(f"no incident {target!r}: see `tenantguard incidents list`")
        return str(int(target))
    if "@" not in target:
        raise HoldError(f"a person hold names an e-mail address, not {target!r}")
    return target.lower()


def place_hold(
    session: Session,
    kind: HoldKind | str,
    target: str,
    *,
    reason: str,
    actor: Actor,
    role: str | None,
    now: datetime | None = None,
) -> LegalHold:
    """Put an incident or a person on legal hold (one audit record, in the caller's transaction)."""
    require_permission(role, Permission.LEGAL_HOLD_WRITE, actor)
    try:
        kind = HoldKind(kind)
    except ValueError:
        raise HoldError(f"hold kind {kind!r} is not one of {', '.join(HoldKind)}") from None
    if len(reason.strip()) < 5:
        raise HoldError("a legal hold needs a reason (the matter or case it is for)")
    target = _validate_target(session, kind, target)
    existing = session.exec(
        select(LegalHold).where(
            LegalHold.kind == kind.value, LegalHold.target == target, col(LegalHold.released_at).is_(None)
        )
    ).first()
    if existing is not None:
        raise HoldConflictError(f"{kind.value} {target} is already on legal hold #{existing.id}")
    row = LegalHold(
        kind=kind.value, target=target, reason=reason.strip(), placed_by=actor.name, placed_at=now or utcnow()
    )
    session.add(row)
    session.flush()
    record(
        session,
        actor=actor,
        action=AuditAction.LEGAL_HOLD_PLACED,
        object_type="legal_hold",
        object_id=row.id or 0,
        before=None,
        after=snapshot(row),
    )
    return row


def release_hold(
    session: Session,
    hold_id: int,
    *,
    reason: str,
    actor: Actor,
    role: str | None,
    now: datetime | None = None,
) -> LegalHold:
    """End a hold: what it covered is subject to retention again from the next pass."""
    require_permission(role, Permission.LEGAL_HOLD_WRITE, actor)
    row = session.get(LegalHold, hold_id, with_for_update=True)
    if row is None:
        raise HoldNotFoundError(f"no legal hold {hold_id}")
    if row.released_at is not None:
        raise HoldConflictError(f"legal hold {hold_id} was already released")
    if not reason.strip():
        raise HoldError("say why the hold is released (reason)")
    before = snapshot(row)
    row.released_by, row.released_at, row.release_reason = actor.name, now or utcnow(), reason.strip()
    session.add(row)
    session.flush()
    record(
        session,
        actor=actor,
        action=AuditAction.LEGAL_HOLD_RELEASED,
        object_type="legal_hold",
        object_id=hold_id,
        before=before,
        after=snapshot(row),
    )
    return row


def list_holds(session: Session, *, active_only: bool = False) -> list[LegalHold]:
    if active_only:
        return active_holds(session)
    return list(session.exec(select(LegalHold).order_by(col(LegalHold.id))).all())
