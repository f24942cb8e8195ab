"""Acknowledge, resolve, reassign and escalate-now from every channel that can carry them — the API,
the CLI, Slack (buttons and the Reassign menu), the e-mail link (expiring) and an SMS reply (Twilio's
signed incoming-message webhook) — each as the person it authenticates, audited, on the timeline."""

# ruff: noqa: F811 - pytest fixtures imported from test_slack_buttons are parameters here

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import requests
from sqlmodel import col, select

from core.clock import utcnow
from core.models import AuditRecord, Incident
from core.models.incident import TimelineEntry
from core.models.oncall import Escalation, Page
from oncall import run_due
from simulator.vendors.twilio import twilio_signature
from tests import factories
from tests.oncall.conftest import oncall_document
from tests.oncall.test_escalation import twilio
from tests.oncall.test_slack_buttons import click, live_api, paged, principal  # noqa: F401 - fixtures

LIVE_PEPPER = "p" * 40  # the live API's token pepper


def _escalation(db, incident: int) -> Escalation:
    with db.session(readonly=True) as session:
        return session.exec(select(Escalation).where(Escalation.incident_id == incident)).one()


def _audit(db, action: str) -> list[AuditRecord]:
    with db.session(readonly=True) as session:
        return list(
            session.exec(
                select(AuditRecord).where(AuditRecord.action == action).order_by(col(AuditRecord.seq))
            ).all()
        )


def _timeline(db, incident: int) -> list[str]:
    with db.session(readonly=True) as session:
        rows = session.exec(
            select(TimelineEntry).where(TimelineEntry.incident_id == incident).order_by(col(TimelineEntry.id))
        ).all()
        return [r.title for r in rows]


def _live_paged(db, settings, paging_sim, smtp, configure, make_incident, live_api):  # noqa: F811
    document = oncall_document(paging_sim, smtp[0].port)
    document["channels"]["public_url"] = live_api
    document["schedules"][0]["layers"][0]["users"] = ["alice"]  # whatever the real date
    configure(document)
    incident = make_incident().id
    run_due(db, settings)  # level 1 now: alice by SMS and Slack
    return incident


def test_resolve_from_a_slack_button_resolves_the_incident_and_stops_paging(db, settings, paging_sim, paged):  # noqa: F811
    incident, dm = paged
    principal(db, "alice", "analyst", dm["user"])

    answer = click(paging_sim, dm["user"], dm, "oncall_resolve")

    assert answer["status"] == 200 and answer["reply"]["text"].startswith("Resolved by"), answer
    assert _escalation(db, incident).status == "resolved"
    with db.session(readonly=True) as session:
        assert session.get(Incident, incident).status == "resolved"
    [record] = _audit(db, "oncall.escalation.resolved")
    assert (record.actor, record.details["channel"]) == ("principal:alice", "slack")
    assert _audit(db, "incident.transitioned")[-1].actor == "principal:alice"
    run_due(db, settings, now=utcnow() + timedelta(minutes=30))
    assert twilio(paging_sim).calls.list() == []  # level 2 never called


def test_reassign_from_the_slack_menu_pages_the_chosen_responder_now(db, settings, paging_sim, paged):  # noqa: F811
    incident, dm = paged
    principal(db, "alice", "analyst", dm["user"])

    answer = requests.post(
        paging_sim.info["admin_url"] + "/slack/interactions",
        json={
            "user": dm["user"],
            "channel": dm["channel"],
            "ts": dm["ts"],
            "action_id": "oncall_reassign",
            "option": "bob",
        },
        timeout=60,
    ).json()

    assert answer["status"] == 200 and answer["reply"]["text"].startswith("Reassigned to bob by"), answer
    run_due(db, settings)
    assert [c.to for c in twilio(paging_sim).calls.list()] == ["+15550000002"]  # bob: voice (and e-mail)
    [record] = _audit(db, "oncall.escalation.reassigned")
    assert (record.actor, record.details["to"], record.details["channel"]) == (
        "principal:alice",
        "bob",
        "slack",
    )
    assert any(
        t.startswith("Reassigned to bob by principal:alice via slack") for t in _timeline(db, incident)
    )


