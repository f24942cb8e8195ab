"""The whole product through the API: a simulated account takeover, found, triaged and remediated.

Given a simulator tenant with an account takeover, collected, detected and grouped by the
stages, when an analyst and an approver work it through the API, then the approved steps run
against the simulator's SaaS APIs, and the audit trail exported through the API verifies.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.audit import Actor, Channel, verify_export
from core.db import Database
from core.settings import Settings
from tests.factories import MadePrincipal


@pytest.mark.slow
def test_an_account_takeover_worked_end_to_end_through_the_api(
    client: TestClient,
    as_role: Callable[[str], dict[str, str]],
    make_principal: Callable[..., MadePrincipal],
    make_simulator: Callable[..., Any],
    db: Database,
    settings: Settings,
    tmp_path: Path,
) -> None:
    from collectors import collect_once, connections_from_simulator
    from collectors.connections import sync_connections
    from detectors.pipeline import detect_new
    from timeline import build_incidents

    # Given a tenant with an account takeover, collected, detected and grouped into incidents
    simulator = make_simulator("account_takeover", users=20, days=2)
    sync_connections(
        db, connections_from_simulator(simulator.info), actor=Actor("system:test", Channel.CLI), source="test"
    )
    collect_once(db, settings)
    detect_new(db, settings)
    build_incidents(db, settings, notify=False)
    analyst = as_role("analyst")

    # When the analyst takes the most urgent incident
    urgent = client.get("/incidents?sort=priority&limit=1", headers=analyst).json()["items"]
    assert urgent, "the takeover produced no incident"
    incident_id = urgent[0]["id"]
    detail = client.get(f"/incidents/{incident_id}", headers=analyst).json()
    assert detail["findings_total"] >= 1
    triaged = client.post(f"/incidents/{incident_id}/transition", json={"to": "triaged"}, headers=analyst)
    assert triaged.status_code == 200, triaged.text
    plan = client.post(f"/incidents/{incident_id}/plan", headers=analyst).json()
    single = [s for s in plan["steps"] if s["approvals_required"] == 1 and s["status"] == "proposed"]
    assert single, f"no step to approve in {plan}"

    # And an approver approves the contain steps (someone other than the requester)
    approver = {"Authorization": f"Bearer {make_principal('approver', name='on-call-approver').token}"}
    for step in single:
        if step["phase"] == "contain":
            decided = client.post(f"/actions/{step['id']}/approve", json={}, headers=approver)
            assert decided.status_code == 200, decided.text
    executed = client.post(f"/incidents/{incident_id}/execute", json={"dry_run": False}, headers=analyst)

    # Then the approved steps ran against the SaaS APIs and were verified
    assert executed.status_code == 200, executed.text
    outcomes = {r["action"]: r["outcome"] for r in executed.json()["results"]}
    assert "succeeded" in outcomes.values() or "unchanged" in outcomes.values(), outcomes
    assert simulator.changes, "nothing was written to the simulated tenant"
    timeline = client.get(f"/incidents/{incident_id}/timeline?kind=remediation", headers=analyst).json()
    assert timeline["items"]

    # And the audit trail, exported through the API, verifies offline
    export = tmp_path / "audit.jsonl"
    export.write_bytes(client.get("/audit/export", headers=as_role("auditor")).content)
    result = verify_export(export)
    assert result.ok and result.records > 10
