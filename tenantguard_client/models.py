"""What the API answers, as pydantic models. Unknown fields are kept (``model_extra``), so a newer
server never breaks an older client."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Page(_Model, Generic[T]):
    """One page; `next_cursor` is None on the last one."""

    items: list[T]
    next_cursor: str | None = None


class Incident(_Model):
    id: int
    title: str
    incident_type: str | None = None
    status: str
    priority: str
    severity: str
    assignee: str | None = None
    entities: dict[str, Any] = Field(default_factory=dict)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    created_at: datetime
    updated_at: datetime | None = None
    merged_into_id: int | None = None
    finding_count: int = 0


class Finding(_Model):
    id: int
    title: str
    severity: str
    status: str
    kind: str | None = None
    rule_id: str | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None


class IncidentDetail(Incident):
    findings: list[Finding] = Field(default_factory=list)


class TimelineItem(_Model):
    id: str
    at: datetime
    kind: str
    source: str | None = None
    title: str
    body: dict[str, Any] = Field(default_factory=dict)
    count: int = 1
