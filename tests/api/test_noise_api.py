"""Digests and change windows over HTTP: who may read and declare them, and what is recorded."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import select

from core.db import Database
from core.models import AuditRecord
from tests.factories import T0, make_finding
from timeline.digest import build_digests


def test_a_change_window_is_declared_listed_and_cancelled_by_an_analyst(
    client: TestClient, as_role: Callable[[str], dict[str, str]], db: Database
) -> None:
    body: dict[str, Any] = {
        "reference": "CHG-7310",
        "actor": "olivia@northwind.example",
        "starts_at": "2025-03-10T14:00:00Z",
        "ends_at": "2025-03-10T15:00:00Z",
        "description": "Drive sharing for the partner migration",
    }
    # a viewer may read but not declare
    assert client.post("/change-windows", json=body, headers=as_role("viewer")).status_code == 403
    declared = client.post("/change-windows", json=body, headers=as_role("analyst"))
    assert declared.status_code == 201, declared.text
    window = declared.json()
    assert (window["reference"], window["created_by"]) == ("CHG-7310", "principal:the-analyst")
    listed = client.get("/change-windows", headers=as_role("viewer")).json()
    assert [w["id"] for w in listed] == [window["id"]]
    cancelled = client.post(f"/change-windows/{window['id']}/cancel", headers=as_role("analyst"))
    assert cancelled.status_code == 200 and cancelled.json()["cancelled_by"] == "principal:the-analyst"
    assert client.get("/change-windows", headers=as_role("viewer")).json() == []
    with db.session(readonly=True) as session:
        actions = [
            r.action
            for r in session.exec(select(AuditRecord).where(AuditRecord.object_type == "change_window"))
        ]
    assert actions.count("change_window.declared") == 1 and actions.count("change_window.cancelled") == 1
    # bad input is refused with what was wrong
    backwards = client.post(
        "/change-windows", json={**body, "ends_at": "2025-03-10T13:00:00Z"}, headers=as_role("analyst")
    )
    assert backwards.status_code == 422 and "is not after starts_at" in backwards.text
    unknown = client.post("/change-windows/987654/cancel", headers=as_role("analyst"))
    assert unknown.status_code == 404 and "change window 987654 does not exist" in unknown.text


def test_digests_are_listed_and_shown_with_their_lines(
    client: TestClient, as_role: Callable[[str], dict[str, str]], db: Database, settings: Any
) -> None:
    make_finding(db, "New device", people=["ana@northwind.example"], severity="low")
    [digest_id] = build_digests(db, settings, now=T0.replace(hour=0) + timedelta(days=1, hours=2))
    listed = client.get("/digests", headers=as_role("viewer"))
    assert listed.status_code == 200 and [d["id"] for d in listed.json()] == [digest_id]
    shown = client.get(f"/digests/{digest_id}", headers=as_role("viewer")).json()
    [line] = shown["items"]
    assert line["rule_id"] == "new_device" and line["people"] == ["ana@northwind.example"]
    assert shown["joined_incidents"] == {}
    assert client.get("/digests/987654", headers=as_role("viewer")).status_code == 404
