"""API fixtures: an app on the test database, a client, principals per role, and row factories."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.config import ApiSettings
from api.principals.service import create_principal
from core.audit import Actor, Channel
from core.db import Database
from core.models import Connection, Finding, Incident, Role
from core.settings import Settings

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def api_settings() -> ApiSettings:
    return ApiSettings(
        token_pepper="test-pepper-0123456789abcdef0123456789abcdef",
        rate_limit_per_second=0,
        auth_failures_per_minute=100_000,
    )


@pytest.fixture
def app(settings: Settings, db: Database, api_settings: ApiSettings) -> FastAPI:
    return create_app(settings, db, api_settings=api_settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def make_principal(app: FastAPI) -> Callable[..., str]:
    """make_principal(role, name=None) -> a bearer token for a new principal with that role."""
    state = app.state.tenantguard
    counter = itertools.count(1)

    def make(role: Role | str, name: str | None = None) -> str:
        _, token = create_principal(
            state.db,
            state.tokens.pepper,
            name=name or f"{Role(role).value}{next(counter)}",
            role=role,
            actor=Actor("system:test", Channel.CLI),
        )
        return token

    return make


@pytest.fixture
def as_role(make_principal: Callable[..., str]) -> Callable[[Role | str], dict[str, str]]:
    """as_role(role) -> Authorization headers of a principal holding that role (one per role)."""
    tokens: dict[Role, str] = {}

    def headers(role: Role | str) -> dict[str, str]:
        role = Role(role)
        if role not in tokens:
            tokens[role] = make_principal(role, name=f"the-{role.value}")
        return {"Authorization": f"Bearer {tokens[role]}"}

    return headers


@pytest.fixture
def make_finding(db: Database) -> Callable[..., Finding]:
    counter = itertools.count(1)

    def make(**fields: Any) -> Finding:
        n = next(counter)
        first_seen = fields.pop("first_seen", T0 + timedelta(minutes=n))
        values: dict[str, Any] = {
            "rule_id": "m365-risky-signin",
            "kind": "detection",
            "severity": "medium",
            "title": f"finding {n}",
            "provider": "m365",
            "entities": {"people": ["alice@example.com"]},
            "first_seen": first_seen,
            "last_seen": fields.pop("last_seen", first_seen + timedelta(minutes=5)),
            "dedup_key": f"dedup-{n}",
        }
        values.update(fields)
        with db.session() as session:
            finding = Finding(**values)
            session.add(finding)
        return finding

    return make


@pytest.fixture
def make_incident(db: Database) -> Callable[..., Incident]:
    counter = itertools.count(1)

    def make(**fields: Any) -> Incident:
        n = next(counter)
        first_seen = fields.pop("first_seen", T0 + timedelta(hours=n))
        values: dict[str, Any] = {
            "title": f"incident {n}",
            "severity": "high",
            "priority": "P2",
            "entities": {"people": ["alice@example.com"]},
            "first_seen": first_seen,
            "last_seen": fields.pop("last_seen", first_seen + timedelta(minutes=30)),
        }
        values.update(fields)
        with db.session() as session:
            incident = Incident(**values)
            session.add(incident)
        return incident

    return make


@pytest.fixture
def make_connection(db: Database) -> Callable[..., Connection]:
    counter = itertools.count(1)

    def make(**fields: Any) -> Connection:
        values: dict[str, Any] = {"name": f"tenant-{next(counter)}", "provider": "m365", "tenant": "contoso"}
        values.update(fields)
        with db.session() as session:
            connection = Connection(**values)
            session.add(connection)
        return connection

    return make
