"""Incidents, their timelines, and the conversations collected from chat and mail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.models.enums import IncidentStatus, Priority
from core.models.types import EncryptedJSON, EncryptedText, JSONType, UTCDateTime


class Incident(SQLModel, table=True):
    """Findings about the same person, asset, network or app inside a window, with a lifecycle."""

    __table_args__ = (
        Index("ix_incident_status_priority", "status", "priority"),
        Index("ix_incident_type_created", "incident_type", "created_at"),
        # The API's "most urgent first" order, read in index order and filtered by status.
        Index("ix_incident_priority_id", "priority", "id"),
        # The API's person filter (JSONB containment) on PostgreSQL; empty on SQLite (see Finding).
        Index(
            "ix_incident_entities",
            "entities",
            postgresql_using="gin",
            postgresql_ops={"entities": "jsonb_path_ops"},
            sqlite_where=text("0"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=500)
    # The rule behind the incident's most severe finding: what volume/recurrence metrics count by.
    incident_type: str = Field(default="", max_length=200)
    status: str = Field(default=IncidentStatus.NEW, max_length=20)
    priority: str = Field(default=Priority.P4, max_length=4)
    priority_factors: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    severity: str = Field(max_length=20)
    assignee: str | None = Field(default=None, max_length=200)
    summary: str = ""
    entities: dict[str, list[str]] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    grouping: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    root_cause: str = ""
    lessons: str = ""
    impact: str = ""
    first_seen: datetime = Field(sa_type=UTCDateTime, index=True)
    last_seen: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    triaged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    contained_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    merged_into_id: int | None = Field(default=None, foreign_key="incident.id")
    # Grouping keys ("person:12", "ip:203.0.113.5", ...) a later finding can join on.
    keys: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    # Threads/channels whose messages belong to the incident: [{"provider","channel","thread_id"}].
    linked_conversations: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONType, nullable=False)
    )
    # What was posted to Slack about it: {"channel","ts","status","priority","error"}.
    notifications: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    created_by: str = Field(default="system:timeline", max_length=200)
    first_event_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # When that first event could first be read by the product: its time, or the time its
    # connection was added when it was backfilled history (MTTD counts from here).
    first_readable_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    detected_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ack_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    recurrence_of_id: int | None = Field(default=None, foreign_key="incident.id")
    finding_count: int = 0
    evidence_count: int = 0
    message_count: int = 0
    # Highest Message.id already checked against this incident's entities (0: check the whole window).
    messages_scanned_id: int = 0
    # Max Finding.updated_at folded into the evidence entries, so a rebuild happens only on change.
    evidence_built_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class TimelineEntry(SQLModel, table=True):
    """One typed, timestamped line of an incident's story, pointing at the stored record behind it."""

    __table_args__ = (
        Index("ix_timeline_incident_at", "incident_id", "at"),
        Index("ix_timeline_incident_kind", "incident_id", "kind"),
        UniqueConstraint("incident_id", "dedup_key", name="uq_timeline_incident_dedup"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id")
    at: datetime = Field(sa_type=UTCDateTime)
    kind: str = Field(max_length=30)
    source: str = Field(max_length=100)
    title: str = Field(max_length=1000)
    # Notes, message excerpts, reasons: encrypted at rest (core.crypto).
    body: dict[str, Any] = Field(default_factory=dict, sa_column=Column(EncryptedJSON, nullable=False))
    ref_type: str | None = Field(default=None, max_length=50)
    ref_id: str | None = Field(default=None, max_length=200)
    count: int = 1
    actor: str | None = Field(default=None, max_length=200)
    # "finding:12", "message:7": one entry per record and incident (NULL for status/notes/evidence).
    dedup_key: str | None = Field(default=None, max_length=250)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Message(SQLModel, table=True):
    """A chat or mail message, stored only after redaction: the clear text is never written."""

    __table_args__ = (
        UniqueConstraint("connection_id", "stream", "provider_message_id", name="uq_message_provider_id"),
        Index("ix_message_sent_at", "sent_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    connection_id: int | None = Field(default=None, foreign_key="connection.id")
    provider: str = Field(max_length=20)
    stream: str = Field(max_length=100)
    provider_message_id: str = Field(max_length=500)
    channel: str | None = Field(default=None, max_length=300)
    thread_id: str | None = Field(default=None, max_length=300)
    author: str | None = Field(default=None, max_length=320)
    sent_at: datetime = Field(sa_type=UTCDateTime)
    # Subject, text and meta (recipients, files) are encrypted at rest (core.crypto): SQL cannot
    # search them, so timeline.build matches conversation terms in Python.
    subject: str | None = Field(default=None, sa_column=Column(EncryptedText, nullable=True))
    text_redacted: str = Field(default="", sa_column=Column(EncryptedText, nullable=False))
    redactions: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(EncryptedJSON, nullable=False))
