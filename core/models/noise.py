"""What keeps the ordinary out of the incident queue: daily digests and declared change windows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.models.types import JSONType, UTCDateTime


class Digest(SQLModel, table=True):
    """One day's low-signal findings of one tenant that joined no incident, in explained lines.

    Built once the day has ended (see :mod:`timeline.digest`); each finding it holds points back
    at it (``Finding.digest_id``), so a finding is in one digest only.
    """

    __table_args__ = (UniqueConstraint("day", "connection_id", name="uq_digest_day_connection"),)

    id: int | None = Field(default=None, primary_key=True)
    # The tenant (connection) whose findings it holds, from the findings' evidence events; 0 for
    # findings no event ties to a connection (no foreign key: 0 is no connection).
    connection_id: int = Field(default=0, index=True)
    tenant: str = Field(default="", max_length=200)  # the connection's name when it was built
    # Start (00:00 UTC) of the day the digest covers; late findings of earlier days are included.
    day: datetime = Field(sa_type=UTCDateTime, index=True)
    finding_count: int = 0
    people_count: int = 0
    # [{"rule_id","title","severity","count","people","first_seen","last_seen","finding_ids",
    #   "mass": {...} | None, "changes": [...]}]
    items: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    summary: str = ""
    # What was posted about it: {"channel","ts","error","attempts","posted_at"}.
    notifications: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ChangeWindow(SQLModel, table=True):
    """A declared, approved change: drifts inside it by its actor are recorded, not escalated."""

    id: int | None = Field(default=None, primary_key=True)
    # The change's reference in the change process ("CHG-5102").
    reference: str = Field(max_length=200, index=True)
    # Who carries out the change (an email, as the providers' audit logs name actors).
    actor: str = Field(max_length=320, index=True)
    starts_at: datetime = Field(sa_type=UTCDateTime, index=True)
    ends_at: datetime = Field(sa_type=UTCDateTime, index=True)
    description: str = ""
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancelled_by: str | None = Field(default=None, max_length=200)


class GroupingLesson(SQLModel, table=True):
    """What an analyst's split taught the grouper: findings of `rules_apart` are not grouped with
    findings of `rules_kept` by `key` again (the same wrong merge is not repeated)."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=600, index=True)  # the grouping key that joined them ("person:...")
    rules_apart: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    rules_kept: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    incident_id: int = Field(index=True)  # the incident split
    split_incident_id: int  # the incident the split made
    created_by: str = Field(max_length=200)
    reason: str = ""
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
