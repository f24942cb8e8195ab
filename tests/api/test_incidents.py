"""Incidents over HTTP: filtered, sorted pages and the detail view with the incident's findings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient


def test_list_filters_and_sorts_by_urgency(
    client: TestClient, as_role: Callable[[str], dict[str, str]], make_incident: Callable[..., Any]
) -> None:
    # Given incidents of different priorities, one resolved and one about bob
    p3 = make_incident(priority="P3")
    p1 = make_incident(priority="P1")
    resolved = make_incident(priority="P1", status="resolved")
    bobs = make_incident(priority="P2", people=["bob@example.com"], assignee="carol")
    headers = as_role("viewer")

    def ids(query: str) -> list[int]:
        response = client.get(f"/incidents?{query}", headers=headers)
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["items"]]

    # Then the most urgent come first, ties broken by id
    assert ids("sort=priority") == [p1.id, resolved.id, bobs.id, p3.id]
    assert ids("status=new&sort=priority") == [p1.id, bobs.id, p3.id]
    assert ids("person=bob@example.com") == [bobs.id]
    assert ids("assignee=carol&priority=P2") == [bobs.id]
    # And cursor pages cover all of them once
    seen, cursor = [], None
    while True:
        page = client.get(
            "/incidents?limit=1&sort=-first_seen" + (f"&cursor={cursor}" if cursor else ""), headers=headers
        ).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [bobs.id, resolved.id, p1.id, p3.id]


def test_detail_lists_the_findings_most_severe_first(
    client: TestClient,
    as_role: Callable[[str], dict[str, str]],
    make_incident: Callable[..., Any],
    make_finding: Callable[..., Any],
) -> None:
    incident = make_incident(summary="alice signed in from two continents")
    low = make_finding(incident_id=incident.id, severity="low")
    critical = make_finding(incident_id=incident.id, severity="critical")
    make_finding(severity="critical")  # another incident's, or none
    body = client.get(f"/incidents/{incident.id}", headers=as_role("viewer")).json()
    assert body["summary"] == "alice signed in from two continents"
    assert [f["id"] for f in body["findings"]] == [critical.id, low.id] and body["findings_total"] == 2
    assert client.get("/incidents/424242", headers=as_role("viewer")).status_code == 404
