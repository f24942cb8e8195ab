"""How the timeline stage behaves: grouping window, conversation window, SLAs, notification target.

Values come from :class:`core.settings.Settings` when it has a ``timeline_*`` / ``notify_*`` field
of the same meaning, else from the defaults here, so the stage works with no configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from core.models.enums import Priority


@dataclass(frozen=True)
class SlaTarget:
    """How fast an incident of one priority must be acknowledged and resolved."""

    acknowledge: timedelta
    resolve: timedelta


DEFAULT_SLA: Mapping[Priority, SlaTarget] = {
    Priority.P1: SlaTarget(timedelta(minutes=15), timedelta(hours=4)),
    Priority.P2: SlaTarget(timedelta(hours=1), timedelta(hours=24)),
    Priority.P3: SlaTarget(timedelta(hours=8), timedelta(days=3)),
    Priority.P4: SlaTarget(timedelta(hours=24), timedelta(days=7)),
}


@dataclass(frozen=True)
class TimelineConfig:
    # A finding joins an incident when it shares a key with it and starts no later than this
    # after the incident's last activity (the window slides as findings join).
    group_window: timedelta = timedelta(hours=24)
    # Conversations are looked for from this long before the first finding (a phishing mail, a
    # resignation notice) ...
    conversation_before: timedelta = timedelta(hours=48)
    # ... to this long after the last one.
    conversation_after: timedelta = timedelta(hours=72)
    # Repeats of the same evidence (same action, actor, source) closer than this collapse into one entry.
    evidence_gap: timedelta = timedelta(hours=1)
    # Above this many evidence entries the collapse gets coarser (source, then actor dropped).
    max_evidence_entries: int = 200
    # An IP used by at least this many people over at least `shared_ip_min_span` is shared
    # infrastructure (office egress, VPN), not an attacker's network: it does not group findings.
    shared_ip_min_people: int = 4
    shared_ip_min_span: timedelta = timedelta(days=2)
    sla: Mapping[Priority, SlaTarget] = field(default_factory=lambda: dict(DEFAULT_SLA))
    # Where notifications go; None: the first enabled Slack connection with `notify_channel` in its config.
    notify_channel: str | None = None
    notify_connection: str | None = None
    public_url: str = "http://127.0.0.1:8000"

    @classmethod
    def from_settings(cls, settings: Any | None) -> TimelineConfig:
        if settings is None:
            return cls()
        values: dict[str, Any] = {}
        hours = {
            "timeline_group_window_hours": "group_window",
            "timeline_conversation_before_hours": "conversation_before",
            "timeline_conversation_after_hours": "conversation_after",
        }
        for setting, name in hours.items():
            value = getattr(settings, setting, None)
            if value is not None:
                values[name] = timedelta(hours=float(value))
        for setting, name in (
            ("notify_slack_channel", "notify_channel"),
            ("notify_slack_connection", "notify_connection"),
            ("public_url", "public_url"),
        ):
            value = getattr(settings, setting, None)
            if value:
                values[name] = str(value)
        return cls(**values)
