"""Request and response shapes for findings (separate from the `Finding` table)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from core.models import FindingKind, FindingStatus, Provider, Severity
from core.pagination import MAX_ID


class FindingSort(StrEnum):
    NEWEST = "-first_seen"
    OLDEST = "first_seen"
    RECENTLY_SEEN = "-last_seen"
    LEAST_RECENTLY_SEEN = "last_seen"
    MOST_SEVERE = "-severity"
    LEAST_SEVERE = "severity"
    ID_DESC = "-id"
    ID_ASC = "id"


class FindingSummary(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 812,
                    "rule_id": "m365-impossible-travel",
                    "kind": "anomaly",
                    "severity": "high",
                    "confidence": 0.9,
                    "title": "Sign-ins from Lisbon and Singapore 20 minutes apart",
                    "provider": "m365",
                    "status": "open",
                    "entities": {"people": ["alice@example.com"], "ips": ["203.0.113.9"]},
                    "first_seen": "2025-03-02T08:15:00Z",
                    "last_seen": "2025-03-02T08:35:00Z",
                    "count": 2,
                    "mitre": ["T1078"],
                    "incident_id": 31,
                }
            ]
        },
    )

    id: int
    rule_id: str
    kind: str
    severity: str
    confidence: float
    title: str
    provider: str | None
    status: str
    entities: dict[str, list[Any]]
    first_seen: datetime
    last_seen: datetime
    count: int
    mitre: list[str]
    incident_id: int | None


class FindingDetail(FindingSummary):
    description: str
    evidence_event_ids: list[int]
    context: dict[str, Any]
    runbook: str
    dedup_key: str
    created_at: datetime
    updated_at: datetime


RuleId = Annotated[str, Field(min_length=1, max_length=200)]


class FindingFilters(BaseModel):
    """Every filter is optional; several values of one filter mean "any of them"."""

    provider: list[Provider] | None = Field(default=None, max_length=3)
    rule_id: list[RuleId] | None = Field(default=None, max_length=50)
    kind: list[FindingKind] | None = Field(default=None, max_length=6)
    severity: list[Severity] | None = Field(default=None, max_length=5)
    status: list[FindingStatus] | None = Field(default=None, max_length=3)
    person: str | None = Field(default=None, min_length=3, max_length=320, description="E-mail of a person.")
    incident_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    since: datetime | None = Field(default=None, description="Seen at or after (last_seen >= since).")
    until: datetime | None = Field(default=None, description="First seen before (first_seen < until).")
