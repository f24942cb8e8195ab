"""Jira comments both ways and an issue per remediation step (the `jira` client against the
simulator's Jira REST API).

Given a P1 with its Jira issue, when an analyst adds a note and a person comments in Jira, then the
note is on the issue as a comment and the comment is a redacted note line on the timeline, each
once and never echoed back; when the incident has a remediation plan, each step gets its own issue
under the incident's, moved to In Progress and Done as the step runs, and the postmortem's action
items are done when the step succeeded or its issue is Done."""

from __future__ import annotations

import pytest
import requests
from sqlmodel import select

from core.audit import Actor
from core.models import IncidentResponse, RemediationAction, TimelineEntry
from response.postmortem import render
from response.tickets import run_tickets
from tests.response.conftest import response_document
from timeline.lifecycle import add_note

LEAD = Actor.cli("principal:lead")


def _issues(handle) -> dict[str, dict]:
    issues = requests.get(handle.info["admin_url"] + "/jira/issues", timeout=10).json()["issues"]
    return {i["key"]: i["fields"] for i in issues}


def _state(db, incident_id: int) -> IncidentResponse:
    with db.session(readonly=True) as session:
        return session.exec(select(IncidentResponse).where(IncidentResponse.incident_id == incident_id)).one()


@pytest.mark.usefixtures("secrets_env")
def test_notes_and_jira_comments_are_mirrored_once_each_way(
    db, response_sim, configure_response, make_incident
) -> None:
    config = configure_response(response_document(response_sim))
    incident = make_incident("Payroll file public", priority="P1")
    assert run_tickets(db, config).created == ["SEC-1"]
    add_note(db, incident.id, "Link removed; checking who opened it.", actor=LEAD)
    requests.post(
        response_sim.info["admin_url"] + "/jira/issues/SEC-1/comments",
        json={"body": "Legal asks for the access log. Call me on +1 415 555 0100.", "author": "Ana Legal"},
        timeout=10,
    ).raise_for_status()
    report = run_tickets(db, config)
    assert (report.comments_mirrored, report.comments_posted) == (1, 1) and not report.failed
    comments = _issues(response_sim)["SEC-1"]["comment"]["comments"]
    assert [c["body"] for c in comments] == [
        "Legal asks for the access log. Call me on +1 415 555 0100.",
        "[tenantguard] principal:lead: Link removed; checking who opened it.",
    ]
    with db.session(readonly=True) as session:
        [mirrored] = session.exec(
            select(TimelineEntry).where(
                TimelineEntry.incident_id == incident.id, TimelineEntry.source == "jira"
            )
        ).all()
    assert mirrored.kind == "note" and mirrored.title == "comment by Ana Legal on Jira SEC-1"
    assert mirrored.body["text"] == "Legal asks for the access log. Call me on [REDACTED:phone]."
    again = run_tickets(db, config)
    assert (again.comments_mirrored, again.comments_posted) == (0, 0)  # the mirrored note is not posted back
    assert len(_issues(response_sim)["SEC-1"]["comment"]["comments"]) == 2


@pytest.mark.usefixtures("secrets_env")
def test_each_remediation_step_gets_an_issue_that_follows_it(
    db, response_sim, configure_response, make_incident
) -> None:
    config = configure_response(response_document(response_sim))
    incident = make_incident("Admin mailbox hijacked", priority="P1")
    run_tickets(db, config)
    with db.session() as session:
        for position, action in enumerate(("revoke_sessions", "reset_password")):
            session.add(
                RemediationAction(
                    incident_id=incident.id,
                    action=action,
                    provider="m365",
                    target={"email": "alice@northwind.example"},
                    subject="alice@northwind.example",
                    phase="contain",
                    position=position,
                    status="proposed",
                    requested_by="principal:lead",
                    idempotency_key=f"k-{action}",
                )
            )
    report = run_tickets(db, config)
    assert report.step_issues == ["SEC-2", "SEC-3"] and report.step_moves == 0
    issues = _issues(response_sim)
    assert issues["SEC-2"]["parent"] == {"key": "SEC-1"} and "remediation" in issues["SEC-2"]["labels"]
    assert issues["SEC-2"]["summary"] == (
        f"[P1] Incident #{incident.id} step 0: revoke_sessions on alice@northwind.example"
    )
    with db.session() as session:
        first = session.exec(
            select(RemediationAction).where(RemediationAction.action == "revoke_sessions")
        ).one()
        first.status = "running"
        session.add(first)
    assert run_tickets(db, config).step_moves == 1
    assert _issues(response_sim)["SEC-2"]["status"]["name"] == "In Progress"
    with db.session() as session:
        first = session.exec(
            select(RemediationAction).where(RemediationAction.action == "revoke_sessions")
        ).one()
        first.status = "succeeded"
        session.add(first)
    assert run_tickets(db, config).step_moves == 1
    assert run_tickets(db, config).step_moves == 0
    issues = _issues(response_sim)
    assert (issues["SEC-2"]["status"]["name"], issues["SEC-3"]["status"]["name"]) == ("Done", "To Do")
    # A person closes the second step's issue in Jira: read back (for the postmortem), never run.
    requests.post(
        response_sim.info["admin_url"] + "/jira/issues/SEC-3/status", json={"status": "Done"}, timeout=10
    )
    run_tickets(db, config)
    steps = _state(db, incident.id).jira_steps
    assert {v["key"]: v["status"] for v in steps.values()} == {"SEC-2": "Done", "SEC-3": "Done"}
    with db.session(readonly=True) as session:
        second = session.exec(
            select(RemediationAction).where(RemediationAction.action == "reset_password")
        ).one()
    assert second.status == "proposed"
    # The postmortem's action items are tracked to done through the steps and their issues.
    with db.session(readonly=True) as session:
        text = render(session, incident.id, config)
    assert "- [x] revoke_sessions on alice@northwind.example (succeeded, Jira SEC-2 Done)" in text
    assert "- [x] reset_password on alice@northwind.example (proposed, Jira SEC-3 Done)" in text
    assert "- [ ] Write the root cause" in text
