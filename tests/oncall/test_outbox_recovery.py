"""A page whose sender never heard back is reconciled with the provider, not sent blind again.

Twilio (the simulator) takes longer to create the SMS than our client waits: the attempt is
recorded as unanswered and the page stays claimed until its lease ends; then the outbox finds the
SMS carrying the page's token through Twilio's API and records it as sent — one SMS, not two."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlmodel import select

from core.models.oncall import Page
from oncall import deliver_pages, escalate_due, start_escalations
from oncall.outbox import LEASE
from tests.oncall.conftest import OPENED_BEFORE_T0, T0, oncall_document
from tests.oncall.test_escalation import twilio


def _wait_for(condition, what: str, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return value


def test_an_unanswered_sms_attempt_is_found_at_twilio_and_not_sent_again(
    db, settings, paging_sim, smtp, configure, make_incident
):
    configure(oncall_document(paging_sim, smtp[0].port))
    make_incident(**OPENED_BEFORE_T0)
    with db.session() as session:
        start_escalations(session, settings, now=T0)
    escalate_due(db, settings, T0)
    paging_sim.set_faults("slow=1:12@twilio:messages")  # our client gives up after 10 s
    report = deliver_pages(db, settings, T0)
    assert len(report.sent) == 1 and len(report.failed) == 1  # Slack went; the SMS is unanswered
    with db.session(readonly=True) as session:
        sms = session.exec(select(Page).where(Page.medium == "sms")).one()
    assert sms.status == "sending" and sms.attempts == 1
    paging_sim.set_faults(None)
    _wait_for(lambda: twilio(paging_sim).messages.list(), "Twilio to create the SMS after all")
    # Within the lease nothing happens; after it the outbox asks Twilio and finds the SMS.
    assert deliver_pages(db, settings, T0 + LEASE / 2).sent == []
    assert deliver_pages(db, settings, T0 + LEASE + timedelta(seconds=1)).sent == [sms.id]
    [message] = twilio(paging_sim).messages.list()
    with db.session(readonly=True) as session:
        sms = session.exec(select(Page).where(Page.medium == "sms")).one()
    assert (sms.status, sms.attempts, sms.provider_ref) == ("sent", 1, message.sid)
    assert deliver_pages(db, settings, T0 + timedelta(minutes=5)).sent == []
    assert len(twilio(paging_sim).messages.list()) == 1
