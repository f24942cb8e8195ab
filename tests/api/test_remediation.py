"""Remediation through the API: an analyst asks for a plan, someone else approves (four eyes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from core.db import Database
from core.models import AuditRecord
from tests.factories import MadePrincipal


@pytest.fixture
def takeover(make_incident: Callable[..., Any], make_finding: Callable[..., Any]) -> Any:
    """A Google account-takeover incident about alice (P2: nothing is auto-approved)."""
    incident = make_incident(priority="P2", people=["alice@acme.com"])
    make_finding(
        incident_id=incident.id,
        provider="google",
        rule_id="google_suspicious_login",
        severity="high",
        people=["alice@acme.com"],
    )
    return incident


def test_plan_then_four_eyes_approval(
    client: TestClient,
    as_role: Callable[[str], dict[str, str]],
    make_principal: Callable[..., MadePrincipal],
    takeover: Any,
    db: Database,
) -> None:
    # Given an approver who asks for the plan
    requester = as_role("approver")
    planned = client.post(f"/incidents/{takeover.id}/plan", headers=requester)
    assert planned.status_code == 200, planned.text
    steps = planned.json()["steps"]
    sign_out = next(s for s in steps if s["action"] == "google.sign_out")
    assert sign_out["status"] == "proposed" and sign_out["subject"] == "alice@acme.com"
    # When the same approver approves their own request, Then it is refused with a stable code
    own = client.post(f"/actions/{sign_out['id']}/approve", json={}, headers=requester)
    assert own.status_code == 409 and own.json()["code"] == "self_approval"
    # When a second approver approves, Then the step is approved
    other = {"Authorization": f"Bearer {make_principal('approver', name='second-approver').token}"}
    approved = client.post(
        f"/actions/{sign_out['id']}/approve",
        json={"comment": "spoke to alice"},
        headers=other,
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert approved.json()["approved_by"] == ["principal:second-approver"]
    # And the plan shows it, and the step's one audit record carries the request id and before/after
    step = client.get(f"/actions/{sign_out['id']}", headers=as_role("viewer")).json()
    assert step["status"] == "approved"
    with db.session(readonly=True) as session:
        [rec] = session.exec(select(AuditRecord).where(AuditRecord.action == "remediation.approved")).all()
    assert rec.actor == "principal:second-approver"
    assert rec.details["before"] == {"status": "proposed"} and rec.details["after"]["status"] == "approved"
    assert rec.details["request_id"] == approved.headers["x-request-id"]


def test_rejection_and_roles(
    client: TestClient, as_role: Callable[[str], dict[str, str]], takeover: Any
) -> None:
    plan = client.post(f"/incidents/{takeover.id}/plan", headers=as_role("analyst")).json()
    step_id = plan["steps"][0]["id"]
    # An analyst may ask for a plan but not decide on it
    assert client.post(f"/actions/{step_id}/approve", json={}, headers=as_role("analyst")).status_code == 403
    rejected = client.post(
        f"/actions/{step_id}/reject", json={"comment": "not needed"}, headers=as_role("approver")
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    again = client.post(f"/actions/{step_id}/approve", json={}, headers=as_role("admin"))
    assert again.status_code == 409
    assert client.get("/actions/999999", headers=as_role("viewer")).status_code == 404
    assert client.get(f"/incidents/{takeover.id}/plan", headers=as_role("viewer")).json()["steps"]


def test_slack_interactions_without_a_valid_signature_are_refused(client: TestClient) -> None:
    response = client.post(
        "/integrations/slack/interactions",
        content=b"payload=%7B%7D",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 401 and response.json()["text"].startswith("Refused")
