"""A P1 walks a 3-step policy on a simulated clock, paged through real clients on loopback servers."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select
from twilio.rest import Client

from core.audit import Actor, Channel
from core.models.audit import AuditRecord
from core.models.oncall import Escalation, Page
from oncall import acknowledge, acknowledge_by_token, deliver_pages, escalate_due, run_due, start_escalations
from oncall.escalation import token_hash
from tests.oncall.conftest import OPENED_BEFORE_T0, T0, oncall_document


def twilio(handle) -> Client:
    from oncall.channels import _twilio
    from oncall.spec import Channels

    client, _ = _twilio(
        Channels.model_validate(
            {
                "twilio": {
                    "account_sid": handle.info["twilio.account_sid"],
                    "auth_token_ref": "env:TG_TEST_TWILIO_TOKEN",
                    "from_number": "+15559990000",
                    "base_url": handle.info["twilio.base_url"],
                }
            }
        )
    )
    return client


def dms(handle) -> list[dict]:
    return [c["target"] for c in handle.changes if c["action"] == "post_message"]


def actions(db, incident_id: int) -> list[str]:
    with db.session(readonly=True) as session:
        rows = session.exec(
            select(AuditRecord)
            .where(AuditRecord.object_id == str(incident_id))
            .order_by(col(AuditRecord.seq))
        ).all()
        return [r.action for r in rows if r.action.startswith("oncall.")]


def test_nobody_answers_so_the_page_walks_every_step_then_stops(
    db, settings, paging_sim, smtp, configure, make_incident
):
    controller, mailbox = smtp
    configure(oncall_document(paging_sim, controller.port))
    incident = make_incident(**OPENED_BEFORE_T0).id
    low = make_incident(priority="P3", **OPENED_BEFORE_T0).id

    report = run_due(db, settings, now=T0)
    assert report.started == 1 and report.outbox.sent and not report.outbox.failed
    # Step 1: the schedule's on-call (alice, first week) by SMS and Slack DM.
    [sms] = twilio(paging_sim).messages.list(to="+15550000001")
    assert f"Incident #{incident}" in sms.body and "/oncall/ack/" in sms.body
    [dm] = dms(paging_sim)
    assert dm["user"] and dm["channel"].startswith("D")
    assert twilio(paging_sim).calls.list() == []

    # Not yet due: nothing more.
    assert run_due(db, settings, now=T0 + timedelta(minutes=4)).sweep.fired == []
    # Five minutes without an acknowledgement: bob, by voice and e-mail.
    run_due(db, settings, now=T0 + timedelta(minutes=5))
    [call] = twilio(paging_sim).calls.list()
    assert call.to == "+15550000002"
    [mail] = mailbox.messages
    assert mail["To"] == "bob@example.com" and f"Incident #{incident}" in mail["Subject"]
    # Then the team channel, then the policy is exhausted.
    run_due(db, settings, now=T0 + timedelta(minutes=10))
    assert dms(paging_sim)[-1]["text"].startswith(f"[P1] Incident #{incident}")
    assert run_due(db, settings, now=T0 + timedelta(minutes=60)).sweep.fired == []
    with db.session(readonly=True) as session:
        escalation = session.exec(select(Escalation)).one()
        assert escalation.status == "exhausted"
        assert session.exec(select(Escalation).where(Escalation.incident_id == low)).first() is None
    assert actions(db, incident).count("oncall.step.fired") == 3
    assert actions(db, incident).count("oncall.page.sent") == 5


def test_an_acknowledgement_stops_the_escalation_and_records_mtta(
    db, settings, paging_sim, smtp, configure, make_incident
):
    controller, _ = smtp
    configure(oncall_document(paging_sim, controller.port))
    incident = make_incident(**OPENED_BEFORE_T0).id
    run_due(db, settings, now=T0)
    with db.session() as session:
        escalation = acknowledge(
            session,
            incident_id=incident,
            actor=Actor("principal:alice", Channel.API),
            via="api",
            now=T0 + timedelta(minutes=3),
        )
    assert escalation.status == "acknowledged" and escalation.acknowledged_by == "principal:alice"
    assert run_due(db, settings, now=T0 + timedelta(minutes=30)).sweep.fired == []
    assert twilio(paging_sim).calls.list() == []
    assert "oncall.escalation.acknowledged" in actions(db, incident)
    with db.session(readonly=True) as session:
        record = session.exec(
            select(AuditRecord).where(AuditRecord.action == "oncall.escalation.acknowledged")
        ).one()
    assert record.details["mtta_seconds"] == 180


def test_the_link_a_page_carries_acknowledges_as_its_responder(
    db, settings, paging_sim, smtp, configure, make_incident
):
    controller, _ = smtp
    configure(oncall_document(paging_sim, controller.port))
    incident = make_incident(**OPENED_BEFORE_T0).id
    run_due(db, settings, now=T0)
    [sms] = twilio(paging_sim).messages.list()
    token = sms.body.rsplit("/oncall/ack/", 1)[1].strip()
    with db.session(readonly=True) as session:
        # The database keeps only the token's hash.
        assert session.exec(select(Page).where(Page.ack_token_hash == token_hash(token))).one()
        assert session.exec(select(Page).where(Page.ack_token_hash == token)).first() is None
    with db.session() as session:
        escalation = acknowledge_by_token(session, token, via="link", now=T0 + timedelta(minutes=1))
    assert escalation.acknowledged_by == "responder:alice" and escalation.incident_id == incident


def test_editing_the_policy_mid_escalation_changes_nothing_running(
    db, settings, paging_sim, smtp, configure, make_incident
):
    controller, _ = smtp
    document = oncall_document(paging_sim, controller.port)
    configure(document)
    make_incident(**OPENED_BEFORE_T0)
    run_due(db, settings, now=T0)
    document["policies"][0]["steps"][1]["targets"] = [{"type": "responder", "name": "chen"}]
    configure(document)
    run_due(db, settings, now=T0 + timedelta(minutes=5))
    # Step 2 still pages bob, as the policy said when the escalation started.
    assert [c.to for c in twilio(paging_sim).calls.list()] == ["+15550000002"]


def test_a_failing_channel_is_retried_with_backoff_and_never_blocks_the_others(
    db, settings, paging_sim, smtp, configure, make_incident
):
    controller, _ = smtp
    configure(oncall_document(paging_sim, controller.port))
    make_incident(**OPENED_BEFORE_T0)
    paging_sim.set_faults("503=twilio")
    with db.session() as session:
        start_escalations(session, settings, now=T0)
    escalate_due(db, settings, T0)
    report = deliver_pages(db, settings, T0)
    assert len(report.sent) == 1 and len(report.failed) == 1  # Slack went, SMS waits
    assert deliver_pages(db, settings, T0 + timedelta(seconds=5)).sent == []  # backing off
    paging_sim.set_faults(None)
    assert len(deliver_pages(db, settings, T0 + timedelta(minutes=1)).sent) == 1
    assert len(twilio(paging_sim).messages.list()) == 1
    # Delivered once: a repeated sweep and outbox run send nothing again.
    escalate_due(db, settings, T0 + timedelta(minutes=1))
    assert deliver_pages(db, settings, T0 + timedelta(minutes=2)).sent == []


def test_two_sweeps_of_the_same_moment_fire_a_step_once(
    db, settings, paging_sim, smtp, configure, make_incident
):
    controller, _ = smtp
    configure(oncall_document(paging_sim, controller.port))
    make_incident(**OPENED_BEFORE_T0)
    with db.session() as session:
        start_escalations(session, settings, now=T0)
    with db.session() as session:
        assert start_escalations(session, settings, now=T0) == []
    assert len(escalate_due(db, settings, T0).fired) == 1
    assert escalate_due(db, settings, T0).fired == []
    with db.session(readonly=True) as session:
        assert len(session.exec(select(Page)).all()) == 2


def test_every_step_attempt_and_the_acknowledgement_are_on_the_incident_timeline(
    db, settings, paging_sim, smtp, configure, make_incident
):
    from core.models.incident import TimelineEntry

    controller, _ = smtp
    configure(oncall_document(paging_sim, controller.port))
    incident = make_incident(**OPENED_BEFORE_T0).id
    paging_sim.set_faults("503=twilio")
    run_due(db, settings, now=T0)  # level 1: Slack goes, the SMS fails
    paging_sim.set_faults(None)
    run_due(db, settings, now=T0 + timedelta(minutes=1))  # the SMS retried: sent
    with db.session() as session:
        acknowledge(
            session,
            incident_id=incident,
            actor=Actor("principal:alice", Channel.API),
            via="api",
            now=T0 + timedelta(minutes=2),
        )
    with db.session(readonly=True) as session:
        titles = [
            e.title
            for e in session.exec(
                select(TimelineEntry)
                .where(TimelineEntry.incident_id == incident, TimelineEntry.kind == "oncall")
                .order_by(col(TimelineEntry.at), col(TimelineEntry.id))
            ).all()
        ]
    assert titles[0] == "On-call level 1 paged: alice"
    first, second = sorted(titles[1:3])
    assert first == "Page to alice by slack sent (attempt 1)"
    assert second.startswith(
        "Page to alice by sms failed, will retry (attempt 1): Twilio refused the page: 503"
    )
    assert "Page to alice by sms sent (attempt 2)" in titles
    assert titles[-1] == "Page acknowledged by principal:alice via api after 2.0 min; escalation stopped"


def test_a_page_that_keeps_failing_is_dead_lettered_on_the_timeline_and_the_policy_goes_on(
    db, settings, paging_sim, smtp, configure, make_incident
):
    from core.models.incident import TimelineEntry
    from oncall.outbox import MAX_ATTEMPTS, backoff

    controller, _ = smtp
    configure(oncall_document(paging_sim, controller.port))
    incident = make_incident(**OPENED_BEFORE_T0).id
    paging_sim.set_faults("503=twilio")  # Twilio is down for good
    with db.session() as session:
        start_escalations(session, settings, now=T0)
    escalate_due(db, settings, T0)
    moment, dead = T0, []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        report = deliver_pages(db, settings, moment)
        assert len(report.sent) == (1 if attempt == 1 else 0)  # alice's Slack DM went at once
        dead += report.dead
        moment += backoff(attempt)
    assert deliver_pages(db, settings, moment + timedelta(hours=1)).failed == {}  # nothing left to try
    with db.session(readonly=True) as session:
        sms = session.exec(select(Page).where(Page.medium == "sms")).one()
        titles = [
            e.title
            for e in session.exec(
                select(TimelineEntry)
                .where(TimelineEntry.incident_id == incident, TimelineEntry.kind == "oncall")
                .order_by(col(TimelineEntry.at), col(TimelineEntry.id))
            ).all()
        ]
    assert dead == [sms.id] and (sms.status, sms.attempts) == ("dead", MAX_ATTEMPTS)
    failed = [t for t in titles if t.startswith("Page to alice by sms failed, will retry")]
    assert len(failed) == MAX_ATTEMPTS - 1
    assert titles[-1].startswith(
        f"Page to alice by sms abandoned (attempt {MAX_ATTEMPTS}): Twilio refused the page: 503"
    )
    assert actions(db, incident).count("oncall.page.abandoned") == 1
    # A dead page does not hold the policy back: level 2 still calls bob (Twilio still down: it waits).
    assert [step for _, _, step in escalate_due(db, settings, T0 + timedelta(minutes=5)).fired] == [2]
