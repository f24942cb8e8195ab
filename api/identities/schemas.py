"""Shapes for people, accounts, risk factors and access grants."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class PersonSort(StrEnum):
    RISKIEST = "-risk_score"
    LEAST_RISKY = "risk_score"
    EMAIL = "primary_email"


class PersonSummary(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "primary_email": "alice@acme.com",
                    "display_name": "Alice",
                    "aliases": [],
                    "risk_score": 62.0,
                    "risk_level": "high",
                    "updated_at": "2025-03-02T08:00:00Z",
                }
            ]
        },
    )

    id: int
    primary_email: str
    display_name: str | None
    aliases: list[str]
    risk_score: float
    risk_level: str
    updated_at: datetime


class AccountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    person_id: int | None
    connection_id: int | None
    provider: str
    provider_user_id: str
    email: str | None
    display_name: str | None
    enabled: bool
    is_admin: bool
    admin_roles: list[str]
    mfa_registered: bool | None
    mfa_methods: list[str]
    is_guest: bool
    aliases: list[str]
    last_sign_in_at: datetime | None


class PersonDetail(PersonSummary):
    risk_factors: list[dict[str, Any]] = Field(description="Each factor with its family, weight and why.")
    accounts: list[AccountOut]


class GrantOut(BaseModel):
    kind: str = Field(description="file or app")
    provider: str
    resource_id: str
    resource_name: str | None
    principal: str | None = Field(description='An e-mail, "anyone", "domain:x", or null when unknown.')
    role: str
    via: str
    owner: str | None
    public: bool
    high_risk: bool
    scopes: list[str]
