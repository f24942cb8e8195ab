"""Done when, in one process (SQLite, and PostgreSQL with ``--db postgresql``): a P1 walks a 3-step
policy on the simulated clock. The first responder is paged by SMS and Slack DM (the push to her
phone) and does not answer; the second is called, and presses 1; the escalation stops before the
third level, MTTA is recorded for him and the policy, and every step, attempt and delivery state is
on the incident timeline and in the audit chain, which verifies.

The steps fire at simulated moments in the recent past (the walk starts six minutes ago), so the
keypress, which Twilio (the simulator) posts to our API on a real port and which is stamped with
the real clock, always comes after the call it answers; nothing waits for a step's delay."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import requests
from sqlmodel import col, select

from core.audit import verify_database
from core.clock import as_utc, utcnow
from core.models import AuditRecord
from core.models.incident import TimelineEntry
from core.models.oncall import Escalation, Page
from oncall import run_due
from oncall.service import mtta_report
from tests.oncall.conftest import slack_users
from tests.oncall.test_escalation import twilio
from tests.oncall.test_slack_buttons import live_api  # noqa: F401 - the fixture


def _document(handle: Any, api_url: str) -> dict[str, Any]:
    alice, bob = slack_users(handle, 2)
    return {
        "responders": [
            {"name": "alice", "phone": "+15550000001", "slack_user": alice, "notify": ["sms", "slack"]},
            {"name": "bob", "phone": "+15550000002", "slack_user": bob, "notify": ["voice"]},
        ],
        "policies": [
            {
                "name": "security",
                "steps": [
                    {"targets": [{"type": "responder", "name": "alice"}], "delay_minutes": 5},
                    {"targets": [{"type": "responder", "name": "bob"}], "delay_minutes": 5},
                    {"targets": [{"type": "slack_channel", "channel": "#security-ops"}], "delay_minutes": 5},
                ],
            }
        ],
        "routes": [{"name": "p1", "policy": "security", "priorities": ["P1"]}],
        "channels": {
            "public_url": api_url,
            "twilio": {
                "account_sid": handle.info["twilio.account_sid"],
                "auth_token_ref": "env:TG_TEST_TWILIO_TOKEN",
                "from_number": "+15559990000",
                "base_url": handle.info["twilio.base_url"],
            },
        },
    }


def _timeline(db, incident: int) -> list[str]:
    with db.session(readonly=True) as session:
        return [
            e.title
            for e in session.exec(
                select(TimelineEntry)
                .where(TimelineEntry.incident_id == incident, TimelineEntry.kind == "oncall")
                .order_by(col(TimelineEntry.at), col(TimelineEntry.id))
            ).all()
        ]


def _eventually(condition: Callable[[], Any], what: str, seconds: float = 60) -> Any:
    """Twilio's status callbacks arrive from its own thread: wait for them (on the condition only)."""
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def test_a_p1_walks_three_steps_and_stops_on_the_second_responders_keypress(
    db,
    settings,
    paging_sim,
    configure,
    make_incident,
    live_api,  # noqa: F811
):
    handle = paging_sim
    configure(_document(handle, live_api))
    incident = make_incident().id
    t0 = utcnow().replace(microsecond=0) - timedelta(minutes=6)

    # Level 1: alice by SMS and Slack DM at once.
    report = run_due(db, settings, now=t0)
    assert report.started == 1 and len(report.outbox.sent) == 2 and not report.outbox.failed
    [sms] = twilio(handle).messages.list(to="+15550000001")
    assert f"Incident #{incident}" in sms.body
    [dm] = [c["target"] for c in handle.changes if c["action"] == "post_message"]
    assert dm["channel"].startswith("D")
    # Not due yet at 4 minutes; she does not answer, so at 5 minutes level 2 calls bob.
    assert run_due(db, settings, now=t0 + timedelta(minutes=4)).sweep.fired == []
    assert twilio(handle).calls.list() == []
    assert len(run_due(db, settings, now=t0 + timedelta(minutes=5)).outbox.sent) == 1
    [call] = twilio(handle).calls.list(to="+15550000002")
    _eventually(lambda: "Call to bob (attempt 1): ringing" in _timeline(db, incident), "the call to ring")

    answer = requests.post(
        f"{handle.info['admin_url']}/twilio/calls/{call.sid}/digits", json={"digits": "1"}, timeout=60
    ).json()
    assert answer["status"] == 200 and "acknowledged" in answer["reply"], answer

    # Long after level 3 was due: nothing more fires, nothing more is sent.
    later = run_due(db, settings, now=t0 + timedelta(minutes=30))
    assert later.sweep.fired == [] and later.outbox.sent == []
    # The call's last callbacks came with the keypress; the SMS's from Twilio's thread, at their pace.
    assert "Call to bob (attempt 1): call ended" in _timeline(db, incident)
    _eventually(
        lambda: "SMS to alice (attempt 1): delivered to the phone" in _timeline(db, incident),
        "the SMS to be delivered",
    )
    assert len(twilio(handle).messages.list()) == 1 and len(twilio(handle).calls.list()) == 1
    assert len([c for c in handle.changes if c["action"] == "post_message"]) == 1

    with db.session(readonly=True) as session:
        escalation = session.exec(select(Escalation).where(Escalation.incident_id == incident)).one()
        pages = session.exec(select(Page).where(Page.incident_id == incident)).all()
        audit = session.exec(
            select(AuditRecord).where(AuditRecord.object_id == str(incident)).order_by(col(AuditRecord.seq))
        ).all()
        mtta = mtta_report(session, t0 - timedelta(hours=1), utcnow() + timedelta(hours=1))
        chain = verify_database(session)
    assert (escalation.status, escalation.acknowledged_by, escalation.acknowledged_via) == (
        "acknowledged",
        "responder:bob",
        "voice",
    )
    assert (escalation.step, escalation.next_at) == (2, None)  # level 3 never fired
    # MTTA: from the start of the escalation to the keypress, which came after the call was placed.
    [ack] = [r for r in audit if r.action == "oncall.escalation.acknowledged"]
    acknowledged_at = as_utc(escalation.acknowledged_at)
    assert acknowledged_at >= t0 + timedelta(minutes=5)
    assert ack.actor == "responder:bob" and ack.details["acknowledged_via"] == "voice"
    assert ack.details["mtta_seconds"] == round((acknowledged_at - t0).total_seconds(), 3)
    [policy] = mtta["policies"]
    assert (policy["policy"], policy["escalations"], policy["acknowledged"]) == ("security", 1, 1)
    assert policy["mtta_seconds"] == round(ack.details["mtta_seconds"], 1)
    assert [(r["responder"], r["acknowledged"]) for r in mtta["responders"]] == [("bob", 1)]

    # Every page went once and is recorded so.
    assert sorted((p.responder, p.medium, p.status, p.attempts) for p in pages) == [
        ("alice", "slack", "sent", 1),
        ("alice", "sms", "sent", 1),
        ("bob", "voice", "sent", 1),
    ]
    # In the audit chain: the start, both steps, every attempt, every delivery state, the keypress.
    actions = [r.action for r in audit if r.action.startswith("oncall.")]
    assert actions[:2] == ["oncall.escalation.started", "oncall.step.fired"]
    assert actions.count("oncall.step.fired") == 2
    assert sorted(r.details["medium"] for r in audit if r.action == "oncall.page.sent") == [
        "slack",
        "sms",
        "voice",
    ]
    deliveries = {
        (r.details["medium"], r.details["status"]) for r in audit if r.action == "oncall.page.delivery"
    }
    assert {
        ("sms", "sent"),
        ("sms", "delivered"),
        ("voice", "initiated"),
        ("voice", "ringing"),
        ("voice", "in-progress"),
        ("voice", "completed"),
    } <= deliveries
    assert chain.ok, chain
    # And on the timeline.
    timeline = _timeline(db, incident)
    assert timeline[0] == "On-call level 1 paged: alice"
    for line in (
        "Page to alice by sms sent (attempt 1)",
        "Page to alice by slack sent (attempt 1)",
        "SMS to alice (attempt 1): delivered to the phone",
        "On-call level 2 paged: bob",
        "Page to bob by voice sent (attempt 1)",
        "Call to bob (attempt 1): ringing",
        "Call to bob (attempt 1): answered",
        "Call to bob (attempt 1): call ended",
    ):
        assert line in timeline, (line, timeline)
    assert not any(t.startswith("On-call level 3") for t in timeline)
    assert any(
        t.startswith("Page acknowledged by responder:bob via voice after")
        and t.endswith("escalation stopped")
        for t in timeline
    )
