"""Data-subject requests for one person across tables: export (access) and erasure.

The person is named by any address they are known by; every address of theirs counts
(compliance.holds.person_addresses). What belongs to them:

- `person`, `account` rows; `personbaseline` (their learnt habits);
- `event` rows they acted in or were the target of; `message` rows they wrote;
- `finding` and `incident` rows that name them in their entities; `timelineentry` rows by them.

Audit records about them are not exported here: `tenantguard audit export` is the chain's one export.

Export streams one JSON line per row (`{"table": ..., "row": {...}}`), audited as
``privacy.exported``. Erasure is four eyes: one holder of `privacy:erase` asks
(``privacy.erasure_requested``), a second approves and it runs at once in that transaction
(``privacy.erased`` with the counts): their own rows are deleted (person, accounts, baselines,
events, messages), and where a record is the organisation's (findings, incidents, timeline
entries) their addresses — in entities, titles and descriptions — are replaced by a pseudonym (``erased-subject-<request id>``) and message
excerpts are dropped. A legal hold on the person, or on an incident that names them, blocks it.
Audit records are kept: the chain is the organisation's legal record and rewriting it would
break it (erasure requests name the pseudonym, not the person, once executed).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, func, or_
from sqlmodel import Session, SQLModel, col, select

from compliance.errors import PrivacyConflictError, PrivacyError, PrivacyNotFoundError
from compliance.holds import held_scope, mentions, person_addresses, require_permission
from core.audit import Actor, AuditAction, record
from core.clock import isoformat, utcnow
from core.models import (
    Account,
    ErasureRequest,
    Event,
    Finding,
    Incident,
    Message,
    Person,
    PersonBaseline,
    TimelineEntry,
)
from core.permissions import Permission

BATCH = 2000


def _row(row: SQLModel) -> dict[str, Any]:
    return row.model_dump(mode="json")


def _line(table: str, row: SQLModel) -> bytes:
    return orjson.dumps({"table": table, "row": _row(row)}, option=orjson.OPT_SORT_KEYS) + b"\n"


def _lowered(addresses: set[str]) -> list[str]:
    return sorted(addresses)


def _events_query(addresses: set[str]) -> Any:
    return or_(
        func.lower(Event.actor).in_(_lowered(addresses)), func.lower(Event.target).in_(_lowered(addresses))
    )


def record_export(session: Session, who: str, *, actor: Actor, role: str | None) -> set[str]:
    """Check the permission and audit the export (before it streams); returns the person's addresses."""
    require_permission(role, Permission.PRIVACY_EXPORT, actor)
    addresses = person_addresses(session, who)
    record(
        session,
        actor=actor,
        action=AuditAction.PRIVACY_EXPORTED,
        object_type="person",
        object_id=who.strip().lower(),
        details={"addresses": sorted(addresses)},
    )
    return addresses


def export_person(session: Session, addresses: set[str]) -> Iterator[bytes]:
    """Every row about the person as JSON lines, read in batches (constant memory)."""
    people = [p for p in session.exec(select(Person)).all() if p.primary_email.lower() in addresses]
    for person in people:
        yield _line("person", person)
    for account in session.exec(
        select(Account).where(func.lower(Account.email).in_(_lowered(addresses)))
    ).all():
        yield _line("account", account)
    for baseline in session.exec(
        select(PersonBaseline).where(func.lower(PersonBaseline.actor).in_(_lowered(addresses)))
    ).all():
        yield _line("personbaseline", baseline)
    yield from _batched(session, Event, _events_query(addresses), "event")
    yield from _batched(session, Message, func.lower(Message.author).in_(_lowered(addresses)), "message")
    yield from _batched(
        session, TimelineEntry, func.lower(TimelineEntry.actor).in_(_lowered(addresses)), "timelineentry"
    )
    for model, table in ((Finding, "finding"), (Incident, "incident")):
        for row in _mentioning(session, model, addresses):
            yield _line(table, row)


def _mentioning(session: Session, model: Any, addresses: set[str]) -> Iterator[Any]:
    """Rows of `model` (findings, incidents) whose entities name one of `addresses`, read in batches."""
    after = 0
    while True:
        rows = session.exec(
            select(model).where(col(model.id) > after).order_by(col(model.id)).limit(BATCH)
        ).all()
        if not rows:
            return
        after = rows[-1].id
        yield from (row for row in rows if mentions(row.entities or {}, addresses))


def _batched(session: Session, model: Any, condition: Any, table: str) -> Iterator[bytes]:
    after = 0
    while True:
        rows = session.exec(
            select(model).where(condition, col(model.id) > after).order_by(col(model.id)).limit(BATCH)
        ).all()
        if not rows:
            return
        after = rows[-1].id
        for row in rows:
            yield _line(table, row)


def snapshot(row: ErasureRequest) -> dict[str, Any]:
    return {
        "id": row.id,
        "person": row.person,
        "reason": row.reason,
        "requested_by": row.requested_by,
        "requested_at": isoformat(row.requested_at),
        "approved_by": row.approved_by,
        "executed_at": isoformat(row.executed_at) if row.executed_at else None,
        "result": row.result,
        "state": "executed" if row.executed_at else "pending",
    }


def _blocking_holds(session: Session, addresses: set[str]) -> list[str]:
    scope = held_scope(session)
    if not scope:
        return []
    blocked = []
    for hold in scope.holds:
        if hold.kind == "person" and addresses & person_addresses(session, hold.target):
            blocked.append(f"#{hold.id} (person {hold.target})")
    if scope.incident_ids:
        for incident_id, entities in session.exec(
            select(Incident.id, Incident.entities).where(col(Incident.id).in_(sorted(scope.incident_ids)))
        ).all():
            if mentions(entities or {}, addresses):
                blocked.append(f"incident {incident_id} (on hold, names them)")
    return blocked


