"""What the collectors store: normalised events, quarantined input and configuration snapshots."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.models.types import EncryptedText, JSONType, PackedJSON, UTCDateTime


class Event(SQLModel, table=True):
    """One audit/activity record, keyed by the provider's own id so re-reads change nothing."""

    __table_args__ = (
        UniqueConstraint("connection_id", "stream", "provider_event_id", name="uq_event_provider_id"),
        # Indexes, each for a query that uses it (the unique key above serves lookups by
        # connection, and by connection and stream): posture attribution (provider, stream, time);
        # the detection warm-up and anomaly replay (occurred_at); IP prevalence (ip).
        Index("ix_event_stream_time", "provider", "stream", "occurred_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    connection_id: int | None = Field(default=None, foreign_key="connection.id")
    provider: str = Field(max_length=20)
    stream: str = Field(max_length=100)
    provider_event_id: str = Field(max_length=500)
    occurred_at: datetime = Field(sa_type=UTCDateTime, index=True)
    ingested_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor: str | None = Field(default=None, max_length=500)
    action: str | None = Field(default=None, max_length=300)
    target: str | None = Field(default=None, max_length=1000)
    ip: str | None = Field(default=None, max_length=64, index=True)
    country: str | None = Field(default=None, max_length=8)
    outcome: str | None = Field(default=None, max_length=50)
    # The provider's record, kept once and compressed (the columns above are derived from it).
    raw: dict[str, Any] = Field(default_factory=dict, sa_column=Column(PackedJSON, nullable=False))


class StoredEvent(Protocol):
    """What readers of stored events use: an `Event`, or a plain row of its columns
    (`event_row_columns`, read without ORM objects by the detection stage)."""

    @property
    def id(self) -> int | None: ...
    @property
    def connection_id(self) -> int | None: ...
    @property
    def provider(self) -> str: ...
    @property
    def stream(self) -> str: ...
    @property
    def provider_event_id(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def actor(self) -> str | None: ...
    @property
    def action(self) -> str | None: ...
    @property
    def target(self) -> str | None: ...
    @property
    def ip(self) -> str | None: ...
    @property
    def country(self) -> str | None: ...
    @property
    def outcome(self) -> str | None: ...
    @property
    def raw(self) -> dict[str, Any]: ...


class EventRow(NamedTuple):
    """A stored event as a plain, read-only row (a `StoredEvent`): `EventRow._make(row)` of a row of
    `event_row_columns()`. Attribute access is a tuple index, many times cheaper than a
    SQLAlchemy `Row`'s or an ORM object's, which counts at millions of events."""

    id: int | None
    connection_id: int | None
    provider: str
    stream: str
    provider_event_id: str
    occurred_at: datetime
    actor: str | None
    action: str | None
    target: str | None
    ip: str | None
    country: str | None
    outcome: str | None
    raw: dict[str, Any]


def event_row_columns() -> list[Any]:
    """The columns of a `StoredEvent` row (every column but `ingested_at`)."""
    table = Event.__table__  # type: ignore[attr-defined]
    return [table.c[name] for name in EventRow._fields]


class QuarantinedRecord(SQLModel, table=True):
    """Input we could not use, kept verbatim with the reason, so nothing is silently lost."""

    id: int | None = Field(default=None, primary_key=True)
    connection_id: int | None = Field(default=None, foreign_key="connection.id", index=True)
    provider: str | None = Field(default=None, max_length=20)
    stream: str | None = Field(default=None, max_length=100)
    source: str = Field(max_length=1000)
    reason: str
    raw: str = Field(sa_column=Column(EncryptedText, nullable=False))  # provider input: encrypted at rest
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class ConfigSnapshot(SQLModel, table=True):
    """The state of one configuration object at one time; a new row only when its content changed."""

    __table_args__ = (
        Index("ix_snapshot_object_time", "connection_id", "object_type", "object_id", "collected_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    connection_id: int | None = Field(default=None, foreign_key="connection.id")
    provider: str = Field(max_length=20)
    object_type: str = Field(max_length=100, index=True)
    object_id: str = Field(max_length=500)
    content_hash: str = Field(max_length=64)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    collected_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    deleted: bool = False
