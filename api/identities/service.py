"""Reading people and accounts (tables), and access through the identity stage's functions."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlmodel import Session, col, select

from api.context import RequestContext
from api.errors import NotFound
from api.identities.schemas import AccountOut, GrantOut, PersonDetail, PersonSort, PersonSummary
from core.models import Account, Person
from core.pagination import after_key, decode_cursor, encode_cursor
from identity import what_can_access, who_can_access

_KEYSETS: dict[PersonSort, tuple[tuple[Any, ...], tuple[type, ...], bool]] = {
    PersonSort.RISKIEST: ((col(Person.risk_score), col(Person.id)), (float, int), True),
    PersonSort.LEAST_RISKY: ((col(Person.risk_score), col(Person.id)), (float, int), False),
    PersonSort.EMAIL: ((col(Person.primary_email), col(Person.id)), (str, int), False),
}


def list_people(
    session: Session, *, risk_level: list[str] | None, sort: PersonSort, limit: int, cursor: str | None
) -> tuple[list[PersonSummary], str | None]:
    columns, types, descending = _KEYSETS[sort]
    query = select(Person)
    if risk_level:
        query = query.where(col(Person.risk_level).in_(risk_level))
    if cursor is not None:
        query = query.where(
            after_key(list(columns), decode_cursor(cursor, sort.value, types), descending=descending)
        )
    order = [c.desc() if descending else c.asc() for c in columns]
    rows = list(session.exec(query.order_by(*order).limit(limit + 1)).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(sort.value, [getattr(rows[-1], c.key) for c in columns])
    return [PersonSummary.model_validate(p) for p in rows], next_cursor


def _person(session: Session, person_id: int) -> Person:
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound(f"person {person_id} does not exist")
    return person


def person_detail(session: Session, person_id: int) -> PersonDetail:
    person = _person(session, person_id)
    accounts = session.exec(
        select(Account).where(Account.person_id == person_id).order_by(col(Account.provider), col(Account.id))
    ).all()
    summary = PersonSummary.model_validate(person).model_dump()
    return PersonDetail(
        **summary,
        risk_factors=list(person.risk_factors or []),
        accounts=[AccountOut.model_validate(a) for a in accounts],
    )


def list_accounts(
    session: Session,
    *,
    provider: str | None,
    admin: bool | None,
    guest: bool | None,
    mfa: bool | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[AccountOut], str | None]:
    query = select(Account)
    if provider:
        query = query.where(Account.provider == provider)
    if admin is not None:
        query = query.where(Account.is_admin == admin)
    if guest is not None:
        query = query.where(Account.is_guest == guest)
    if mfa is not None:
        query = query.where(Account.mfa_registered == mfa)
    if cursor is not None:
        query = query.where(col(Account.id) > decode_cursor(cursor, "id", (int,))[0])
    rows = list(session.exec(query.order_by(col(Account.id)).limit(limit + 1)).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor("id", [rows[-1].id])
    return [AccountOut.model_validate(a) for a in rows], next_cursor


def _grants(grants: list[Any]) -> list[GrantOut]:
    return [GrantOut.model_validate({**asdict(g), "scopes": list(g.scopes)}) for g in grants]


def access_of_person(ctx: RequestContext, person_id: int) -> list[GrantOut]:
    with ctx.db.session(readonly=True) as session:
        person = _person(session, person_id)
        email, aliases = person.primary_email, tuple(person.aliases or ())
    return _grants(what_can_access(ctx.db, email, aliases=aliases))


def access_to_resource(ctx: RequestContext, resource: str) -> list[GrantOut]:
    return _grants(who_can_access(ctx.db, resource))