def request_erasure(
    session: Session, who: str, *, reason: str, actor: Actor, role: str | None, now: datetime | None = None
) -> ErasureRequest:
    """Ask for a person's erasure; it runs once a second holder of `privacy:erase` approves."""
    require_permission(role, Permission.PRIVACY_ERASE, actor)
    who = who.strip().lower()
    if "@" not in who:
        raise PrivacyError(f"name the person by an e-mail address, not {who!r}")
    if len(reason.strip()) < 5:
        raise PrivacyError("an erasure needs a reason (the request it answers)")
    blocked = _blocking_holds(session, person_addresses(session, who))
    if blocked:
        raise PrivacyConflictError(f"{who} cannot be erased while on legal hold: {', '.join(blocked)}")
    row = ErasureRequest(
        person=who, reason=reason.strip(), requested_by=actor.name, requested_at=now or utcnow()
    )
    session.add(row)
    session.flush()
    record(
        session,
        actor=actor,
        action=AuditAction.PRIVACY_ERASURE_REQUESTED,
        object_type="erasure_request",
        object_id=row.id or 0,
        after=snapshot(row),
    )
    return row


def approve_erasure(
    session: Session, request_id: int, *, actor: Actor, role: str | None, now: datetime | None = None
) -> ErasureRequest:
    """Four eyes: a second person approves, and the erasure runs in this transaction."""
    require_permission(role, Permission.PRIVACY_ERASE, actor)
    row = session.get(ErasureRequest, request_id, with_for_update=True)
    if row is None:
        raise PrivacyNotFoundError(f"no erasure request {request_id}")
    if row.executed_at is not None:
        raise PrivacyConflictError(f"erasure request {request_id} was already carried out")
    if row.requested_by == actor.name:
        raise PrivacyConflictError(
            f"{actor.name} asked for erasure {request_id} and cannot approve it too (four eyes)"
        )
    addresses = person_addresses(session, row.person)
    blocked = _blocking_holds(session, addresses)
    if blocked:
        raise PrivacyConflictError(f"{row.person} cannot be erased while on legal hold: {', '.join(blocked)}")
    pseudonym = f"erased-subject-{request_id}"
    counts = erase(session, addresses, pseudonym)
    row.approved_by, row.executed_at = actor.name, now or utcnow()
    row.person, row.result = pseudonym, counts
    session.add(row)
    session.flush()
    record(
        session,
        actor=actor,
        action=AuditAction.PRIVACY_ERASED,
        object_type="erasure_request",
        object_id=request_id,
        details={"pseudonym": pseudonym, "counts": counts},
    )
    return row


def _pseudonymise(
    entities: dict[str, list[str]], addresses: set[str], pseudonym: str
) -> dict[str, list[str]]:
    return {
        kind: [pseudonym if str(value).lower() in addresses else value for value in values]
        for kind, values in entities.items()
    }


def erase(session: Session, addresses: set[str], pseudonym: str) -> dict[str, int]:
    """Delete the person's own rows and pseudonymise them in the organisation's; counts per table."""
    lowered = _lowered(addresses)
    counts: dict[str, int] = {}

    def count(name: str, value: int) -> None:
        if value:
            counts[name] = counts.get(name, 0) + value

    people = [p.id for p in session.exec(select(Person)).all() if p.primary_email.lower() in addresses]
    accounts = or_(func.lower(Account.email).in_(lowered), col(Account.person_id).in_(people))
    count("account", len(session.exec(select(Account.id).where(accounts)).all()))
    session.exec(delete(Account).where(accounts))
    count("person", len(people))
    session.exec(delete(Person).where(col(Person.id).in_(people)))
    for model, column, name in (
        (PersonBaseline, PersonBaseline.actor, "personbaseline"),
        (Message, Message.author, "message"),
    ):
        count(name, len(session.exec(select(model.id).where(func.lower(column).in_(lowered))).all()))
        session.exec(delete(model).where(func.lower(column).in_(lowered)))
    count("event", len(session.exec(select(Event.id).where(_events_query(addresses))).all()))
    session.exec(delete(Event).where(_events_query(addresses)))
    for entry in session.exec(
        select(TimelineEntry).where(func.lower(TimelineEntry.actor).in_(lowered))
    ).all():
        entry.actor = pseudonym
        entry.title = f"entry by {pseudonym}"
        entry.body = {"erased": True}
        session.add(entry)
        count("timelineentry", 1)
    pattern = re.compile(
        "|".join(re.escape(a) for a in sorted(addresses, key=len, reverse=True)), re.IGNORECASE
    )
    organisation: tuple[tuple[Any, str, tuple[str, ...]], ...] = (
        (Finding, "finding", ("title", "description")),
        (Incident, "incident", ("title", "summary")),
    )
    for model, name, texts in organisation:
        for row in list(_mentioning(session, model, addresses)):
            row.entities = _pseudonymise(row.entities, addresses, pseudonym)
            for text in texts:
                setattr(row, text, pattern.sub(pseudonym, getattr(row, text) or ""))
            session.add(row)
            count(name, 1)
    session.flush()
    return counts


def list_erasures(session: Session) -> list[ErasureRequest]:
    return list(session.exec(select(ErasureRequest).order_by(col(ErasureRequest.id))).all())
