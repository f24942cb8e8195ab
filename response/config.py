"""The response configuration: one YAML/TOML file, validated through ``core.loading`` at each read.

Where it is: the ``response_file`` setting (``TENANTGUARD_RESPONSE_FILE``), else ``<data dir>/response.yaml``.
No file means response is off: the stage does nothing (no channel, reminder, ticket or draft) and
the alert endpoint refuses everything; the status page shows the defaults (no components). An
empty file turns it on with the defaults (channels on P1/P2 through the first enabled Slack
connection, updates every 30/60/240 minutes for P1/P2/P3, no Jira, no intake secret). Secrets are ``env:``/``file:`` references resolved when used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.loading import load_path, validate
from core.models.enums import Priority, Severity
from response.errors import ResponseConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelsConfig(_Strict):
    enabled: bool = True
    priorities: tuple[Priority, ...] = (Priority.P1, Priority.P2)
    slack_connection: str = ""  # the Connection's name; empty: the first enabled Slack connection
    prefix: str = Field(default="inc", pattern=r"^[a-z0-9][a-z0-9-]{0,20}$")
    invite: tuple[str, ...] = ()  # Slack user ids always invited (the security lead, ...)
    private: bool = True
    # The Slack app's signing secret (env:/file: reference): slash commands are refused without it.
    signing_secret_ref: str = ""


class UpdatesConfig(_Strict):
    # Minutes between stakeholder updates by priority; a priority not listed gets no reminders.
    cadence_minutes: dict[Priority, float] = Field(
        default_factory=lambda: {Priority.P1: 30.0, Priority.P2: 60.0, Priority.P3: 240.0}
    )


class Component(_Strict):
    name: str = Field(min_length=1, max_length=100)
    description: str = ""


class WebhookTarget(_Strict):
    url: str = Field(pattern=r"^https?://")
    # Standard Webhooks secret (env:/file: reference): ``whsec_…`` base64, or any other string.
    secret_ref: str = Field(min_length=1)


class Subscribers(_Strict):
    emails: tuple[str, ...] = ()
    webhooks: tuple[WebhookTarget, ...] = ()


class StatusPageConfig(_Strict):
    title: str = "Service status"
    components: tuple[Component, ...] = ()
    # Told of every published public update (e-mail through `smtp`, signed webhooks).
    subscribers: Subscribers = Subscribers()


class SmtpConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = "status@tenantguard.local"
    starttls: bool = False
    username: str = ""
    password_ref: str = ""


class WebhooksConfig(_Strict):
    """Generic signed webhooks for other systems (ticketing, chat, SOAR): every timeline line of an
    urgent incident, signed the Standard Webhooks way."""

    targets: tuple[WebhookTarget, ...] = ()
    priorities: tuple[Priority, ...] = (Priority.P1, Priority.P2)


class MailboxConfig(_Strict):
    """The intake mailbox (IMAP): every unseen mail there is a report (the thread is its dedup key)."""

    host: str = Field(min_length=1)
    port: int = Field(default=993, ge=1, le=65535)
    ssl: bool = True
    user: str = Field(min_length=1)
    password_ref: str = Field(min_length=1)
    folder: str = "INBOX"
    severity: Severity = Severity.HIGH
    max_per_run: int = Field(default=50, ge=1, le=1000)


class IntakeConfig(_Strict):
    # Standard Webhooks secret (``whsec_…`` base64, or any other string used as its bytes).
    secret_ref: str = ""
    # The routing key (env:/file: reference) that PagerDuty Events v2 senders put in the body and
    # Alertmanager sends as its bearer credential; those unsigned endpoints refuse all without it.
    routing_key_ref: str = ""
    # How long an alert's dedup key keeps folding repeats into one finding.
    dedup_hours: float = Field(default=24.0, gt=0)
    mailbox: MailboxConfig | None = None


class JiraConfig(_Strict):
    url: str = Field(min_length=1)
    project: str = Field(min_length=1, max_length=20)
    user: str = Field(min_length=1)
    token_ref: str = Field(min_length=1)
    issue_type: str = "Task"
    priorities: tuple[Priority, ...] = (Priority.P1, Priority.P2)
    # Jira status (lower case) -> our incident status, for the way back.
    inbound: dict[str, str] = Field(
        default_factory=lambda: {"in progress": "triaged", "done": "resolved", "closed": "closed"}
    )
    # Our incident status -> the Jira transition to run.
    outbound: dict[str, str] = Field(
        default_factory=lambda: {"triaged": "In Progress", "contained": "In Progress", "resolved": "Done"}
    )
    # Notes posted to the issue as comments, and the issue's comments mirrored onto the timeline.
    comments: bool = True
    # An issue per remediation step (under the incident's issue), its status following the step's.
    steps: bool = True
    step_issue_type: str = "Sub-task"
    # Remediation step status -> the Jira transition to run on the step's issue.
    step_outbound: dict[str, str] = Field(
        default_factory=lambda: {"running": "In Progress", "succeeded": "Done", "skipped": "Done"}
    )


class ResponseConfig(_Strict):
    public_url: str = "http://127.0.0.1:8000"
    channels: ChannelsConfig = ChannelsConfig()
    updates: UpdatesConfig = UpdatesConfig()
    status_page: StatusPageConfig = StatusPageConfig()
    intake: IntakeConfig = IntakeConfig()
    jira: JiraConfig | None = None
    smtp: SmtpConfig | None = None
    webhooks: WebhooksConfig = WebhooksConfig()
    # A postmortem template (Jinja2, Markdown) replacing the shipped one.
    postmortem_template: str = ""
    # Who must review the postmortem before it is signed off (principal names as the audit trail
    # spells them, "principal:alice"); empty: any one reviewer signs it off.
    postmortem_reviewers: tuple[str, ...] = ()


def config_path(settings: Any) -> Path:
    explicit = getattr(settings, "response_file", None)
    if explicit:
        return Path(explicit)
    return Path(getattr(settings, "data_dir", ".")) / "response.yaml"


def configured(settings: Any) -> bool:
    """Whether response is on (its configuration file exists)."""
    return config_path(settings).exists()


def load_config(settings: Any) -> ResponseConfig:
    """The configuration in force (read at each call, so an edited file takes effect at once)."""
    path = config_path(settings)
    if not path.exists():
        return ResponseConfig()
    loaded = load_path(path)
    if not loaded.documents or loaded.documents[0] is None:
        return ResponseConfig()
    return validate(ResponseConfig, loaded, error=ResponseConfigError)
