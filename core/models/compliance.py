"""Compliance records: risk acceptance (a failing check accepted for a while, four eyes), legal holds
and data-subject erasure requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.models.types import JSONType, UTCDateTime


class ComplianceException(SQLModel, table=True):
    """An exception to one check on one connection (or all of them), from approval until it expires.

    It is in force while approved, before `expires_at` and not expired early (`expired_at`); the
    requester never approves their own (four eyes). Rows are never deleted: reports "as of" a past
    date show the exceptions in force then.
    """

    __table_args__ = (Index("ix_compliance_exception_check", "check_id", "connection_id"),)

    id: int | None = Field(default=None, primary_key=True)
    check_id: str = Field(max_length=200)
    connection_id: int | None = Field(default=None, foreign_key="connection.id")
    owner: str = Field(max_length=200)
    reason: str = Field(max_length=2000)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    requested_by: str = Field(max_length=200)
    requested_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    approved_by: str | None = Field(default=None, max_length=200)
    approved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    expired_by: str | None = Field(default=None, max_length=200)
    expired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    expiry_reason: str | None = Field(default=None, max_length=2000)
    expiry_announced_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LegalHold(SQLModel, table=True):
    """A legal hold on one incident (`kind` "incident", `target` its id) or one person (`kind`
    "person", `target` their primary e-mail): while it is not released, retention and erasure delete
    nothing linked to it. Rows are never deleted, so a hold's whole life stays on record."""

    __table_args__ = (Index("ix_legal_hold_target", "kind", "target"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)
    target: str = Field(max_length=320)
    reason: str = Field(max_length=2000)
    placed_by: str = Field(max_length=200)
    placed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    released_by: str | None = Field(default=None, max_length=200)
    released_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    release_reason: str | None = Field(default=None, max_length=2000)


class ErasureRequest(SQLModel, table=True):
    """A data subject's erasure, asked by one person and carried out when a second approves (four
    eyes); `result` counts what was deleted or pseudonymised per table."""

    id: int | None = Field(default=None, primary_key=True)
    person: str = Field(max_length=320, index=True)
    reason: str = Field(max_length=2000)
    requested_by: str = Field(max_length=200)
    requested_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    approved_by: str | None = Field(default=None, max_length=200)
    executed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
