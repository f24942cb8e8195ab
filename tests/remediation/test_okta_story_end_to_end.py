"""Done when the Okta story becomes one urgent incident whose plan evicts the attacker, executed
against the simulator: everything from the System Log to the plan is the product (collect, detect,
resolve people, build incidents, plan, four-eyes approval, execution over real HTTP), and the org
is read back afterwards through the Okta API."""

from __future__ import annotations

from typing import Any

import pytest

from collectors import collect_once, connections_from_simulator
from collectors.connections import sync_connections
from core.audit import Actor, Channel
from core.models import Connection
from detectors.pipeline import detect_new
from identity import resolve_people
from providers.calls import CallLog
from providers.credentials import Secrets
from providers.okta import open_gateway
from remediation import demo_flow
from remediation.approvals import approve
from remediation.executor import execute
from remediation.planner import get_plan
from timeline import build_incidents
from timeline.quality import score_against_truth

# a provider story through the same storage path as the account takeover the PostgreSQL suite runs
pytestmark = [pytest.mark.slow, pytest.mark.one_backend]


def _gateway(sim: Any) -> Any:
    definition = connections_from_simulator(sim.info, providers=["okta"])[0]
    connection = Connection(
        name=definition.name,
        provider="okta",
        tenant=definition.tenant,
        config=definition.config,
        secret_refs=definition.secrets,
    )
    return open_gateway(connection, Secrets(definition.secrets), CallLog())


def _truth_target(story: dict[str, Any], action: str) -> dict[str, Any]:
    return next(r["target"] for r in story["remediation"] if r["action"] == action)


@pytest.mark.parametrize(
    ("scenario", "token_name", "role_type"),
    [
        ("okta_mfa_fatigue", "backup-sync", "SUPER_ADMIN"),
        ("okta_support_impersonation", "scim-bridge", "ORG_ADMIN"),
    ],
)
def test_the_okta_story_is_one_urgent_incident_whose_approved_plan_evicts_the_attacker(
    db, settings, make_simulator, analyst, approver, second_approver, scenario, token_name, role_type
) -> None:
    # given an Okta story in the simulator, collected and turned into incidents by the product
    sim = make_simulator(scenario)
    sync_connections(db, connections_from_simulator(sim.info), actor=Actor("principal:test", Channel.CLI))
    collect_once(db, settings)
    detect_new(db, settings)
    resolve_people(db)
    build_incidents(db, settings, notify=False)
    score = score_against_truth(db, sim.truth)
    (story_score,) = score["per_story"]
    assert story_score["priorities"] in (["P1"], ["P2"]), story_score
    (incident_id,) = story_score["incidents"]
    story = sim.truth["stories"][0]
    victim = _truth_target(story, "okta.suspend_user")["user"]
    grantee = _truth_target(story, "okta.remove_admin_role")["user"]
    token = next(s for s in story["steps"] if s["id"] == "api_token")
    gw = _gateway(sim)
    tokens_before = {t["id"]: t for t in gw.get("/api/v1/api-tokens")}
    planted = [t for t in tokens_before.values() if t["name"] == token_name]
    assert planted and token["events"]

    # when an analyst asks for the plan, an approver approves its contain and eradicate steps, and
    # a second approver the steps the policy wants two for (an admin role removal cannot be undone;
    # suspending an administrator or resetting their factors is high risk)
    result = demo_flow(db, settings, incident_id, requested_by=analyst, approve_as=approver)
    assert not result.refused, result.refused
    waiting = [s for s in result.final.steps if s.status == "proposed"]
    assert "okta.remove_admin_role" in {s.action for s in waiting}
    for step in waiting:
        approve(db, step.id, second_approver, comment="second pair of eyes")
    report = execute(db, settings, incident_id)

    # then every step ran and verified
    assert result.report is not None and result.report.ok, [r.message for r in result.report.results]
    assert report.ok, [r.message for r in report.results]
    steps = {
        (s.action, s.target.get("user") or s.target.get("token_id")): s.status
        for s in get_plan(db, incident_id).steps
    }
    assert set(steps.values()) == {"succeeded"}, steps
    assert set(steps) == {
        ("okta.clear_sessions", victim),
        ("okta.suspend_user", victim),
        ("okta.reset_factors", victim),
        ("okta.remove_admin_role", grantee),
        ("okta.clear_sessions", grantee),
        ("okta.revoke_api_token", planted[0]["id"]),
    }
    # the victim's account is suspended, its sessions cleared and its factors (the attacker's push
    # approval came from the victim's own phone; any factor enrolled since goes too) reset
    user = gw.get(f"/api/v1/users/{victim}")
    assert user["status"] == "SUSPENDED"
    assert gw.get(f"/api/v1/users/{user['id']}/factors") == []
    changes = [(c["action"], c.get("target", {}).get("user")) for c in sim.changes]
    assert ("clear_sessions", victim) in changes
    # the admin role the attacker granted is gone
    granted = gw.get(f"/api/v1/users/{grantee}")
    assert not [r for r in gw.get(f"/api/v1/users/{granted['id']}/roles") if r["type"] == role_type]
    # the API token left for persistence is revoked, and no other token was touched
    tokens_after = {t["id"] for t in gw.get("/api/v1/api-tokens")}
    assert tokens_after == set(tokens_before) - {t["id"] for t in planted}
    # and nobody outside the story was acted on
    touched = {user for _, user in changes if user}
    assert touched <= {victim, grantee}, touched
