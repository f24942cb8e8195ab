"""Personal notification rules (P1: Slack and SMS at once, a call after 5 minutes unless
acknowledged) and quiet hours (a P3 page waits until they end), through the real clients."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from core.audit import Actor, Channel
from core.models.oncall import Page
from oncall import acknowledge, run_due
from tests.oncall.conftest import OPENED_BEFORE_T0, T0, oncall_document
from tests.oncall.test_escalation import twilio


def _document(handle, smtp_port: int) -> dict:
    document = oncall_document(handle, smtp_port, delays=(120, 120, 120))
    alice = document["responders"][0]
    alice.pop("notify")
    alice["rules"] = [
        {"priorities": ["P1"], "notify": ["slack", "sms"]},
        {"priorities": ["P1"], "notify": ["voice"], "after_minutes": 5},
        {"priorities": ["P3"], "notify": ["email"]},
    ]
    # T0 is 11:00 in Paris: quiet from 10:00 to 12:00 for P3 (and P4) pages
    alice["quiet_hours"] = {"start": "10:00:00", "end": "12:00:00"}
    document["routes"][0]["priorities"] = ["P1", "P2", "P3"]
    return document


def test_p1_rules_page_slack_and_sms_at_once_and_call_five_minutes_later(
    db, settings, paging_sim, smtp, configure, make_incident
):
    # P1: Slack and SMS at once, a call five minutes later unless acknowledged
    document = _document(paging_sim, smtp[0].port)
    configure(document)
    make_incident(**OPENED_BEFORE_T0)

    run_due(db, settings, now=T0)
    assert len(twilio(paging_sim).messages.list(to="+15550000001")) == 1
    assert twilio(paging_sim).calls.list() == []  # the call waits five minutes
    run_due(db, settings, now=T0 + timedelta(minutes=5))
    assert [c.to for c in twilio(paging_sim).calls.list()] == ["+15550000001"]


def test_a_delayed_medium_is_cancelled_by_an_acknowledgement(
    db, settings, paging_sim, smtp, configure, make_incident
):
    document = _document(paging_sim, smtp[0].port)
    document["responders"][0]["rules"] = [
        {"priorities": ["P1"], "notify": ["voice"], "after_minutes": 5},
    ]
    configure(document)
    incident = make_incident(**OPENED_BEFORE_T0).id
    run_due(db, settings, now=T0)
    with db.session() as session:
        acknowledge(
            session,
            incident_id=incident,
            actor=Actor("principal:alice", Channel.API),
            via="api",
            now=T0 + timedelta(minutes=1),
        )
    run_due(db, settings, now=T0 + timedelta(minutes=10))
    assert twilio(paging_sim).calls.list() == []
    with db.session(readonly=True) as session:
        [page] = session.exec(select(Page)).all()
    assert (page.medium, page.status) == ("voice", "cancelled")


def test_quiet_hours_hold_a_low_priority_page_until_they_end(
    db, settings, paging_sim, smtp, configure, make_incident
):
    controller, mailbox = smtp
    configure(_document(paging_sim, controller.port))
    make_incident(priority="P3", **OPENED_BEFORE_T0)

    run_due(db, settings, now=T0)  # 11:00 Paris: quiet until 12:00
    assert mailbox.messages == []
    run_due(db, settings, now=T0 + timedelta(minutes=59))
    assert mailbox.messages == []
    run_due(db, settings, now=T0 + timedelta(minutes=60))
    [mail] = mailbox.messages
    assert mail["To"] == "alice@example.com"
