"""Analysts work incidents through the API: lifecycle, notes, merge/split, timeline and report.

The timeline stage carries out each change (and audits it); the API adds a record tying it to
the principal, the request id and the before/after it observed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import select

from core.clock import utcnow
from core.db import Database
from core.models import AuditRecord, TimelineEntry


def audit_of(db: Database, action: str) -> list[AuditRecord]:
    with db.session(readonly=True) as session:
        return list(session.exec(select(AuditRecord).where(AuditRecord.action == action)).all())


def test_triage_assign_and_note_are_recorded_with_request_ids(
    client: TestClient,
    as_role: Callable[[str], dict[str, str]],
    make_incident: Callable[..., Any],
    db: Database,
) -> None:
    incident = make_incident()
    analyst = as_role("analyst")
    # When an analyst triages, assigns and notes the incident
    moved = client.post(
        f"/incidents/{incident.id}/transition",
        json={"to": "triaged"},
        headers={**analyst, "X-Request-ID": "req-triage"},
    )
    assigned = client.post(f"/incidents/{incident.id}/assign", json={"assignee": "bob"}, headers=analyst)
    noted = client.post(
        f"/incidents/{incident.id}/notes",
        headers=analyst,
        json={"text": "Alice confirms; card 4111 1111 1111 1111 was in the chat"},
    )
    # Then the incident shows it
    assert moved.status_code == 200 and moved.json()["status"] == "triaged"
    assert assigned.json()["assignee"] == "bob" and assigned.json()["acknowledged_at"] is not None
    assert noted.status_code == 201
    # And each change has one audit record, with principal, request id and before/after
    [record] = audit_of(db, "incident.transitioned")
    assert record.actor == "principal:the-analyst" and record.details["request_id"] == "req-triage"
    assert record.details["before"]["status"] == "new" and record.details["after"]["status"] == "triaged"
    assert [len(audit_of(db, a)) for a in ("incident.assigned", "incident.note_added")] == [1, 1]
    # And the note was redacted before it was stored
    timeline = client.get(f"/incidents/{incident.id}/timeline?kind=note", headers=analyst).json()
    [note] = timeline["items"]
    assert "4111 1111 1111 1111" not in str(note["body"])


def test_a_transition_the_lifecycle_forbids_is_a_conflict(
    client: TestClient,
    as_role: Callable[[str], dict[str, str]],
    make_incident: Callable[..., Any],
    db: Database,
) -> None:
    incident = make_incident()
    response = client.post(
        f"/incidents/{incident.id}/transition", json={"to": "closed"}, headers=as_role("analyst")
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "closed" in response.json()["detail"]
    assert audit_of(db, "incident.transitioned") == []  # nothing changed, nothing recorded
    viewer = client.post(
        f"/incidents/{incident.id}/transition", json={"to": "triaged"}, headers=as_role("viewer")
    )
    assert viewer.status_code == 403


def test_merge_and_split(
    client: TestClient,
    as_role: Callable[[str], dict[str, str]],
    make_incident: Callable[..., Any],
    make_finding: Callable[..., Any],
) -> None:
    keep, fold = make_incident(), make_incident()
    first = make_finding(incident_id=keep.id)
    second = make_finding(incident_id=fold.id)
    analyst = as_role("analyst")
    # When one incident is merged into the other
    merged = client.post(
        f"/incidents/{keep.id}/merge", json={"incident_ids": [fold.id], "reason": "same IP"}, headers=analyst
    )
    assert merged.status_code == 200, merged.text
    assert sorted(f["id"] for f in merged.json()["findings"]) == [first.id, second.id]
    folded = client.get(f"/incidents/{fold.id}", headers=analyst).json()
    assert folded["status"] == "duplicate" and folded["merged_into_id"] == keep.id
    # When a finding is split off again
    split = client.post(f"/incidents/{keep.id}/split", json={"finding_ids": [second.id]}, headers=analyst)
    assert split.status_code == 201, split.text
    assert [f["id"] for f in split.json()["findings"]] == [second.id] and split.json()["id"] != keep.id
    # Splitting everything off is refused
    refused = client.post(f"/incidents/{keep.id}/split", json={"finding_ids": [first.id]}, headers=analyst)
    assert refused.status_code == 409


def test_conversation_excerpts_only_for_roles_that_may_read_them(
    client: TestClient,
    as_role: Callable[[str], dict[str, str]],
    make_incident: Callable[..., Any],
    db: Database,
) -> None:
    incident = make_incident()
    with db.session() as session:
        session.add(
            TimelineEntry(
                incident_id=incident.id,
                at=utcnow(),
                kind="message",
                source="slack",
                title="message in #it-help",
                body={"excerpt": "my password is [REDACTED]"},
            )
        )

    def excerpt(role: str) -> str:
        page = client.get(f"/incidents/{incident.id}/timeline?kind=message", headers=as_role(role)).json()
        return page["items"][0]["body"]["excerpt"]

    assert excerpt("analyst") == "my password is [REDACTED]"
    assert excerpt("auditor") == "my password is [REDACTED]"
    assert "hidden" in excerpt("viewer")


def test_report_in_three_formats(
    client: TestClient,
    as_role: Callable[[str], dict[str, str]],
    make_incident: Callable[..., Any],
    make_finding: Callable[..., Any],
) -> None:
    incident = make_incident(title="Mailbox forwarding to an outside address")
    make_finding(incident_id=incident.id)
    headers = as_role("viewer")
    as_json = client.get(f"/incidents/{incident.id}/report", headers=headers)
    markdown = client.get(f"/incidents/{incident.id}/report?format=markdown", headers=headers)
    html = client.get(f"/incidents/{incident.id}/report?format=html", headers=headers)
    assert as_json.status_code == 200 and as_json.json()["summary"]
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert "Mailbox forwarding" in markdown.text
    assert html.headers["content-type"].startswith("text/html") and "<" in html.text
    assert html.headers["content-security-policy"].startswith(
        "default-src 'none'"
    )  # no script from tenant data
    assert (
        as_json.headers["cache-control"] == "no-store"
        and as_json.headers["x-content-type-options"] == "nosniff"
    )
    assert client.get("/incidents/999999/report", headers=headers).status_code == 404


def test_incident_metrics(
    client: TestClient, as_role: Callable[[str], dict[str, str]], make_incident: Callable[..., Any]
) -> None:
    make_incident(created_at=utcnow(), status="false_positive")
    make_incident(created_at=utcnow())
    body = client.get("/metrics/incidents", headers=as_role("viewer")).json()
    assert body["incidents"] == 2 and body["false_positive_rate"] == 0.5
    assert set(body["by_priority_times"]) == {"P1", "P2", "P3", "P4"}
    assert set(body["by_priority_times"]["P1"]) == {"mttd", "mtta", "mttc", "mttr"}
    assert sum(t["mtta"]["count"] for t in body["by_priority_times"].values()) == body["mtta"]["count"]
    bad = client.get(
        "/metrics/incidents?since=2025-02-01T00:00:00Z&until=2025-01-01T00:00:00Z", headers=as_role("viewer")
    )
    assert bad.status_code == 422
