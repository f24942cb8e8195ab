"""How the timeline stage behaves: grouping window, conversation window, SLAs, notification target.

Values come from the ``timeline`` section of :class:`core.settings.Settings` (environment
``TENANTGUARD_TIMELINE_*``) and its ``public_url``; the defaults here match the settings' defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from core.models.enums import Priority
from core.settings import Settings


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
    # The same rule about at least `mass_min_people` people within `mass_window` is a mass change
    # (a rollout): one digest line instead of an incident each (see timeline.noise).
    mass_window: timedelta = timedelta(hours=6)
    mass_min_people: int = 10
    # A day's digest is built this long after the day ended (late findings still join incidents).
    digest_grace: timedelta = timedelta(hours=1)
    sla: Mapping[Priority, SlaTarget] = field(default_factory=lambda: dict(DEFAULT_SLA))
    # Where notifications go; None: the first enabled Slack connection with `notify_channel` in its config.
    notify_channel: str | None = None
    notify_connection: str | None = None
    public_url: str = "http://127.0.0.1:8000"

    @classmethod
    def from_settings(cls, settings: Settings | None) -> TimelineConfig:
        """The stage's behaviour from the `timeline` section (TENANTGUARD_TIMELINE_*) and `public_url`."""
        if settings is None:
            return cls()
        section = settings.timeline
        sla = {
            Priority.P1: SlaTarget(section.sla_p1_acknowledge, section.sla_p1_resolve),
            Priority.P2: SlaTarget(section.sla_p2_acknowledge, section.sla_p2_resolve),
            Priority.P3: SlaTarget(section.sla_p3_acknowledge, section.sla_p3_resolve),
            Priority.P4: SlaTarget(section.sla_p4_acknowledge, section.sla_p4_resolve),
        }
        return cls(
            group_window=section.group_window,
            conversation_before=section.conversation_before,
            conversation_after=section.conversation_after,
            sla=sla,
            notify_channel=section.notify_channel,
            notify_connection=section.notify_connection,
            public_url=settings.public_url,
        )
