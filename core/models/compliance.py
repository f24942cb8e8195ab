"""Risk acceptance: a failing posture check accepted, for a while, by a named owner, approved by a second person."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.models.types import UTCDateTime


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
