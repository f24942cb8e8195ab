"""Fixtures for the collector tests: connections in the database, written through the audited path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from collectors.connections import ConnectionDefinition, upsert_connection
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
        )
        row, _ = upsert_connection(db, definition, actor="principal:test")
        return row

    return make
