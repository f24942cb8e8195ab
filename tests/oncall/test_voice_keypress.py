"""Voice pages: the callee presses 1 and the simulator (as Twilio) POSTs the digits, signed with
X-Twilio-Signature, to our API on a real port; the escalation stops as that responder, audited.
An unsigned or forged callback changes nothing and is audited."""

from __future__ import annotations

from datetime import timedelta

import requests
from sqlmodel import col, select

from core.clock import utcnow
from core.models import AuditRecord, Incident
from core.models.oncall import Escalation, Page
from oncall import run_due
from simulator.vendors.twilio import twilio_signature
from tests.oncall.conftest import oncall_document
from tests.oncall.test_escalation import twilio
from tests.oncall.test_slack_buttons import live_api  # noqa: F401 - the fixture


def _voice_paged(db, settings, paging_sim, smtp, configure, make_incident, live_api):  # noqa: F811
    document = oncall_document(paging_sim, smtp[0].port)
    document["channels"]["public_url"] = live_api
    configure(document)
    incident = make_incident().id
    run_due(db, settings)  # level 1 now (real clock: the keypress acknowledges now)
    run_due(db, settings, now=utcnow() + timedelta(minutes=6))  # unanswered: level 2, bob by voice
    [call] = twilio(paging_sim).calls.list(to="+15550000002")
    return incident, call


def _press(handle, sid: str, digits: str) -> dict:
    return requests.post(
        f"{handle.info['admin_url']}/twilio/calls/{sid}/digits", json={"digits": digits}, timeout=60
    ).json()


def test_pressing_1_on_the_voice_page_acknowledges_as_the_callee(
    db,
    settings,
    paging_sim,
    smtp,
    configure,
    make_incident,
    live_api,  # noqa: F811
):
    incident, call = _voice_paged(db, settings, paging_sim, smtp, configure, make_incident, live_api)
    with db.session(readonly=True) as session:
        page = session.exec(select(Page).where(Page.medium == "voice")).one()
    assert page.provider_ref == call.sid

    answer = _press(paging_sim, call.sid, "1")

    assert answer["status"] == 200 and "acknowledged" in answer["reply"], answer
    with db.session(readonly=True) as session:
        escalation = session.exec(select(Escalation).where(Escalation.incident_id == incident)).one()
        [record] = session.exec(
            select(AuditRecord).where(AuditRecord.action == "oncall.escalation.acknowledged")
        ).all()
    assert (escalation.status, escalation.acknowledged_by, escalation.acknowledged_via) == (
        "acknowledged",
        "responder:bob",
        "voice",
    )
    assert record.actor == "responder:bob" and record.details["request_id"] == f"twilio:{call.sid}"


def test_a_forged_keypress_changes_nothing_and_is_audited(
    db,
    settings,
    paging_sim,
    smtp,
    configure,
    make_incident,
    live_api,  # noqa: F811
):
    incident, call = _voice_paged(db, settings, paging_sim, smtp, configure, make_incident, live_api)
    # The action URL our TwiML named, read back through the Twilio API as a forger with the
    # recording could; without the auth token the forger cannot sign it.
    info = paging_sim.info
    resource = requests.get(
        f"{info['twilio.base_url']}/2010-04-01/Accounts/{info['twilio.account_sid']}/Calls.json",
        auth=(info["twilio.account_sid"], info["twilio.auth_token"]),
        timeout=10,
    ).json()["calls"][0]
    action = resource["twiml"].split('action="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    form = {"CallSid": call.sid, "Digits": "1", "AccountSid": info["twilio.account_sid"]}
    for signature in ("", twilio_signature("not-the-auth-token", action, form)):
        answer = requests.post(action, data=form, headers={"X-Twilio-Signature": signature}, timeout=30)
        assert answer.status_code == 403, answer.text
    with db.session(readonly=True) as session:
        escalation = session.exec(select(Escalation).where(Escalation.incident_id == incident)).one()
        refusals = session.exec(select(AuditRecord).where(AuditRecord.action == "oncall.refused")).all()
    assert escalation.status == "active" and len(refusals) == 2


def test_pressing_9_escalates_now_and_3_resolves_as_the_callee(
    db,
    settings,
    paging_sim,
    smtp,
    configure,
    make_incident,
    live_api,  # noqa: F811
):
    incident, call = _voice_paged(db, settings, paging_sim, smtp, configure, make_incident, live_api)

    escalated = _press(paging_sim, call.sid, "9")
    assert escalated["status"] == 200 and "escalated" in escalated["reply"], escalated
    # The next sweep fires level 3 (the team channel) at once, not five minutes later.
    assert [step for _, _, step in run_due(db, settings).sweep.fired] == [3]
    resolved = _press(paging_sim, call.sid, "3")
    assert resolved["status"] == 200 and "resolved" in resolved["reply"], resolved
    assert "Press 1" in _press(paging_sim, call.sid, "5")["reply"]  # another key: the menu again

    with db.session(readonly=True) as session:
        escalation = session.exec(select(Escalation).where(Escalation.incident_id == incident)).one()
        records = session.exec(
            select(AuditRecord).where(
                col(AuditRecord.action).in_(["oncall.escalation.escalated_now", "oncall.escalation.resolved"])
            )
        ).all()
        incident_row = session.get(Incident, incident)
    assert escalation.status == "resolved" and incident_row is not None and incident_row.status == "resolved"
    assert sorted((r.action, r.actor, r.details["channel"]) for r in records) == [
        ("oncall.escalation.escalated_now", "responder:bob", "voice"),
        ("oncall.escalation.resolved", "responder:bob", "voice"),
    ]
