"""Fixtures that write configuration snapshots and admin events the way the collectors store them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
import pytest

from core.db import Database
from core.models import ConfigSnapshot, Connection, Event


@pytest.fixture
def connection(db: Database) -> Callable[[str], int]:
    """make a connection for a provider and return its id."""

    def make(provider: str = "m365", name: str | None = None) -> int:
        with db.session() as session:
            row = Connection(name=name or f"{provider}-tenant", provider=provider, tenant=f"{provider}.test")
            session.add(row)
            session.flush()
            return int(row.id or 0)

    return make


@pytest.fixture
def store_snapshot(db: Database) -> Callable[..., int]:
    """Store one snapshot of a configuration object (as a collector does after a change)."""

    def store(
        connection_id: int,
        provider: str,
        object_type: str,
        object_id: str,
        data: dict[str, Any],
        at: datetime,
        deleted: bool = False,
    ) -> int:
        with db.session() as session:
            row = ConfigSnapshot(
                connection_id=connection_id,
                provider=provider,
                object_type=object_type,
                object_id=object_id,
                content_hash=hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest(),
                data=data,
                collected_at=at,
                deleted=deleted,
            )
            session.add(row)
            session.flush()
            return int(row.id or 0)

    return store


@pytest.fixture
def store_event(db: Database) -> Callable[..., int]:
    def store(
        connection_id: int,
        provider: str,
        stream: str,
        event_id: str,
        at: datetime,
        raw: dict[str, Any],
        **columns: Any,
    ) -> int:
        with db.session() as session:
            row = Event(
                connection_id=connection_id,
                provider=provider,
                stream=stream,
                provider_event_id=event_id,
                occurred_at=at,
                raw=raw,
                **columns,
            )
            session.add(row)
            session.flush()
            return int(row.id or 0)

    return store
