"""Request and response shapes for incidents (separate from the `Incident` table)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from api.findings.schemas import FindingSummary
from core.models import IncidentStatus, Priority, Provider, Severity
from core.pagination import MAX_ID


class IncidentSummary(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 31,
                    "title": "Account takeover of alice@example.com",
                    "incident_type": "m365-impossible-travel",
                    "status": "triaged",
                    "priority": "P1",
                    "severity": "high",
                    "assignee": "bob",
                    "entities": {"people": ["alice@example.com"], "ips": ["203.0.113.9"]},
                    "first_seen": "2025-03-02T08:15:00Z",
                    "last_seen": "2025-03-02T09:02:00Z",
                    "created_at": "2025-03-02T08:20:00Z",
                    "updated_at": "2025-03-02T08:40:00Z",
                    "merged_into_id": None,
                    "finding_count": 4,
                }
            ]
        },
    )

    id: int
    title: str
    incident_type: str
    status: str
    priority: str
    severity: str
    assignee: str | None
    entities: dict[str, list[Any]]
    first_seen: datetime
    last_seen: datetime
    created_at: datetime
    updated_at: datetime
    merged_into_id: int | None
    finding_count: int


class IncidentDetail(IncidentSummary):
    summary: str
    priority_factors: dict[str, Any]
    grouping: list[dict[str, Any]]
    root_cause: str
    lessons: str
    impact: str
    created_by: str
    first_event_at: datetime | None
    detected_at: datetime | None
    acknowledged_at: datetime | None
    ack_due_at: datetime | None
    triaged_at: datetime | None
    contained_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    due_at: datetime | None
    recurrence_of_id: int | None
    evidence_count: int
    message_count: int
    findings: list[FindingSummary] = Field(
        description="The incident's findings, most severe first (at most 200)."
    )
    findings_total: int


Assignee = Annotated[str, Field(min_length=1, max_length=200)]


class IncidentFilters(BaseModel):
    """Every filter is optional; several values of one filter mean "any of them"."""

    status: list[IncidentStatus] | None = Field(default=None, max_length=7)
    priority: list[Priority] | None = Field(default=None, max_length=4)
    severity: list[Severity] | None = Field(default=None, max_length=5)
    assignee: Assignee | None = None
    person: str | None = Field(default=None, min_length=3, max_length=320, description="E-mail of a person.")
    since: datetime | None = Field(default=None, description="Active at or after (last_seen >= since).")
    until: datetime | None = Field(default=None, description="Started before (first_seen < until).")


Text = Annotated[str, Field(min_length=1, max_length=20_000)]


class TransitionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"to": "contained", "note": "sessions revoked"}]}
    )

    to: IncidentStatus
    note: Text | None = None
    duplicate_of: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="Needed when `to` is duplicate."
    )


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"assignee": "bob"}]})

    assignee: Assignee | None = Field(description="null unassigns.")


class NoteIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"text": "Called Alice: she was not travelling."}]}
    )

    text: Text


class NoteOut(BaseModel):
    entry_id: int


class PostmortemIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"root_cause": "Phished password, no MFA"}]}
    )

    root_cause: Text | None = None
    lessons: Text | None = None
    impact: Text | None = None


class MergeIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"incident_ids": [41, 42], "reason": "same attacker IP"}]},
    )

    incident_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(min_length=1, max_length=50)
    reason: str = Field(default="", max_length=2000)


class SplitIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"finding_ids": [812], "reason": "unrelated"}]}
    )

    finding_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(min_length=1, max_length=500)
    reason: str = Field(default="", max_length=2000)


class LinkIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"provider": "slack", "channel": "C0123", "thread_id": "1712.0001"}]},
    )

    provider: Provider
    channel: str = Field(min_length=1, max_length=300)
    thread_id: str | None = Field(default=None, min_length=1, max_length=300)


class TimelineRef(BaseModel):
    type: str
    id: str | None


class TimelineItemOut(BaseModel):
    id: str = Field(description='"e<entry id>" for stored entries, "r<action id>.<step>" for remediation.')
    at: datetime
    kind: str
    source: str
    title: str
    body: dict[str, Any]
    ref: TimelineRef | None
    count: int
    actor: str | None


class TimelinePageOut(BaseModel):
    incident_id: int
    items: list[TimelineItemOut]
    next_cursor: str | None
    total: int
    counts: dict[str, int]


class ReportFormat(StrEnum):
    JSON = "json"
    MARKDOWN = "markdown"
    HTML = "html"


class ReportOut(BaseModel):
    incident_id: int
    summary: str
    generated_at: datetime
    timeline_total: int
    facts: dict[str, Any]
