"""Shapes for frameworks, framework reports (JSON) and exceptions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class FrameworkOut(BaseModel):
    id: str
    name: str
    version: str
    source: str
    controls: int
    controls_mapped: int


class ControlOut(BaseModel):
    id: str
    title: str
    posture_checks: list[str]
    detection_rules: list[str]


class ExceptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    check_id: str = Field(min_length=1, max_length=200, description="The posture check accepted as failing.")
    connection_id: int | None = Field(default=None, ge=1, description="One tenant; omit for every tenant.")
    owner: str = Field(min_length=1, max_length=200, description="Who is accountable for the accepted risk.")
    reason: str = Field(min_length=10, max_length=2000)
    expires_at: datetime = Field(description="When the acceptance ends (at most 366 days ahead).")


class ExpireIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)


class ExceptionOut(BaseModel):
    id: int
    check_id: str
    connection_id: int | None
    owner: str
    reason: str
    expires_at: str
    requested_by: str
    requested_at: str
    approved_by: str | None
    approved_at: str | None
    expired_by: str | None
    expired_at: str | None
    expiry_reason: str | None
    state: str

    @classmethod
    def of(cls, data: dict[str, Any], state: str) -> ExceptionOut:
        return cls(**data, state=state)


class HoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["incident", "person"] = Field(description="What is held: one incident or one person.")
    target: str = Field(
        min_length=1, max_length=320, description="The incident's id, or the person's e-mail address."
    )
    reason: str = Field(min_length=5, max_length=2000, description="The matter or case the hold is for.")


class ReleaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)


class HoldOut(BaseModel):
    id: int
    kind: str
    target: str
    reason: str
    placed_by: str
    placed_at: str
    released_by: str | None
    released_at: str | None
    release_reason: str | None
    active: bool


class ErasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person: str = Field(
        min_length=3, max_length=320, description="Any e-mail address the person is known by."
    )
    reason: str = Field(min_length=5, max_length=2000, description="The request this answers.")


class ErasureOut(BaseModel):
    id: int
    person: str
    reason: str
    requested_by: str
    requested_at: str
    approved_by: str | None
    executed_at: str | None
    result: dict[str, int]
    state: str
