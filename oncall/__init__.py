"""On-call: schedules, escalation policies, routing, paging channels and the outbox.

Entry points for the service (each derived from database state, safe to repeat):

- ``start_escalations(session, settings, actor)``: route new P1/P2 incidents to a policy
- ``escalate_due(db, settings, now)``: fire the steps whose delay has passed into the outbox
- ``deliver_pages(db, settings, now)``: send due pages (Slack, e-mail, SMS, voice, webhook)
- ``run_due(db, settings, now)``: all three, what the cycle's ``escalations`` stage calls (``pipeline.stages``)
- ``acknowledge(session, incident_id=, actor=, via=)``: stop an escalation
- ``oncall.actions.act(session, action, ...)``: acknowledge / resolve / reassign / escalate now, from any channel
"""

from oncall.escalation import acknowledge, acknowledge_by_token, escalate_due, start_escalations
from oncall.outbox import deliver_pages
from oncall.service import run_due

__all__ = [
    "acknowledge",
    "acknowledge_by_token",
    "deliver_pages",
    "escalate_due",
    "run_due",
    "start_escalations",
]
