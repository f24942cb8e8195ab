"""The append-only, hash-linked audit chain (see core/audit.py for the one write path)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from core.models.types import JSONType, UTCDateTime


class AuditRecord(SQLModel, table=True):
    """Record `seq` holds the hash of record `seq - 1`; `hash` covers its canonical JSON encoding."""

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    actor: str = Field(max_length=200)
    action: str = Field(max_length=100, index=True)
    object_type: str = Field(max_length=50)
    object_id: str = Field(max_length=200)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    prev_hash: str = Field(max_length=64, unique=True)
    hash: str = Field(max_length=64, unique=True)


class AuditCheckpoint(SQLModel, table=True):
    """A verifiable truncation of the chain: records up to `up_to_seq` were deleted by retention, and
    the record `seq = record_seq` (action ``audit.truncated``, still in the chain) names the same
    `up_to_seq` and `anchor_hash` (the hash of record `up_to_seq`, which the first surviving record
    links to). The database lets records be deleted only at or below the highest checkpoint."""

    up_to_seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    anchor_hash: str = Field(max_length=64)
    record_seq: int
    records_deleted: int = 0
    at: datetime = Field(sa_type=UTCDateTime)
