"""On-call: definitions (responders, schedules, policies, routes, channels), escalations, pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.models.types import JSONType, UTCDateTime


class OncallDefinition(SQLModel, table=True):
    """One named piece of on-call configuration, stored as its validated spec (schedules as code).

    ``kind`` is responder, schedule, policy, route or channel; the spec's shape is validated by
    ``oncall.spec`` before it is stored, so readers can trust it.
    """

    __table_args__ = (UniqueConstraint("kind", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20, index=True)
    name: str = Field(max_length=200)
    spec: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    version: int = 1
    updated_by: str = Field(default="", max_length=200)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Escalation(SQLModel, table=True):
    """One incident's run through an escalation policy, with the policy as it was when it started."""

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", unique=True)
    policy: str = Field(max_length=200)
    route: str = Field(default="", max_length=200)
    # The policy spec at start: editing the policy later changes nothing already running.
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    status: str = Field(default="active", max_length=20, index=True)
    # The next step to fire (index into snapshot["steps"]) and how many times the policy has looped.
    step: int = 0
    loop: int = 0
    next_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_by: str | None = Field(default=None, max_length=200)
    acknowledged_via: str | None = Field(default=None, max_length=20)


class Page(SQLModel, table=True):
    """The outbox: one message to one responder (or channel) on one medium, delivered with retries."""

    id: int | None = Field(default=None, primary_key=True)
    escalation_id: int = Field(foreign_key="escalation.id", index=True)
    incident_id: int = Field(index=True)
    step: int = 0
    loop: int = 0
    responder: str = Field(default="", max_length=200)
    medium: str = Field(max_length=20)
    address: str = Field(default="", max_length=500)
    status: str = Field(default="pending", max_length=20, index=True)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    last_error: str = Field(default="", max_length=500)
    provider_ref: str = Field(default="", max_length=200)
    # sha256 of the acknowledgement token carried by the message (e-mail link); never the token.
    ack_token_hash: str | None = Field(default=None, max_length=64, unique=True)
    idempotency_key: str = Field(unique=True, max_length=400)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
