"""People, and the accounts each one holds across providers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.models.types import JSONType, UTCDateTime


class Person(SQLModel, table=True):
    """One human, resolved across M365, Google and Slack accounts."""

    id: int | None = Field(default=None, primary_key=True)
    primary_email: str = Field(index=True, unique=True, max_length=320)
    display_name: str | None = Field(default=None, max_length=300)
    aliases: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    risk_score: float = 0.0
    risk_level: str = Field(default="low", max_length=20)
    risk_factors: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONType, nullable=False)
    )
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Account(SQLModel, table=True):
    """One account in one provider, keeping the provider's own ids."""

    __table_args__ = (UniqueConstraint("connection_id", "provider_user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    connection_id: int | None = Field(default=None, foreign_key="connection.id")
    provider: str = Field(max_length=20)
    provider_user_id: str = Field(max_length=300)
    email: str | None = Field(default=None, index=True, max_length=320)
    display_name: str | None = Field(default=None, max_length=300)
    external_id: str | None = Field(default=None, max_length=300)
    enabled: bool = True
    is_admin: bool = False
    admin_roles: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    mfa_registered: bool | None = None
    mfa_methods: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    is_guest: bool = False
    # Verified addresses and aliases the provider lists for this account (lower-case).
    aliases: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    # Facts risk scoring uses that are not columns: legacy auth in use, strongest MFA method, ...
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    last_sign_in_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
