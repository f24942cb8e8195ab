"""Who may call the API, with which role; tokens are stored only as hashes."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.models.enums import Role
from core.models.types import UTCDateTime


class ApiPrincipal(SQLModel, table=True):
    """An API caller. `token_prefix` is the public key id of the token; `token_hash` an HMAC of it."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=200)
    role: str = Field(default=Role.VIEWER, max_length=20)
    token_hash: str = Field(unique=True, max_length=128)
    token_prefix: str = Field(unique=True, index=True, max_length=16)
    slack_user_id: str | None = Field(default=None, max_length=50, index=True)
    # The one person behind this principal (an e-mail or a directory id): four eyes compares persons,
    # so two principals of one person are one approver. A single sign-on user's person is their name
    # claim, so a principal linked to it is the same person too.
    person: str = Field(default="", max_length=200, index=True)
    # Who created it (the creator saw its token): their approvals never count on the creator's steps.
    created_by: str = Field(default="", max_length=200)
    disabled: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
