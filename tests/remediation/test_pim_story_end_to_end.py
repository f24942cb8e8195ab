"""The role an attacker activated through Privileged Identity Management is removed (issue 17): on
the token_theft story, the plan built from the product's own findings removes the activated
Exchange Administrator assignment through Graph, verified by reading the assignments back."""

from __future__ import annotations

import pytest

from collectors import collect_once, connections_from_simulator
from collectors.connections import sync_connections
from core.audit import Actor, Channel
from detectors.pipeline import detect_new
from identity import resolve_people
from remediation.approvals import approve
from remediation.executor import execute
from remediation.planner import plan_for_incident
from timeline import build_incidents
from timeline.quality import score_against_truth

pytestmark = pytest.mark.slow


def test_the_role_activated_through_pim_is_removed_and_verified(
    db, settings, make_simulator, analyst, approver, second_approver
) -> None:
    # given the token-theft story collected and turned into one urgent incident by the product
    sim = make_simulator("token_theft")
    sync_connections(db, connections_from_simulator(sim.info), actor=Actor("principal:test", Channel.CLI))
    collect_once(db, settings)
    detect_new(db, settings)
    resolve_people(db)
    build_incidents(db, settings, notify=False)
    (story,) = score_against_truth(db, sim.truth)["per_story"]
    (incident_id,) = story["incidents"]
    truth = next(
        r["target"] for r in sim.truth["stories"][0]["remediation"] if r["action"] == "remove_role_assignment"
    )
    # when the plan's role removals are approved (by two people: a role removal cannot be undone)
    plan = plan_for_incident(db, incident_id, analyst)
    removals = [s for s in plan.steps if s.action == "m365.remove_role_assignment"]
    assert removals and {s.subject for s in removals} == {truth["user"]}
    for step in removals:
        for who in (approver, second_approver)[: step.approvals_required]:
            approve(db, step.id, who, comment="the activation was not requested by the owner")
    report = execute(db, settings, action_ids=[s.id for s in removals])
    # then the activated assignment is gone, read back through Graph (a second step naming the
    # same role finds nothing left to remove and changes nothing)
    done = [r for r in report.results if str(r.outcome) == "succeeded"]
    assert done, [r.message for r in report.results]
    assert not done[0].verification["still_present"]
    removed = [c for c in sim.changes if c["action"] == "remove_role_assignment"]
    assert truth["role_assignment_id"] in {c["target"].get("role_assignment_id") for c in removed}, removed
