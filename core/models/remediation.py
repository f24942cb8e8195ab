"""Proposed fixes and the human decisions on them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.models.enums import ActionStatus
from core.models.types import EncryptedText, JSONType, UTCDateTime


class RemediationAction(SQLModel, table=True):
    """One step of an incident's plan: an action from the catalogue applied to one target."""

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    action: str = Field(max_length=100)
    provider: str = Field(max_length=20)
    connection_id: int | None = Field(default=None, foreign_key="connection.id")
    target: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    phase: str = Field(max_length=20)
    position: int = 0
    reason: str = ""
    risk: str = Field(default="low", max_length=20)
    status: str = Field(default=ActionStatus.PROPOSED, index=True, max_length=20)
    requested_by: str = Field(max_length=200)
    idempotency_key: str = Field(unique=True, max_length=300)
    depends_on: list[int] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    provider_response_ids: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    # Who or what the step acts on (an e-mail, a file, an app), for display and dependency grouping.
    subject: str = Field(default="", max_length=500)
    blast_radius: str = Field(default="single_object", max_length=20)
    reversible: bool = False
    approvals_required: int = 1
    # Hash of what would be done (action, connection, target, params): an approval is only good
    # for the fingerprint it was given on, so a re-planned step with new parameters needs a new one.
    fingerprint: str = Field(default="", max_length=64)
    # Bumped each time the fingerprint changes (a re-plan that changes the step): an approval counts
    # only on the version it was given on, so a step changed and changed back needs approving again.
    version: int = 1
    finding_ids: list[int] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    playbooks: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    executed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    verified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    rolled_back_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Approval(SQLModel, table=True):
    """A principal's approve/reject decision on one action; it expires."""

    id: int | None = Field(default=None, primary_key=True)
    action_id: int = Field(foreign_key="remediationaction.id", index=True)
    principal: str = Field(max_length=200)
    decision: str = Field(max_length=10)
    comment: str = Field(default="", sa_column=Column(EncryptedText, nullable=False))  # encrypted at rest
    via: str = Field(default="api", max_length=20)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The action fingerprint this decision was made on (see RemediationAction.fingerprint).
    fingerprint: str = Field(default="", max_length=64)
    step_version: int = 1
    # The person behind the principal when deciding: four eyes counts one approval per person.
    person: str = Field(default="", max_length=200)
    # The principal's role when deciding, kept for the record.
    role: str = Field(default="", max_length=20)
    # A channel's own id for the request (e.g. Slack action_ts + trigger), unique so a replay is refused.
    request_ref: str | None = Field(default=None, unique=True, max_length=300)
