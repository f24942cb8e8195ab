"""Rules (list, validate and test a rule sent in the body, suppressions) and posture over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import select

from core.clock import utcnow
from core.db import Database
from core.models import AuditRecord, PostureResult, PostureScore

RULE = """\
title: Admin role granted (test)
name: api_test_admin_role
id: 2c1d64b1-8d3e-4c52-9c8a-5a1f3e6b7c90
status: test
level: high
logsource: {product: google, service: admin}
detection:
  selection: {name: ASSIGN_ROLE}
  condition: selection
tests:
  - name: a role is assigned
    match: true
    event:
      id: {time: "2026-11-20T04:00:00.000Z", uniqueQualifier: "1", applicationName: admin}
      actor: {email: it-admin@northwind.example}
      name: ASSIGN_ROLE
      parameters: {ROLE_NAME: x, USER_EMAIL: mallory@northwind.example}
  - name: a user is created
    match: false
    event: {id: {time: "2026-11-20T04:00:00.000Z"}, actor: {email: a@b.c}, name: CREATE_USER}
"""

GOOGLE_EVENT = {
    "id": {"time": "2026-11-20T05:00:00.000Z", "uniqueQualifier": "2", "applicationName": "admin"},
    "actor": {"email": "it-admin@northwind.example"},
    "events": [{"type": "DELEGATED_ADMIN_SETTINGS", "name": "ASSIGN_ROLE", "parameters": []}],
}


def test_the_shipped_pack_is_listed(client: TestClient, as_role: Callable[[str], dict[str, str]]) -> None:
    rules = client.get("/rules?provider=google", headers=as_role("viewer")).json()
    assert rules and all(r["provider"] == "google" for r in rules)
    assert any(r["rule_id"] == "google_admin_role_assigned" and r["tests"] >= 2 for r in rules)


def test_a_rule_in_the_body_is_validated_and_tested(
    client: TestClient, as_role: Callable[[str], dict[str, str]]
) -> None:
    analyst = as_role("analyst")
    valid = client.post("/rules/validate", json={"yaml": RULE}, headers=analyst).json()
    assert valid == {"ok": True, "rules": ["api_test_admin_role"], "problems": []}
    tested = client.post(
        "/rules/test",
        json={"yaml": RULE, "events": [{"provider": "google", "stream": "admin", "data": GOOGLE_EVENT}]},
        headers=analyst,
    ).json()
    assert tested["ok"] is True, tested
    assert [o["test"] for o in tested["outcomes"]] == [
        "a role is assigned",
        "a user is created",
        "events from the request",
    ]
    broken = client.post(
        "/rules/validate",
        json={"yaml": RULE.replace("condition: selection", "condition: nope")},
        headers=analyst,
    ).json()
    assert broken["ok"] is False and broken["problems"][0]["line"] is not None
    assert "tmp" not in str(broken["problems"])
    # A viewer may read rules but not run code paths on the server with its own input
    assert client.post("/rules/test", json={"yaml": RULE}, headers=as_role("viewer")).status_code == 403


def test_suppressions_are_created_listed_and_removed_with_audit(
    client: TestClient, as_role: Callable[[str], dict[str, str]], db: Database
) -> None:
    analyst = as_role("analyst")
    created = client.post(
        "/suppressions",
        headers=analyst,
        json={
            "rule_id": "google_admin_role_assigned",
            "match": {"actor.email": "it-admin@northwind.example"},
            "reason": "role changes by the IT admin are planned (CHG-7)",
            "expires_at": (utcnow() + timedelta(days=7)).isoformat(),
        },
    )
    assert created.status_code == 201, created.text
    suppression_id = created.json()["id"]
    assert [s["id"] for s in client.get("/suppressions", headers=as_role("viewer")).json()] == [
        suppression_id
    ]
    unknown_rule = client.post(
        "/suppressions", headers=analyst, json={"rule_id": "no_such_rule", "reason": "x"}
    )
    assert unknown_rule.status_code == 422 and "no_such_rule" in unknown_rule.json()["detail"]
    assert client.delete(f"/suppressions/{suppression_id}", headers=analyst).status_code == 204
    assert client.get(f"/suppressions/{suppression_id}", headers=analyst).status_code == 404
    with db.session(readonly=True) as session:
        actions = [
            r.action
            for r in session.exec(select(AuditRecord).where(AuditRecord.object_type == "suppression"))
        ]
    # One record per change, each with the request's principal and before/after
    assert actions == ["suppression.created", "suppression.deleted"]


def test_posture_scores_checks_history_and_drift(
    client: TestClient,
    as_role: Callable[[str], dict[str, str]],
    db: Database,
    make_connection: Callable[..., Any],
    make_finding: Callable[..., Any],
) -> None:
    connection = make_connection()
    earlier, now = utcnow() - timedelta(days=1), utcnow()
    with db.session() as session:
        for run, at, score in (("run-1", earlier, 70.0), ("run-2", now, 85.0)):
            session.add(
                PostureScore(
                    run_id=run,
                    evaluated_at=at,
                    connection_id=connection.id,
                    provider="m365",
                    category="overall",
                    score=score,
                    checks_passed=17,
                    checks_failed=3,
                )
            )
        session.add(
            PostureResult(
                run_id="run-2",
                evaluated_at=now,
                connection_id=connection.id,
                provider="m365",
                check_id="m365.admins_mfa_registered",
                category="identity",
                severity="high",
                status="fail",
                objects_total=1,
                objects_failing=1,
            )
        )
    drift = make_finding(kind="drift", rule_id="m365_security_defaults_or_ca")
    make_finding(kind="detection")
    viewer = as_role("viewer")
    assert [s["score"] for s in client.get("/posture/scores", headers=viewer).json()] == [85.0]
    history = client.get(f"/posture/scores/history?connection_id={connection.id}", headers=viewer).json()
    assert [s["score"] for s in history] == [70.0, 85.0]
    checks = client.get("/posture/checks?provider=m365", headers=viewer).json()
    assert checks and all(c["provider"] == "m365" for c in checks)
    by_id = {c["id"]: c for c in checks}
    [result] = by_id["m365.admins_mfa_registered"]["results"]
    assert result["status"] == "fail" and result["connection_id"] == connection.id
    assert by_id["m365.anyone_links_expire"]["results"] == []
    assert [f["id"] for f in client.get("/posture/drift", headers=viewer).json()["items"]] == [drift.id]


def _alias_bomb_rule() -> str:
    """The outside review's attack: a rule whose test event is a ~760-byte alias bomb (9^9 values)."""
    anchors = ['  l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        anchors.append(f"  l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    return (
        RULE.split("tests:")[0]
        + "tenantguard:\n  anchors:\n"
        + "\n".join("  " + line for line in anchors)
        + "\ntests:\n  - name: boom\n    match: true\n    event: {id: {time: '2026-11-20T04:00:00Z'}, x: *l8}\n"
    )


