"""Slack buttons: a signed, fresh click by a mapped approver approves; anything else is refused and audited."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import pytest
from sqlmodel import select

from core.models import ActionStatus, Approval, AuditRecord
from remediation import approval_blocks, get_plan, handle_interaction, plan_for_incident

from .conftest import VICTIM

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def _click(
    action_id: int,
    fingerprint: str,
    user: str = "U0BOB",
    button: str = "tenantguard_approve",
    action_ts: str = "1710000000.000100",
) -> bytes:
    payload = {
        "type": "block_actions",
        "team": {"id": "T0NORTH"},
        "user": {"id": user},
        "actions": [
            {"action_id": button, "value": f"{action_id}:{fingerprint[:16]}", "action_ts": action_ts}
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def _signed(body: bytes, *, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    timestamp = str(at if at is not None else int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


@pytest.fixture
def step(db, ato_incident, analyst, approver, make_connection):
    make_connection(
        "north-slack", "slack", config={"team_id": "T0NORTH"}
    )  # the workspace the buttons live in
    plan = plan_for_incident(db, ato_incident, analyst)
    return plan.step("m365.disable_account", VICTIM)


def _fingerprint(db, action_id: int) -> str:
    from core.models import RemediationAction

    with db.session() as s:
        return s.get(RemediationAction, action_id).fingerprint


def _refusals(db) -> list[AuditRecord]:
    with db.session() as s:
        return list(s.exec(select(AuditRecord).where(AuditRecord.action == "remediation.refused")).all())


def test_a_signed_click_by_a_mapped_approver_approves_the_step(db, step):
    body = _click(step.id, _fingerprint(db, step.id))

    result = handle_interaction(db, body, _signed(body), secret=SECRET)

    assert result.status_code == 200 and result.outcome.status == ActionStatus.APPROVED
    with db.session() as s:
        approval = s.exec(select(Approval)).one()
    assert (approval.principal, approval.via) == ("principal:bob", "slack")


def test_the_reject_button_rejects(db, step):
    body = _click(step.id, _fingerprint(db, step.id), button="tenantguard_reject")

    result = handle_interaction(db, body, _signed(body), secret=SECRET)

    assert result.status_code == 200
    assert get_plan(db, step.incident_id).step("m365.disable_account", VICTIM).status == ActionStatus.REJECTED


def test_a_forged_signature_is_refused_and_nothing_is_approved(db, step):
    body = _click(step.id, _fingerprint(db, step.id))

    result = handle_interaction(db, body, _signed(body, secret="not-the-signing-secret"), secret=SECRET)

    assert result.status_code == 401 and "forged" in result.text
    assert get_plan(db, step.incident_id).step("m365.disable_account", VICTIM).status == ActionStatus.PROPOSED
    assert _refusals(db) == []  # anyone's request: counted by the API, not written to the chain


def test_a_body_altered_after_signing_is_refused(db, step, second_approver):
    signed_for = _click(step.id, _fingerprint(db, step.id))
    altered = _click(step.id, _fingerprint(db, step.id), user="U0CAROL")

    result = handle_interaction(db, altered, _signed(signed_for), secret=SECRET)

    assert result.status_code == 401


def test_an_old_request_is_refused_as_a_replay(db, step):
    body = _click(step.id, _fingerprint(db, step.id))

    result = handle_interaction(db, body, _signed(body, at=int(time.time()) - 600), secret=SECRET)

    assert result.status_code == 401 and "replay" in result.text
    assert _refusals(db) == []


def test_the_same_click_delivered_twice_is_refused_the_second_time(db, step, second_approver):
    body = _click(step.id, _fingerprint(db, step.id))
    headers = _signed(body)

    first = handle_interaction(db, body, headers, secret=SECRET)
    again = handle_interaction(db, body, headers, secret=SECRET)

    assert first.status_code == 200 and again.status_code == 409
    with db.session() as s:
        assert len(s.exec(select(Approval)).all()) == 1


def test_a_slack_user_mapped_to_no_principal_is_refused(db, step):
    body = _click(step.id, _fingerprint(db, step.id), user="U0STRANGER")

    result = handle_interaction(db, body, _signed(body), secret=SECRET)

    assert result.status_code == 403
    assert _refusals(db)[0].details["code"] == "not_allowed"


def test_a_button_for_an_earlier_version_of_the_step_is_refused(db, step):
    body = _click(step.id, "0" * 64)

    result = handle_interaction(db, body, _signed(body), secret=SECRET)

    assert result.status_code == 409 and "earlier version" in result.text


def test_requests_without_signature_headers_or_with_junk_are_refused(db, step):
    body = _click(step.id, _fingerprint(db, step.id))

    assert handle_interaction(db, body, {}, secret=SECRET).status_code == 401
    assert (
        handle_interaction(
            db, b"payload=%7Bnot-json", _signed(b"payload=%7Bnot-json"), secret=SECRET
        ).status_code
        == 401
    )
    # only the signed one is audited: an unsigned request is anyone's, and only counted by the API
    assert len(_refusals(db)) == 1


def test_the_message_shows_what_why_risk_and_the_two_buttons(db, step):
    blocks = approval_blocks(step, _fingerprint(db, step.id))

    text = blocks[0]["text"]["text"]
    assert VICTIM in text and "Why:" in text and "Risk:" in text
    assert [e["action_id"] for e in blocks[1]["elements"]] == ["tenantguard_approve", "tenantguard_reject"]
