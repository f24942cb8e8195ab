"""A connected tenant and the collectors' position in each of its streams."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.models.enums import Health
from core.models.types import JSONType, UTCDateTime


class Connection(SQLModel, table=True):
    """One SaaS tenant. `config` holds non-secret settings; secrets are referenced by `secret_ref`."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=200)
    provider: str = Field(index=True, max_length=20)
    tenant: str = Field(max_length=300)
    enabled: bool = True
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    secret_ref: str | None = Field(default=None, max_length=500)
    health: str = Field(default=Health.UNKNOWN, max_length=20)
    health_reason: str | None = None
    last_run_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_success_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Checkpoint(SQLModel, table=True):
    """Where a (connection, stream) collector resumes, and who holds it right now (lease)."""

    __table_args__ = (UniqueConstraint("connection_id", "stream"),)

    id: int | None = Field(default=None, primary_key=True)
    connection_id: int = Field(foreign_key="connection.id", index=True)
    stream: str = Field(max_length=100)
    cursor: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    health: str = Field(default=Health.UNKNOWN, max_length=20)
    health_reason: str | None = None
    lease_owner: str | None = Field(default=None, max_length=200)
    lease_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_run_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