def test_an_alias_bomb_in_a_rule_test_is_refused_with_422_naming_the_limit(
    client: TestClient, as_role: Callable[[str], dict[str, str]]
) -> None:
    bomb = _alias_bomb_rule()
    assert 600 < len(bomb.encode()) < 2000
    analyst = as_role("analyst")
    for path in ("/rules/test", "/rules/validate"):
        answer = client.post(path, json={"yaml": bomb}, headers=analyst)
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        assert detail.startswith("yaml:") and "expands to more than" in detail and "aliases" in detail
    # the server still answers ordinary requests
    assert client.post("/rules/validate", json={"yaml": RULE}, headers=analyst).json()["ok"] is True


def test_an_absurdly_nested_request_event_is_refused_with_422(
    client: TestClient, as_role: Callable[[str], dict[str, str]]
) -> None:
    nested: dict[str, Any] = {}
    node = nested
    for _ in range(80):
        node["x"] = {}
        node = node["x"]
    answer = client.post(
        "/rules/test",
        json={"yaml": RULE, "events": [{"provider": "google", "stream": "admin", "data": nested}]},
        headers=as_role("analyst"),
    )
    assert answer.status_code == 422, answer.text
    assert "events[0].data" in answer.json()["detail"] and "nested more than" in answer.json()["detail"]
