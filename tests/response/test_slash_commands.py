"""`/tenantguard` slash commands: given an incident channel, when a Slack user who is a principal
runs a command signed by Slack, then it acts as that principal through the permission matrix;
unsigned commands are refused; a viewer may ask the status but not resolve."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier
from sqlmodel import select

from core.models import AuditRecord, Finding, Incident, IncidentResponse
from core.models.enums import Role
from tests.response.conftest import response_document

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture
def slack_api(api, configure_response, monkeypatch):
    monkeypatch.setenv("TG_TEST_SLACK_SIGNING", SECRET)
    document = response_document(None, jira=False)
    document["channels"]["signing_secret_ref"] = "env:TG_TEST_SLACK_SIGNING"
    configure_response(document)
    return api


def _command(api, text: str, *, user: str, channel: str, secret: str = SECRET):
    body = urlencode(
        {"command": "/tenantguard", "text": text, "user_id": user, "channel_id": channel, "trigger_id": "t1"}
    )
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    return api.post(
        "/integrations/slack/commands",
        content=body,
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-slack-request-timestamp": timestamp,
            "x-slack-signature": signature,
        },
    )


def test_commands_in_an_incident_channel_act_as_the_mapped_principal(
    slack_api, db, make_incident, make_principal
) -> None:
    incident = make_incident("Forwarding rule on the CEO mailbox", priority="P1")
    with db.session() as session:
        session.add(IncidentResponse(incident_id=incident.id, channel_id="CINC1", channel_name="inc-1"))
    make_principal(Role.ANALYST, name="ana", slack_user_id="UANA")
    make_principal(Role.VIEWER, name="vic", slack_user_id="UVIC")
    status = _command(slack_api, "status", user="UVIC", channel="CINC1")
    assert status.status_code == 200 and "Forwarding rule on the CEO mailbox: new" in status.json()["text"]
    refused = _command(slack_api, "resolve", user="UVIC", channel="CINC1")
    assert "may not do that" in refused.json()["text"]
    assert (
        "note added"
        in _command(slack_api, "note rolled back the rule", user="UANA", channel="CINC1").json()["text"]
    )
    assert "resolved" in _command(slack_api, "resolve", user="UANA", channel="CINC1").json()["text"]
    declared = _command(slack_api, "declare Suspicious OAuth app in finance", user="UANA", channel="CGENERAL")
    assert "declared: finding #" in declared.json()["text"]
    with db.session(readonly=True) as session:
        assert session.get(Incident, incident.id).status == "resolved"
        moved = session.exec(select(AuditRecord).where(AuditRecord.action == "incident.transitioned")).one()
        finding = session.exec(select(Finding).where(Finding.rule_id == "alert:slack")).one()
    assert moved.actor == "principal:ana" and moved.details["via"] == "slack"
    assert finding.title == "Suspicious OAuth app in finance"


def test_an_unsigned_or_unknown_users_command_is_refused(slack_api, make_principal) -> None:
    assert _command(slack_api, "status", user="UX", channel="C1", secret="wrong").status_code == 401
    assert (
        "not a tenantguard principal"
        in _command(slack_api, "status", user="UNOBODY", channel="C1").json()["text"]
    )


def test_severity_declared_in_the_channel_raises_the_incident_on_the_next_build(
    slack_api, db, settings, make_incident, make_finding, make_principal
) -> None:
    from pipeline.cycle import run_cycle

    incident = make_incident(
        "Odd sign-ins for bob", priority="P3", severity="medium", people=["bob@northwind.example"]
    )
    make_finding(
        "Sign-in from an unfamiliar country",
        incident_id=incident.id,
        severity="medium",
        people=["bob@northwind.example"],
    )
    with db.session() as session:
        session.add(IncidentResponse(incident_id=incident.id, channel_id="CINC2", channel_name="inc-2"))
    make_principal(Role.ANALYST, name="ana", slack_user_id="UANA")
    bad = _command(slack_api, "severity apocalyptic", user="UANA", channel="CINC2")
    assert "use critical, high" in bad.json()["text"]
    said = _command(slack_api, "severity critical", user="UANA", channel="CINC2")
    assert "severity critical declared" in said.json()["text"]
    _command(slack_api, "severity P1", user="UANA", channel="CINC2")  # a repeat folds into the same finding
    run_cycle(db, settings, only=["incidents"], notify=False)
    with db.session(readonly=True) as session:
        declared = session.exec(select(Finding).where(Finding.rule_id == "alert:slack")).all()
        refreshed = session.get(Incident, incident.id)
    assert len(declared) == 1 and declared[0].incident_id == incident.id and declared[0].count == 2
    assert declared[0].dedup_key == f"alert:declared:severity:{incident.id}"
    assert refreshed.severity == "critical" and refreshed.finding_count == 2


def _shortcut(api, payload: dict, *, secret: str = SECRET):
    import json

    body = urlencode({"payload": json.dumps(payload)})
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    return api.post(
        "/integrations/slack/interactions",
        content=body,
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-slack-request-timestamp": timestamp,
            "x-slack-signature": signature,
        },
    )


def test_an_incident_is_declared_from_any_message_with_the_shortcut(slack_api, db, make_principal) -> None:
    make_principal(Role.ANALYST, name="ana", slack_user_id="UANA")
    make_principal(Role.VIEWER, name="vic", slack_user_id="UVIC")
    payload = {
        "type": "message_action",
        "callback_id": "tenantguard_declare",
        "trigger_id": "t-9",
        "user": {"id": "UANA"},
        "channel": {"id": "CHELPDESK"},
        "message": {
            "ts": "1700000000.000100",
            "user": "UDANA",
            "text": "My laptop shows a login page for payroll.example-sso.top\nCall me on +1 415 555 0100",
        },
    }
    declared = _shortcut(slack_api, payload)
    assert declared.status_code == 200 and "declared from the message: finding #" in declared.json()["text"]
    again = _shortcut(slack_api, payload)  # the same message twice is one report
    assert again.status_code == 200
    viewer = _shortcut(slack_api, payload | {"user": {"id": "UVIC"}})
    assert "may not do that" in viewer.json()["text"]
    assert _shortcut(slack_api, payload, secret="wrong").status_code == 401
    with db.session(readonly=True) as session:
        [finding] = session.exec(select(Finding).where(Finding.rule_id == "alert:slack")).all()
        declared_by = session.exec(
            select(AuditRecord.actor).where(AuditRecord.action == "response.alert.received")
        ).all()
    assert finding.title == "My laptop shows a login page for payroll.example-sso.top"
    assert finding.dedup_key == "alert:slack:message:CHELPDESK:1700000000.000100" and finding.count == 2
    assert "[REDACTED:phone]" in finding.description and "555 0100" not in finding.description
    assert declared_by == ["principal:ana", "principal:ana"]
