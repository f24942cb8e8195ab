"""The one set of row factories for tests: findings, incidents, connections and principals.

Each writes what the product would have written (connections and principals through their audited
entry points, findings and incidents as the detectors and the timeline store them) and returns the
stored row. Fixtures of the same names in tests/conftest.py bind them to the test's database, so a
test asks for ``make_finding`` and calls ``make_finding("Impossible travel", people=[...])``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from core.audit import Actor, Channel
from core.db import Database
from core.models import ApiPrincipal, Connection, Finding, Incident, Role

T0 = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
# The API tests configure this pepper, so tokens made here authenticate against their app.
TEST_PEPPER = "test-pepper-0123456789abcdef0123456789abcdef"
FACTORY_ACTOR = Actor("system:test", Channel.CLI)

_serial = itertools.count(1)


def at(minutes: float = 0, *, hours: float = 0, days: float = 0) -> datetime:
    """T0 plus an offset: scenarios read as "at(30)" for half an hour in."""
    return T0 + timedelta(minutes=minutes, hours=hours, days=days)


def make_finding(
    db: Database,
    title: str = "Sign-in from an unfamiliar country",
    *,
    rule_id: str | None = None,
    incident_id: int | None = None,
    people: Iterable[str] = (),
    ips: Iterable[str] = (),
    files: Iterable[str] = (),
    apps: Iterable[str] = (),
    accounts: Iterable[str] = (),
    mitre: Iterable[str] = (),
    severity: str = "high",
    confidence: float = 0.8,
    kind: str = "detection",
    provider: str = "m365",
    status: str = "open",
    first_seen: datetime = T0,
    last_seen: datetime | None = None,
    evidence: Iterable[int] = (),
    context: dict[str, Any] | None = None,
    **fields: Any,
) -> Finding:
    """One finding shaped like a detector's (created five minutes after it was first seen)."""
    values: dict[str, Any] = {
        "rule_id": rule_id or title.lower().replace(" ", "_")[:60],
        "kind": kind,
        "severity": severity,
        "confidence": confidence,
        "title": title,
        "provider": provider,
        "status": status,
        "entities": {
            "people": list(people),
            "ips": list(ips),
            "files": list(files),
            "apps": list(apps),
            "accounts": list(accounts),
        },
        "mitre": list(mitre),
        "evidence_event_ids": list(evidence),
        "first_seen": first_seen,
        "last_seen": last_seen or first_seen,
        "dedup_key": f"dedup-{next(_serial)}",
        "context": context or {},
        "incident_id": incident_id,
        "created_at": first_seen + timedelta(minutes=5),
        "updated_at": first_seen + timedelta(minutes=5),
    }
    values.update(fields)
    with db.session() as session:
        finding = Finding(**values)
        session.add(finding)
        session.flush()
    return finding


def make_incident(
    db: Database,
    title: str | None = None,
    *,
    priority: str = "P1",
    severity: str = "high",
    people: Iterable[str] = ("alice@northwind.example",),
    first_seen: datetime = T0,
    last_seen: datetime | None = None,
    **fields: Any,
) -> Incident:
    """One incident as the timeline stores it (an hour long unless `last_seen` says otherwise)."""
    values: dict[str, Any] = {
        "title": title or f"Account takeover {next(_serial)}",
        "priority": priority,
        "severity": severity,
        "entities": {"people": list(people)},
        "first_seen": first_seen,
        "last_seen": last_seen or first_seen + timedelta(hours=1),
    }
    values.update(fields)
    with db.session() as session:
        incident = Incident(**values)
        session.add(incident)
        session.flush()
    return incident


def make_connection(
    db: Database,
    name: str | None = None,
    provider: str = "m365",
    *,
    config: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
    streams: tuple[str, ...] | None = None,
    intervals: dict[str, int] | None = None,
    source: str = "api",
    **state: Any,
) -> Connection:
    """A connection written through the audited path (`source`: api or file); `state` (health, ...)
    is then set on the stored row the way the collectors update it."""
    from collectors.connections import ConnectionDefinition, upsert_connection

    config_defaults = {"m365": {"client_id": "app"}, "google": {"subject": "admin@example.com"}, "slack": {}}
    secret_defaults = {
        "m365": {"client_secret": "env:TG_TEST_SECRET"},
        "google": {"service_account": "file:/nonexistent/key.json"},
        "slack": {"audit_token": "env:TG_TEST_AUDIT_TOKEN"},
    }
    definition = ConnectionDefinition(
        name=name or f"{provider}-{next(_serial)}",
        provider=provider,
        tenant="tenant-1",
        config={**config_defaults[provider], **(config or {})},
        secrets=secrets or secret_defaults[provider],
        streams=streams,
        intervals=intervals or {},
    )
    row, _ = upsert_connection(db, definition, actor=FACTORY_ACTOR, source=source)
    if state:
        with db.session() as session:
            stored = session.get(Connection, row.id)
            assert stored is not None
            for key, value in state.items():
                setattr(stored, key, value)
            session.add(stored)
            session.flush()
            row = stored
    return row


@dataclass(frozen=True)
class MadePrincipal:
    row: ApiPrincipal
    token: str  # bearer token (the API tests' app accepts it)
    actor: Actor  # the principal acting through the API

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_principal(
    db: Database,
    role: Role | str = Role.APPROVER,
    *,
    name: str | None = None,
    slack_user_id: str | None = None,
    disabled: bool = False,
    pepper: str = TEST_PEPPER,
) -> MadePrincipal:
    """A principal created (and, if asked, disabled) through the audited principal service."""
    from api.principals.service import create_principal, disable_principal

    name = name or f"{Role(role).value}{next(_serial)}"
    row, token = create_principal(db, pepper.encode(), name=name, role=role, actor=FACTORY_ACTOR)
    if slack_user_id is not None:
        with db.session() as session:
            stored = session.get(ApiPrincipal, row.id)
            assert stored is not None
            stored.slack_user_id = slack_user_id
            session.add(stored)
            session.flush()
            row = stored
    if disabled:
        row = disable_principal(db, name=name, actor=FACTORY_ACTOR)
    return MadePrincipal(row, token, Actor(f"principal:{name}", Channel.API))