def test_an_sms_reply_acknowledges_as_the_responder_whose_phone_sent_it(
    db,
    settings,
    paging_sim,
    smtp,
    configure,
    make_incident,
    live_api,  # noqa: F811
):
    incident = _live_paged(db, settings, paging_sim, smtp, configure, make_incident, live_api)
    admin = paging_sim.info["admin_url"]
    requests.post(f"{admin}/twilio/number", json={"sms_url": f"{live_api}/oncall/twilio/sms"}, timeout=10)

    answer = requests.post(
        f"{admin}/twilio/sms", json={"from": "+15550000001", "to": "+15559990000", "body": "ack"}, timeout=60
    ).json()

    assert answer["status"] == 200 and f"Incident {incident} acknowledged" in answer["reply"], [
        r.details for r in _audit(db, "oncall.refused")
    ]
    row = _escalation(db, incident)
    assert (row.status, row.acknowledged_by, row.acknowledged_via) == (
        "acknowledged",
        "responder:alice",
        "sms",
    )
    [record] = _audit(db, "oncall.escalation.acknowledged")
    assert record.details["request_id"].startswith("twilio:SM")


def test_an_unsigned_or_unknown_sms_reply_changes_nothing_and_is_audited(
    db,
    settings,
    paging_sim,
    smtp,
    configure,
    make_incident,
    live_api,  # noqa: F811
):
    incident = _live_paged(db, settings, paging_sim, smtp, configure, make_incident, live_api)
    admin = paging_sim.info["admin_url"]
    requests.post(f"{admin}/twilio/number", json={"sms_url": f"{live_api}/oncall/twilio/sms"}, timeout=10)
    form = {"From": "+15550000001", "To": "+15559990000", "Body": "RESOLVE", "MessageSid": "SM" + "0" * 32}
    forged = requests.post(
        f"{live_api}/oncall/twilio/sms",
        data=form,
        headers={
            "X-Twilio-Signature": twilio_signature("not-the-token", f"{live_api}/oncall/twilio/sms", form)
        },
        timeout=30,
    )
    stranger = requests.post(
        f"{admin}/twilio/sms",
        json={"from": "+15557777777", "to": "+15559990000", "body": "RESOLVE"},
        timeout=60,
    ).json()
    assert forged.status_code == 403 and stranger["status"] == 403
    assert _escalation(db, incident).status == "active"
    assert len(_audit(db, "oncall.refused")) == 2


def test_the_email_link_resolves_and_expires(
    db, settings, paging_sim, smtp, configure, make_incident, live_api
):  # noqa: F811
    controller, mailbox = smtp
    document = oncall_document(paging_sim, controller.port)
    document["channels"]["public_url"] = live_api
    configure(document)
    incident = make_incident().id
    run_due(db, settings)
    run_due(db, settings, now=utcnow() + timedelta(minutes=6))  # level 2: bob by voice and e-mail
    [mail] = [m for m in mailbox.messages if m["To"] == "bob@example.com"]
    link = next(
        line for line in mail.get_payload(decode=True).decode().splitlines() if "/oncall/ack/" in line
    ).split(": ", 1)[1]
    assert "Resolve" in requests.get(link, timeout=30).text  # a GET only shows the buttons

    answer = requests.post(link, params={"action": "resolve"}, timeout=30)

    assert answer.status_code == 200, answer.text
    assert _escalation(db, incident).status == "resolved"
    [record] = _audit(db, "oncall.escalation.resolved")
    assert (record.actor, record.details["channel"]) == ("responder:bob", "link")
    # A link older than a day is refused.
    with db.session() as session:
        page = session.exec(select(Page).where(Page.medium == "email", Page.responder == "bob")).one()
        page.sent_at = utcnow() - timedelta(days=2)
        session.add(page)
    assert requests.post(link, timeout=30).status_code == 409


