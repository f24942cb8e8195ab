"""Incidents over HTTP: filtered, sorted pages and the detail view with the incident's findings."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner


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


def test_the_cli_lists_what_the_api_lists(
    client: TestClient,
    as_role: Callable[[str], dict[str, str]],
    make_incident: Callable[..., Any],
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from cli import context
    from cli.commands import incidents

    # Given incidents of every kind, a duplicate among them
    for priority, status in (("P3", "new"), ("P1", "new"), ("P1", "duplicate"), ("P2", "resolved")):
        make_incident(priority=priority, status=status)
    monkeypatch.setenv("TENANTGUARD_DATABASE_URL", settings.effective_database_url)
    monkeypatch.setenv("TENANTGUARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    context.settings.cache_clear()
    try:
        for cli_args, query in (
            ([], ""),
            (["--priority", "P1"], "priority=P1"),
            (["-s", "new"], "status=new"),
        ):
            # When the CLI and the API are asked the same question
            listed = CliRunner().invoke(incidents.app, ["list", *cli_args])
            assert listed.exit_code == 0, listed.output
            from_cli = [int(n) for n in re.findall(r"^│\s*(\d+)\s", listed.output, re.MULTILINE)]
            response = client.get(f"/incidents?{query}", headers=as_role("viewer"))
            # Then they give the same answer, in the same order
            assert from_cli == [i["id"] for i in response.json()["items"]], query
    finally:
        context.settings.cache_clear()
