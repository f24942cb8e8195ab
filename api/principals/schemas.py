"""Shapes for principals. A token appears in exactly one response: the one that created it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from core.models import Role

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,189}$"


class PrincipalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    role: Role
    token_prefix: str = Field(description="Public key id of the token (its first characters).")
    person: str = Field(description="The one person behind this principal; four eyes compares persons.")
    created_by: str = Field(
        description="The person who created it (never an independent approver of theirs)."
    )
    disabled: bool
    created_at: datetime
    last_used_at: datetime | None
    disabled_at: datetime | None


class PrincipalCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "alice", "role": "analyst"}]}
    )

    name: str = Field(pattern=NAME_PATTERN)
    role: Role
    person: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="The person behind it (an e-mail or directory name); default: the principal's name. "
        "All principals of one person, and their single sign-on user of that name, are one approver.",
    )


class PrincipalCreated(PrincipalOut):
    token: str = Field(description="Shown only now; store it in a secret manager. Send as 'Bearer <token>'.")
