"""Response around an incident: its channel, stakeholder updates, ticket, postmortem draft, drills."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.models.types import EncryptedText, JSONType, UTCDateTime


class IncidentResponse(SQLModel, table=True):
    """What the response side did for one incident (written by ``response``; one row per incident).

    Each part keeps its own progress here so that the response stage is derived from database state:
    the channel and its pinned summary, how far its messages were mirrored, when the next
    stakeholder update is due, the Jira issue and the status last synced each way, the postmortem.
    """

    __tablename__ = "incident_response"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", unique=True)
    drill: bool = False
    channel_id: str = Field(default="", max_length=50)
    channel_name: str = Field(default="", max_length=80)
    summary_ts: str = Field(default="", max_length=40)
    summary_hash: str = Field(default="", max_length=64)
    # Slack ts of the newest channel message already mirrored onto the timeline.
    mirrored_ts: str = Field(default="", max_length=40)
    posted_entry_id: int = 0  # newest timeline entry already posted into the channel
    own_ts: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    channel_error: str = Field(default="", max_length=500)
    # Slack user ids invited to the channel so far (a responder paged or an assignee given later is
    # invited when the channel is next refreshed).
    invited: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    update_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    jira_key: str = Field(default="", max_length=50)
    jira_status: str = Field(default="", max_length=100)  # the status as last read
    jira_pushed_status: str = Field(default="", max_length=20)  # our status last pushed to Jira
    jira_error: str = Field(default="", max_length=500)
    # Jira comment ids already mirrored onto the timeline or posted by us (never mirrored back).
    jira_comment_ids: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    jira_noted_entry_id: int = 0  # newest note already posted to the issue as a comment
    # Remediation step id -> {"key": its Jira issue, "pushed": the step status last pushed,
    # "status": the status as last read}.
    jira_steps: dict[str, dict[str, str]] = Field(
        default_factory=dict, sa_column=Column(JSONType, nullable=False)
    )
    webhook_entry_id: int = 0  # newest timeline entry already delivered to the signed webhooks
    # Postmortem reviews: [{"reviewer", "at", "comment"}]; signed off when every required one signed.
    postmortem_reviews: list[dict[str, str]] = Field(
        default_factory=list, sa_column=Column(JSONType, nullable=False)
    )
    postmortem_signed_off_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    postmortem_markdown: str = Field(default="", sa_column=Column(EncryptedText, nullable=False))
    postmortem_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class StakeholderUpdate(SQLModel, table=True):
    """One update about an incident for one audience; public ones show on the status page once
    approved (published) by someone allowed to publish."""

    __tablename__ = "stakeholder_update"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    audience: str = Field(max_length=20)  # responders | executives | customers
    status: str = Field(default="draft", max_length=20)  # draft | published
    public: bool = False
    state: str = Field(default="investigating", max_length=20)  # status-page incident state
    components: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    body: str = Field(default="", sa_column=Column(EncryptedText, nullable=False))
    author: str = Field(max_length=200)
    approved_by: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    posted: bool = False  # announced in the incident channel
    # When the status page's subscribers (e-mail, webhooks) were told of it (public, published).
    subscribers_notified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Drill(SQLModel, table=True):
    """A simulated incident run through the response flow, timed, with its report."""

    id: int | None = Field(default=None, primary_key=True)
    scenario: str = Field(max_length=100)
    dedup_key: str = Field(max_length=200, unique=True)
    started_by: str = Field(max_length=200)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    incident_id: int | None = Field(default=None, foreign_key="incident.id")
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    report: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
