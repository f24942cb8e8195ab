"""The response stage's tick: every part once, from database state (what `serve` runs each cycle)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.clock import as_utc, utcnow
from core.db import Database
from response.channels import ChannelReport, run_channels
from response.config import configured, load_config
from response.drills import finish_drills, link_drills
from response.mailbox import MailboxReport, poll_mailbox
from response.outbound import OutboundReport, run_outbound
from response.postmortem import draft_resolved
from response.tickets import TicketReport, run_tickets
from response.updates import UpdatesReport, remind_due

log = logging.getLogger(__name__)


@dataclass
class ResponseReport:
    mailbox: MailboxReport = field(default_factory=MailboxReport)
    drills_linked: int = 0
    channels: ChannelReport = field(default_factory=ChannelReport)
    updates: UpdatesReport = field(default_factory=UpdatesReport)
    tickets: TicketReport = field(default_factory=TicketReport)
    postmortems: list[int] = field(default_factory=list)
    drills_finished: list[int] = field(default_factory=list)
    outbound: OutboundReport = field(default_factory=OutboundReport)

    @property
    def errors(self) -> list[str]:
        return (
            [f"incident {i} channel: {e}" for i, e in self.channels.failed.items()]
            + [f"incident {i} Jira: {e}" for i, e in self.tickets.failed.items()]
            + ([self.mailbox.error] if self.mailbox.error else [])
            + self.outbound.failed
        )

    @property
    def idle(self) -> bool:
        c, t = self.channels, self.tickets
        return not (
            self.mailbox.read
            or self.drills_linked
            or c.created
            or c.summaries
            or c.posted
            or c.mirrored
            or c.invited
            or c.failed
            or self.updates.reminders
            or t.created
            or t.pushed
            or t.pulled
            or t.comments_posted
            or t.comments_mirrored
            or t.step_issues
            or t.step_moves
            or t.failed
            or self.postmortems
            or self.drills_finished
            or self.outbound.subscribers_told
            or self.outbound.events_sent
            or self.outbound.failed
        )


def run_due(db: Database, settings: Any = None, now: datetime | None = None) -> ResponseReport:
    """The intake mailbox read first, drills linked (so every part sees them as drills), then
    channels, update reminders, tickets, postmortem drafts for resolved incidents, finished drills,
    then the status page's subscribers and the signed webhooks told of what happened."""
    when = as_utc(now or utcnow())
    report = ResponseReport()
    if not configured(settings):
        return report
    config = load_config(settings)
    report.mailbox = poll_mailbox(db, config, when)
    report.drills_linked = link_drills(db)
    report.channels = run_channels(db, config, when)
    report.updates = remind_due(db, config, when)
    report.tickets = run_tickets(db, config, when)
    report.postmortems = draft_resolved(db, config, when)
    report.drills_finished = finish_drills(db, when)
    report.outbound = run_outbound(db, config, when)
    return report