def test_the_api_and_the_cli_reassign_escalate_and_resolve_as_their_principal(
    db,
    settings,
    database_url,
    paging_sim,
    smtp,
    configure,
    make_incident,
    live_api,  # noqa: F811
):
    incident = _live_paged(db, settings, paging_sim, smtp, configure, make_incident, live_api)
    lead = factories.make_principal(db, "analyst", name="lead", pepper=LIVE_PEPPER)
    base = f"{live_api}/oncall/incidents/{incident}"

    reassigned = requests.post(
        f"{base}/reassign", json={"responder": "chen"}, headers=lead.headers, timeout=30
    )
    escalated = requests.post(f"{base}/escalate", headers=lead.headers, timeout=30)
    assert reassigned.status_code == 200 and escalated.status_code == 200, (reassigned.text, escalated.text)
    assert (
        requests.post(
            f"{base}/reassign", json={"responder": "nobody"}, headers=lead.headers, timeout=30
        ).status_code
        == 422
    )
    cli = subprocess.run(
        [sys.executable, "-c", "from cli.main import run; run()", "oncall", "resolve", str(incident)],
        env={
            **os.environ,
            "TENANTGUARD_DATABASE_URL": database_url,
            "TENANTGUARD_DATA_DIR": str(settings.data_dir),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0 and "resolved" in cli.stdout, cli.stderr + cli.stdout

    assert _escalation(db, incident).status == "resolved"
    assert [r.actor for r in _audit(db, "oncall.escalation.reassigned")] == ["principal:lead"]
    assert [r.details["channel"] for r in _audit(db, "oncall.escalation.escalated_now")] == ["api"]
    [resolved] = _audit(db, "oncall.escalation.resolved")
    assert resolved.details["channel"] == "cli"
    with db.session(readonly=True) as session:
        chen = session.exec(select(Page).where(Page.responder == "chen")).all()
    assert chen  # paged by chen's own media


def test_sms_replies_reassign_escalate_and_resolve_as_the_sender(
    db,
    settings,
    paging_sim,
    smtp,
    configure,
    make_incident,
    live_api,  # noqa: F811
):
    incident = _live_paged(db, settings, paging_sim, smtp, configure, make_incident, live_api)
    admin = paging_sim.info["admin_url"]
    requests.post(f"{admin}/twilio/number", json={"sms_url": f"{live_api}/oncall/twilio/sms"}, timeout=10)

    def reply(body: str) -> dict:
        return requests.post(
            f"{admin}/twilio/sms",
            json={"from": "+15550000001", "to": "+15559990000", "body": body},
            timeout=60,
        ).json()

    assert "REASSIGN followed by a name" in reply("reassign")["reply"]  # no name: told how, nothing done
    assert f"Incident {incident}: no responder named 'zoe'" in reply("REASSIGN zoe")["reply"]
    assert f"Incident {incident} reassigned to chen" in reply("REASSIGN chen")["reply"]
    assert f"Incident {incident} escalated" in reply(f"esc {incident}")["reply"]
    assert f"Incident {incident} resolved" in reply("RESOLVE")["reply"]

    [reassigned] = _audit(db, "oncall.escalation.reassigned")
    assert (reassigned.actor, reassigned.details["to"], reassigned.details["channel"]) == (
        "responder:alice",
        "chen",
        "sms",
    )
    [escalated] = _audit(db, "oncall.escalation.escalated_now")
    assert (escalated.actor, escalated.details["channel"]) == ("responder:alice", "sms")
    [resolved] = _audit(db, "oncall.escalation.resolved")
    assert (resolved.actor, resolved.details["channel"]) == ("responder:alice", "sms")
    assert _escalation(db, incident).status == "resolved"
    with db.session(readonly=True) as session:
        assert session.exec(select(Page).where(Page.responder == "chen")).all()
    assert any(t.startswith("Reassigned to chen by responder:alice via sms") for t in _timeline(db, incident))


def test_the_email_link_escalates_and_reassigns_as_its_responder(
    db, settings, paging_sim, smtp, configure, make_incident, live_api
):  # noqa: F811
    controller, mailbox = smtp
    document = oncall_document(paging_sim, controller.port)
    document["channels"]["public_url"] = live_api
    configure(document)
    incident = make_incident().id
    run_due(db, settings)
    run_due(db, settings, now=utcnow() + timedelta(minutes=6))  # level 2: bob by voice and e-mail
    [mail] = [m for m in mailbox.messages if m["To"] == "bob@example.com"]
    link = next(
        line for line in mail.get_payload(decode=True).decode().splitlines() if "/oncall/ack/" in line
    ).split(": ", 1)[1]
    assert 'name="responder"' in requests.get(link, timeout=30).text  # the reassign form

    escalated = requests.post(link, params={"action": "escalate"}, timeout=30)
    nobody = requests.post(link, params={"action": "reassign"}, timeout=30)
    reassigned = requests.post(link, params={"action": "reassign"}, data={"responder": "chen"}, timeout=30)

    assert escalated.status_code == 200 and reassigned.status_code == 200, (escalated.text, reassigned.text)
    assert nobody.status_code == 422
    [now] = _audit(db, "oncall.escalation.escalated_now")
    assert (now.actor, now.details["channel"]) == ("responder:bob", "link")
    [record] = _audit(db, "oncall.escalation.reassigned")
    assert (record.actor, record.details["to"], record.details["channel"]) == (
        "responder:bob",
        "chen",
        "link",
    )
    assert _escalation(db, incident).status == "active"
