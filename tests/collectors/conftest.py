"""Fixtures for the collector tests: connections in the database, written through the audited path."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from collectors.connections import ConnectionDefinition, upsert_connection
from core.audit import Actor, Channel
from core.db import Database
from core.models import Connection


@pytest.fixture
def make_connection(db: Database) -> Callable[..., Connection]:
    """make_connection(name="contoso", provider="m365", config=..., secrets=...) -> stored Connection."""
    counter = {"n": 0}

    def make(
        name: str | None = None,
        provider: str = "slack",
        *,
        config: dict[str, Any] | None = None,
        secrets: dict[str, str] | None = None,
        streams: tuple[str, ...] | None = None,
        intervals: dict[str, int] | None = None,
    ) -> Connection:
        counter["n"] += 1
        defaults = {"m365": {"client_id": "app"}, "google": {"subject": "admin@example.com"}, "slack": {}}
        secret_defaults = {
            "m365": {"client_secret": "env:TG_TEST_SECRET"},
            "google": {"service_account": "file:/nonexistent/key.json"},
            "slack": {"audit_token": "env:TG_TEST_AUDIT_TOKEN"},
        }
        definition = ConnectionDefinition(
            name=name or f"{provider}-{counter['n']}",
            provider=provider,
            tenant="tenant-1",
            config={**defaults[provider], **(config or {})},
            secrets=secrets or secret_defaults[provider],
            streams=streams,
            intervals=intervals or {},
        )
        row, _ = upsert_connection(db, definition, actor=Actor("principal:test", Channel.CLI))
        return row

    return make


@pytest.fixture
def past_simulator(make_simulator: Callable[..., Any]) -> Callable[..., Any]:
    """past_simulator(scenario, days=2, faults=...) -> a tenant whose simulated period ended
    yesterday at 22:00 UTC, served on today's clock.

    The simulator keeps background activity to the end of the period's last UTC day, and the
    Management Activity API lists an hour's blob only once that hour is over; ending the period on
    an earlier day makes every event listable now, so the "visible" ground truth is the whole truth.
    """
    day = 86400

    def make(scenario: str = "account_takeover", *, days: int = 2, users: int = 10, **options: Any) -> Any:
        ends = (int(time.time()) // day) * day - 2 * 3600
        handle = make_simulator(
            scenario, users=users, days=days, start=(ends - days * day) * 1_000_000, **options
        )
        handle.advance(time.time() - handle.sim.now() / 1_000_000)
        return handle

    return make
