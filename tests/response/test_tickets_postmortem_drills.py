"""Jira (the official client against the simulator's Jira), postmortems and drills.

Given a P1 incident, when the response stage runs, then a Jira issue exists; moving the incident
moves the issue and moving the issue in Jira moves the incident, each once. A resolved incident
gets a postmortem drafted from its timeline. A drill runs the same flow and is marked a drill on
the channel, the issue, the timeline, the audit trail and the postmortem, and never on the status page."""

from __future__ import annotations

import pytest
import requests
from sqlmodel import select

from core.audit import Actor
from core.models import AuditRecord, Drill, Incident, IncidentResponse, StakeholderUpdate, TimelineEntry
from pipeline.cycle import run_cycle
from response import run_due
from response.drills import start_drill
from response.statuspage import summary
from response.tickets import run_tickets
from response.updates import publish_update, write_update
from tests.response.conftest import response_document
from timeline.lifecycle import transition

LEAD = Actor.cli("principal:lead")


def _issues(handle) -> dict[str, dict]:
    issues = requests.get(handle.info["admin_url"] + "/jira/issues", timeout=10).json()["issues"]
    return {i["key"]: i["fields"] for i in issues}


def _state(db, incident_id: int) -> IncidentResponse:
    with db.session(readonly=True) as session:
        return session.exec(select(IncidentResponse).where(IncidentResponse.incident_id == incident_id)).one()


@pytest.mark.usefixtures("secrets_env")
def test_jira_issue_status_both_ways(db, response_sim, configure_response, make_incident) -> None:
    config = configure_response(response_document(response_sim))
    incident = make_incident("Payroll file public", priority="P1")
    make_incident("Minor", priority="P3")
    report = run_tickets(db, config)
    assert report.created == ["SEC-1"] and not report.failed
    issue = _issues(response_sim)["SEC-1"]
    assert issue["summary"] == f"[P1] Incident #{incident.id}: Payroll file public" and issue["labels"] == [
        "tenantguard"
    ]
    assert f"/incidents/{incident.id}" in issue["description"]
    # Outbound: the analyst triages; the issue goes In Progress, once.
    transition(db, incident.id, "triaged", actor=LEAD)
    assert run_tickets(db, config).pushed == 1
    assert _issues(response_sim)["SEC-1"]["status"]["name"] == "In Progress"
    assert (run_tickets(db, config).pushed, run_tickets(db, config).pulled) == (0, 0)
    # Inbound: someone moves the issue to Done in Jira; the incident is resolved through its lifecycle.
    requests.post(
        response_sim.info["admin_url"] + "/jira/issues/SEC-1/status", json={"status": "Done"}, timeout=10
    )
    assert run_tickets(db, config).pulled == 1
    with db.session(readonly=True) as session:
        assert session.get(Incident, incident.id).status == "resolved"
        moved = session.exec(
            select(AuditRecord).where(
                AuditRecord.action == "incident.transitioned", AuditRecord.actor == "system:response"
            )
        ).one()
    assert moved.details["to"] == "resolved"
    again = run_tickets(db, config)
    assert (again.pushed, again.pulled) == (0, 0)  # not echoed back to Jira
    assert _state(db, incident.id).jira_status == "Done"


def test_a_wrong_jira_token_is_a_failure_said_once_not_a_crash(
    db, response_sim, configure_response, make_incident, monkeypatch
) -> None:
    monkeypatch.setenv("TG_TEST_JIRA_TOKEN", "wrong")
    config = configure_response(response_document(response_sim))
    incident = make_incident(priority="P1")
    report = run_tickets(db, config)
    assert "401" in report.failed[incident.id]
    assert "401" in _state(db, incident.id).jira_error


def test_a_resolved_incident_gets_a_postmortem_drafted_from_its_timeline(
    db, settings, configure_response, make_incident
) -> None:
    configure_response(response_document(None, jira=False) | {"channels": {"enabled": False}})
    incident = make_incident("Mail forwarding rule to outside", priority="P2")
    transition(db, incident.id, "triaged", actor=LEAD, note="looking")
    transition(db, incident.id, "resolved", actor=LEAD)
    run_due(db, settings)
    with db.session(readonly=True) as session:
        state = session.exec(
            select(IncidentResponse).where(IncidentResponse.incident_id == incident.id)
        ).one()
    text = state.postmortem_markdown
    assert text.startswith(f"# Postmortem: incident #{incident.id} — Mail forwarding rule to outside")
    for heading in (
        "## Impact",
        "## Detection and response times",
        "## Root cause",
        "## Action items",
        "## Timeline",
    ):
        assert heading in text
    assert "status new → triaged" in text and "Time to resolve" in text
    assert "[ ] Write the root cause" in text
    first = state.postmortem_at
    run_due(db, settings)
    assert _state(db, incident.id).postmortem_at == first  # drafted once by itself


@pytest.mark.usefixtures("secrets_env")
def test_a_drill_runs_the_whole_flow_marked_a_drill_everywhere(
    db, settings, response_sim, configure_response
) -> None:
    config = configure_response(response_document(response_sim))
    with db.session() as session:
        drill = start_drill(session, "account-takeover", actor=LEAD)
    run_cycle(db, settings, only=["incidents"], notify=False)
    run_due(db, settings)
    with db.session(readonly=True) as session:
        drill = session.get(Drill, drill.id)
        incident = session.get(Incident, drill.incident_id)
        lines = session.exec(
            select(TimelineEntry).where(
                TimelineEntry.incident_id == incident.id, TimelineEntry.kind == "response"
            )
        ).all()
    assert incident.priority == "P1" and incident.title.startswith("[DRILL]")
    state = _state(db, incident.id)
    assert state.drill and state.channel_name.startswith(f"drill-inc-{incident.id}")
    assert lines and all(line.title.startswith("[DRILL] ") and line.body["drill"] for line in lines)
    issue = _issues(response_sim)[state.jira_key]
    assert "drill" in issue["labels"] and issue["summary"].startswith("[DRILL] ")
    # A public update about a drill is approved, and still never shown.
    with db.session() as session:
        update = write_update(
            session, incident.id, audience="customers", text="Practice.", actor=LEAD, config=config
        )
    with db.session() as session:
        publish_update(session, update.id, actor=Actor.cli("principal:approver"))
    with db.session(readonly=True) as session:
        assert summary(session, config)["incidents"] == []
        assert session.exec(select(StakeholderUpdate)).one().status == "published"
    transition(db, incident.id, "resolved", actor=LEAD)
    run_due(db, settings)
    with db.session(readonly=True) as session:
        drill = session.get(Drill, drill.id)
        finished = session.exec(
            select(AuditRecord).where(AuditRecord.action == "response.drill.finished")
        ).one()
    assert drill.finished_at is not None and drill.report["seconds_to"]["channel"] is not None
    assert drill.report["seconds_to"]["first_update"] is not None and finished.details["drill"] is True
    assert "This was a drill" in _state(db, incident.id).postmortem_markdown
