"""What detectors conclude, and the suppressions analysts set on them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, text
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.models.enums import FindingStatus
from core.models.types import JSONType, UTCDateTime


class Finding(SQLModel, table=True):
    """One alert-worthy conclusion with its evidence; repeats inside the dedup period bump `count`."""

    __table_args__ = (
        Index("ix_finding_dedup", "dedup_key", "last_seen"),
        Index("ix_finding_first_seen", "first_seen"),
        Index("ix_finding_severity_first_seen", "severity", "first_seen"),
        Index("ix_finding_last_seen", "last_seen"),
        # One rule's findings, newest first (the API's rule filter) without sorting them all.
        Index("ix_finding_rule_first_seen", "rule_id", "first_seen"),
        # The API's person/IP filters are JSONB containment on PostgreSQL, served by this GIN index.
        # SQLite cannot index inside JSON lists: there the index is empty (WHERE 0) and costs nothing.
        Index(
            "ix_finding_entities",
            "entities",
            postgresql_using="gin",
            postgresql_ops={"entities": "jsonb_path_ops"},
            sqlite_where=text("0"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    rule_id: str = Field(index=True, max_length=200)
    kind: str = Field(index=True, max_length=20)
    severity: str = Field(max_length=20)
    confidence: float = 1.0
    title: str = Field(max_length=500)
    description: str = ""
    provider: str | None = Field(default=None, index=True, max_length=20)
    status: str = Field(default=FindingStatus.OPEN, index=True, max_length=20)
    entities: dict[str, list[str]] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    evidence_event_ids: list[int] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    first_seen: datetime = Field(sa_type=UTCDateTime)
    last_seen: datetime = Field(sa_type=UTCDateTime)
    count: int = 1
    dedup_key: str = Field(max_length=500)
    mitre: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    runbook: str = ""
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    # The daily digest that reported it, when it joined no incident (see timeline.digest).
    digest_id: int | None = Field(default=None, foreign_key="digest.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Suppression(SQLModel, table=True):
    """Silence a rule for events whose fields match `match`, until `expires_at`, with a reason."""

    id: int | None = Field(default=None, primary_key=True)
    rule_id: str = Field(index=True, max_length=200)
    match: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    reason: str
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    suppressed_count: int = 0
