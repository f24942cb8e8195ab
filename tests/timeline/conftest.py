"""Timeline fixtures: events, messages and people as the collectors store them (findings and
incidents come from tests/factories.py)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from core.db import Database
from core.models.event import Event
from core.models.identity import Account, Person
from core.models.incident import Message
from tests.factories import T0

_ids = itertools.count(1)


@pytest.fixture
def make_events(db: Database) -> Callable[..., list[int]]:
    """Write `n` events of one action (one per `every`), returning their ids."""

    def make(
        n: int = 1,
        *,
        action: str = "UserLoggedIn",
        actor: str = "alice@northwind.example",
        ip: str | None = "203.0.113.7",
        start: datetime = T0,
        every: timedelta = timedelta(seconds=30),
        provider: str = "m365",
        stream: str = "signins",
        outcome: str | None = "success",
        target: str | None = None,
        connection_id: int | None = None,
    ) -> list[int]:
        rows = [
            Event(
                connection_id=connection_id,
                provider=provider,
                stream=stream,
                provider_event_id=f"ev-{next(_ids)}",
                occurred_at=start + every * i,
                actor=actor,
                action=action,
                ip=ip,
                outcome=outcome,
                target=target,
                raw={"n": i},
            )
            for i in range(n)
        ]
        with db.session() as session:
            session.add_all(rows)
            session.flush()
            return [r.id for r in rows]  # type: ignore[misc]

    return make


@pytest.fixture
def make_message(db: Database) -> Callable[..., int]:
    """Write one (already redacted) message as the collectors would store it."""

    def make(
        text: str,
        *,
        author: str | None = "bob@northwind.example",
        sent_at: datetime = T0,
        provider: str = "slack",
        stream: str = "messages",
        channel: str | None = "C-general",
        thread_id: str | None = None,
        message_id: str | None = None,
        subject: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> int:
        message = Message(
            provider=provider,
            stream=stream,
            provider_message_id=message_id or f"m-{next(_ids)}",
            channel=channel,
            thread_id=thread_id,
            author=author,
            sent_at=sent_at,
            subject=subject,
            text_redacted=text,
            meta=meta or {},
        )
        with db.session() as session:
            session.add(message)
            session.flush()
            return message.id  # type: ignore[return-value]

    return make


@pytest.fixture
def make_person(db: Database) -> Callable[..., int]:
    """A resolved person with accounts (provider, provider_user_id, email, admin roles)."""

    def make(
        email: str,
        *,
        name: str | None = None,
        aliases: list[str] | None = None,
        accounts: list[dict[str, Any]] | None = None,
    ) -> int:
        with db.session() as session:
            person = Person(primary_email=email, display_name=name, aliases=aliases or [])
            session.add(person)
            session.flush()
            for spec in accounts or [
                {"provider": "m365", "provider_user_id": f"aad-{next(_ids)}", "email": email}
            ]:
                session.add(
                    Account(
                        person_id=person.id,
                        provider=spec["provider"],
                        provider_user_id=spec["provider_user_id"],
                        email=spec.get("email"),
                        is_admin=spec.get("is_admin", False),
                        admin_roles=spec.get("admin_roles", []),
                    )
                )
            return person.id  # type: ignore[return-value]

    return make


@pytest.fixture
def incidents_of(db: Database) -> Callable[[], Iterator[Any]]:
    from sqlmodel import select

    from core.models.incident import Incident

    def read() -> list[Incident]:
        with db.session(readonly=True) as session:
            return list(session.exec(select(Incident).order_by(Incident.id)).all())

    return read
