"""The Acknowledge / Escalate buttons on a Slack page: the simulator delivers the click as Slack does
(signed with the app's signing secret) to our API on a real port; only a verified click by a
principal allowed to acknowledge acts, with one audit record; every refusal is audited."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
import requests
import uvicorn
from slack_sdk.signature import SignatureVerifier
from sqlmodel import col, select

from api.app import create_app
from api.config import ApiSettings
from core.db import Database
from core.models import AuditRecord
from core.models.oncall import Escalation
from core.settings import Settings
from oncall import run_due
from simulator.http import free_port
from tests import factories
from tests.oncall.conftest import oncall_document, slack_users
from tests.oncall.test_escalation import twilio


@pytest.fixture
def live_api(settings: Settings, db: Database) -> Iterator[str]:
    app = create_app(settings, db, api_settings=ApiSettings(token_pepper="p" * 40, rate_limit_per_second=0))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


def principal(db: Database, name: str, role: str, slack_user: str) -> None:
    factories.make_principal(db, role, name=name, slack_user_id=slack_user)


@pytest.fixture
def paged(db, settings, paging_sim, smtp, configure, make_incident, live_api, monkeypatch):
    """A P1 paged (step 1) through Slack; the Slack app's Request URL is our live API."""
    controller, _ = smtp
    monkeypatch.setenv("TG_TEST_SLACK_SIGNING", paging_sim.info["slack.signing_secret"])
    document = oncall_document(paging_sim, controller.port)
    document["channels"]["slack_signing_secret_ref"] = "env:TG_TEST_SLACK_SIGNING"
    configure(document)
    requests.post(
        paging_sim.info["admin_url"] + "/slack/app",
        json={"interactivity_url": f"{live_api}/integrations/slack/interactions"},
        timeout=10,
    ).raise_for_status()
    incident = make_incident().id
    run_due(db, settings)  # the real clock: the click's acknowledgement happens now
    [dm] = [c["target"] for c in paging_sim.changes if c["action"] == "post_message"]
    return incident, dm


def click(handle, user: str, dm: dict, action_id: str) -> dict:
    return requests.post(
        handle.info["admin_url"] + "/slack/interactions",
        json={"user": user, "channel": dm["channel"], "ts": dm["ts"], "action_id": action_id},
        timeout=60,
    ).json()


def escalation(db: Database, incident: int) -> Escalation:
    with db.session(readonly=True) as session:
        return session.exec(select(Escalation).where(Escalation.incident_id == incident)).one()


def audit(db: Database, action: str) -> list[AuditRecord]:
    with db.session(readonly=True) as session:
        return list(
            session.exec(
                select(AuditRecord).where(AuditRecord.action == action).order_by(col(AuditRecord.seq))
            ).all()
        )


def test_the_page_carries_acknowledge_and_escalate_buttons(db, paging_sim, paged):
    incident, dm = paged
    [posted] = [c for c in paging_sim.changes if c["action"] == "post_message"]
    [actions] = [b for b in posted["request"]["body"]["blocks"] if b["type"] == "actions"]
    assert [e.get("action_id") for e in actions["elements"]][:2] == ["oncall_acknowledge", "oncall_escalate"]


def test_a_signed_click_by_an_analyst_acknowledges_with_one_audit_record(db, paging_sim, paged):
    incident, dm = paged
    alice = dm["user"]
    principal(db, "alice", "analyst", alice)

    answer = click(paging_sim, alice, dm, "oncall_acknowledge")

    assert (
        answer["status"] == 200
        and answer["reply"]["text"] == f"Acknowledged by <@{alice}>: incident #{incident}"
    )
    row = escalation(db, incident)
    assert (row.status, row.acknowledged_by, row.acknowledged_via) == (
        "acknowledged",
        "principal:alice",
        "slack",
    )
    [record] = audit(db, "oncall.escalation.acknowledged")
    assert (record.actor, record.details["via"], record.object_id) == (
        "principal:alice",
        "slack",
        str(incident),
    )
    assert record.details["request_id"].startswith("slack:")


def test_escalate_fires_the_next_level_now(db, settings, paging_sim, paged):
    incident, dm = paged
    principal(db, "lead", "analyst", dm["user"])

    answer = click(paging_sim, dm["user"], dm, "oncall_escalate")

    assert answer["status"] == 200 and answer["reply"]["text"].startswith("Escalated by")
    assert escalation(db, incident).status == "active"
    run_due(db, settings)  # the next sweep: step 2 (bob by voice) without waiting five minutes
    assert [c.to for c in twilio(paging_sim).calls.list()] == ["+15550000002"]
    [record] = audit(db, "oncall.escalation.escalated_now")
    assert record.actor == "principal:lead" and record.details["via"] == "slack"


def test_refused_clicks_change_nothing_and_signed_ones_are_audited(db, paging_sim, paged, live_api):
    incident, dm = paged
    stranger, viewer = [u for u in slack_users(paging_sim, 6) if u != dm["user"]][:2]
    principal(db, "vera", "viewer", viewer)

    # A Slack user who is no principal, and a principal whose role may not acknowledge.
    assert click(paging_sim, stranger, dm, "oncall_acknowledge")["status"] == 403
    assert click(paging_sim, viewer, dm, "oncall_acknowledge")["status"] == 403
    # A forged request (signed with another secret) and a replayed one (older than five minutes).
    token = json.loads(json.dumps([c for c in paging_sim.changes if c["action"] == "post_message"][0]))
    value = next(
        e["value"]
        for b in token["request"]["body"]["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e.get("action_id") == "oncall_acknowledge"
    )
    payload = {
        "type": "block_actions",
        "user": {"id": dm["user"]},
        "actions": [{"action_id": "oncall_acknowledge", "value": value, "action_ts": "1.0"}],
    }
    body = urlencode({"payload": json.dumps(payload)})
    url = f"{live_api}/integrations/slack/interactions"
    for secret, at in (("not-the-secret", int(time.time())), (paging_sim.info["slack.signing_secret"], 1)):
        timestamp = str(at)
        signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
        answer = requests.post(
            url,
            data=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": timestamp,
                "X-Slack-Signature": signature,
            },
            timeout=30,
        )
        assert answer.status_code == 401, answer.text
    assert escalation(db, incident).status == "active"
    assert audit(db, "oncall.escalation.acknowledged") == []
    # the signed refusals are audited; the unsigned ones are anyone's, counted by the API (issue 21)
    assert len(audit(db, "oncall.refused")) == 2
