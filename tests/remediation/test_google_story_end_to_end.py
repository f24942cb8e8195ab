"""Playbooks against the simulator on the Google delegated-admin story (issue 17): a privileged
account made by another admin is suspended and loses its role; 2-step verification enforcement
dropped for one organisational unit is restored (Google had no restore-setting action before), and
the restore rolls back. Everything from the Admin audit log to the plan is the product."""

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
from providers.google import open_gateway
from remediation import demo_flow
from remediation.approvals import approve
from remediation.executor import execute, rollback
from remediation.planner import get_plan
from timeline import build_incidents
from timeline.quality import score_against_truth

# a provider story through the same storage path as the account takeover the PostgreSQL suite runs
pytestmark = [pytest.mark.slow, pytest.mark.one_backend]
TWO_SV = "security.two_step_verification_enforcement"


def _gateway(sim: Any) -> Any:
    definition = connections_from_simulator(sim.info, providers=["google"])[0]
    connection = Connection(
        name=definition.name,
        provider="google",
        tenant=definition.tenant,
        config=definition.config,
        secret_refs=definition.secrets,
    )
    return open_gateway(connection, Secrets(definition.secrets), CallLog())


def _two_sv(gw: Any) -> dict[str, Any]:
    found = gw.get(lambda s: s.policies.policies().list(filter=f"setting.type.matches('{TWO_SV}$')"))
    return {p["name"]: p["setting"]["value"] for p in found["policies"]}


def _user(gw: Any, email: str) -> dict[str, Any]:
    return gw.get(lambda s: s.directory.users().get(userKey=email))


def test_the_privileged_account_is_suspended_without_its_role_and_2sv_is_restored_for_the_ou(
    db, settings, make_simulator, analyst, approver, second_approver
) -> None:
    # given the story collected and turned into one urgent incident by the product
    sim = make_simulator("google_delegated_admin")
    sync_connections(db, connections_from_simulator(sim.info), actor=Actor("principal:test", Channel.CLI))
    collect_once(db, settings)
    detect_new(db, settings)
    resolve_people(db)
    build_incidents(db, settings, notify=False)
    (story,) = score_against_truth(db, sim.truth)["per_story"]
    assert story["priorities"] in (["P1"], ["P2"]), story
    (incident_id,) = story["incidents"]
    sleeper = next(
        r["target"]["user"] for r in sim.truth["stories"][0]["remediation"] if r["action"] == "suspend_user"
    )
    gw = _gateway(sim)
    weakened = _two_sv(gw)
    assert len(weakened) == 2 and len({str(v) for v in weakened.values()}) == 2  # root enforces, /Sales not

    # when the plan's contain and eradicate steps are approved (twice where the policy asks) and run
    result = demo_flow(db, settings, incident_id, requested_by=analyst, approve_as=approver)
    assert not result.refused, result.refused
    for step in (s for s in result.final.steps if s.status == "proposed" and s.phase != "recover"):
        approve(db, step.id, second_approver, comment="second pair of eyes")
    report = execute(db, settings, incident_id)
    assert report.ok, [r.message for r in report.results]
    steps = {(s.action, s.subject): s for s in get_plan(db, incident_id).steps}

    # then the account that was made super admin is suspended and holds no admin role
    for action in ("google.suspend_user", "google.remove_admin_role"):
        assert steps[(action, sleeper)].status == "succeeded", steps[(action, sleeper)]
    assert _user(gw, sleeper)["suspended"] is True
    roles = gw.get(lambda s: s.directory.roleAssignments().list(customer="my_customer", userKey=sleeper))
    assert not roles.get("items")
    # and every organisational unit enforces 2-step verification as the organisation does, verified
    restore = steps[("google.restore_setting", "tenant")]
    assert restore.status == "succeeded" and "playbook google_security_setting_weakened" in restore.reason
    restored = _two_sv(gw)
    assert len({str(v) for v in restored.values()}) == 1 and restored != weakened
    assert "patch_google_policy" in {c["action"] for c in sim.changes}

    # and the restore is reversible: rolling it back puts the /Sales override back as it was
    undone = rollback(db, settings, restore.id, actor=second_approver)
    assert undone.ok, [r.message for r in undone.results]
    assert _two_sv(gw) == weakened
