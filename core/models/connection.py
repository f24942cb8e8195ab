"""A connected tenant, the collectors' position in each of its streams, and their run history."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.models.enums import Health
from core.models.types import EncryptedJSON, JSONType, UTCDateTime

ORGANISATION_KEY = "organisation"


def organisation(config: Mapping[str, Any] | None) -> str:
    """The organisation a connection belongs to (its config's ``organisation``; default ``""``):
    the tenant its detection partition (`detectors.partitions`) and its poll phase
    (`collectors.scheduler.poll_phase`) are derived from."""
    return str((config or {}).get(ORGANISATION_KEY) or "").strip()


class Connection(SQLModel, table=True):
    """One SaaS tenant.

    `config` holds non-secret settings (endpoints, client ids, streams, intervals); `secret_refs`
    maps each secret's name to a *reference* (``env:VAR`` or ``file:/path``) resolved at use time,
    so no secret is ever stored in the database; both are encrypted at rest (core.crypto) anyway. `source` says where the definition came from
    (``file`` for the connections file, ``api``), so a file sync never touches API-made connections.
    """

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=200)
    provider: str = Field(index=True, max_length=20)
    tenant: str = Field(max_length=300)
    enabled: bool = True
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(EncryptedJSON, nullable=False))
    secret_refs: dict[str, str] = Field(default_factory=dict, sa_column=Column(EncryptedJSON, nullable=False))
    source: str = Field(default="api", max_length=20)
    health: str = Field(default=Health.UNKNOWN, max_length=20)
    health_reason: str | None = None
    last_run_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_success_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Checkpoint(SQLModel, table=True):
    """Where a (connection, stream) collector resumes, and which run may move it (`run_token`).

    Which worker runs a stream is the task engine's business (one job at a time per stream);
    `run_token` fences the commits: each run claims it on start, and a page commits only while
    the token is still its own, so a run that was presumed dead and replaced can never commit."""

    __table_args__ = (UniqueConstraint("connection_id", "stream"),)

    id: int | None = Field(default=None, primary_key=True)
    connection_id: int = Field(foreign_key="connection.id", index=True)
    stream: str = Field(max_length=100)
    cursor: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    health: str = Field(default=Health.UNKNOWN, max_length=20)
    health_reason: str | None = None
    run_token: str | None = Field(default=None, max_length=200)
    last_run_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_success_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CollectionRun(SQLModel, table=True):
    """One run of one (connection, stream) by one worker: what it read, and how it ended.

    `heartbeat_at` moves with every committed page, so a run whose worker died shows when it
    last made progress; operators see stuck or failing streams here.
    """

    __table_args__ = (Index("ix_collectionrun_stream_started", "connection_id", "stream", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    connection_id: int = Field(foreign_key="connection.id")
    stream: str = Field(max_length=100)
    worker: str = Field(max_length=200)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    heartbeat_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status: str = Field(default="running", max_length=20)
    pages: int = 0
    records_read: int = 0
    records_new: int = 0
    error: str | None = None
