"""The dormant-account playbook against the simulator (issue 17): an M365 account unused for months
signs in again from a hosting network and forwards its mail out. The product saw the tenant a week
earlier (one users read: the account dormant), and now: it raises identity.dormant_account_revived
beside the forwarding rule, one P1/P2 incident, and the plan disables the account, revokes its
sessions and removes the forwarding rule — each verified by reading it back; the disable and the
rule removal roll back. The earlier pass is the same tenant without the story (same seed and
people), read for its users only, so the test builds one small extra world and no process."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlmodel import select

from collectors import collect_once, connections_from_simulator
from collectors.connections import sync_connections
from core.audit import Actor, Channel
from core.models import Account, Finding
from detectors.pipeline import detect_new
from identity import resolve_people, review_people
from remediation import demo_flow
from remediation.approvals import approve
from remediation.executor import execute, rollback
from remediation.planner import get_plan
from simulator.scenario import load_scenario
from simulator.timestamps import settled_period_start
from timeline import build_incidents
from timeline.quality import score_against_truth

pytestmark = [pytest.mark.slow, pytest.mark.one_backend]
SCENARIO = "dormant_account_revival"
ACTOR = Actor("principal:test", Channel.CLI)


def _connections(info: dict[str, Any], **options: Any) -> list[Any]:
    """The simulator's connections; the M365 users listing is read whole on every pass
    (reconcile_hours 0), which is where Entra reports each account's last sign-in."""
    found = connections_from_simulator(info, **options)
    for definition in found:
        if definition.provider == "m365":
            definition.config["reconcile_hours"] = 0
    return found


def test_a_revived_dormant_account_is_disabled_signed_out_and_loses_its_forwarding_rule(
    db, settings, make_simulator, analyst, approver, second_approver
) -> None:
    start = settled_period_start(7)
    # given the product read the tenant's users before the story: the account was dormant then
    before = make_simulator(replace(load_scenario(SCENARIO), stories=()), start=start)
    sync_connections(db, _connections(before.info, providers=["m365"]), actor=ACTOR)
    assert collect_once(db, settings, streams=["users"]).ok
    resolve_people(db)
    before.stop()
    sim = make_simulator(SCENARIO, start=start)
    victim = sim.truth["stories"][0]["people"][0]
    with db.session(readonly=True) as s:
        (dormant,) = s.exec(select(Account).where(Account.email == victim)).all()
    assert dormant.last_sign_in_at is not None  # months ago

    # when the product collects the tenant now, as its next cycle would (a full users read; the
    # story is M365 only, so the test reads M365 only)
    sync_connections(db, _connections(sim.info, providers=["m365"]), actor=ACTOR)
    assert collect_once(db, settings).ok
    detect_new(db, settings)
    resolve_people(db)
    review_people(db)
    build_incidents(db, settings, notify=False)
    result = score_against_truth(db, sim.truth)

    # then the revival is a finding and the story one P1/P2 incident; the returner is none
    with db.session(readonly=True) as s:
        revived = s.exec(select(Finding).where(Finding.rule_id == "identity.dormant_account_revived")).all()
    assert [f.entities["people"] for f in revived] == [[victim]], revived
    assert result["stories_split"] == result["stories_merged"] == 0
    assert result["exactly_one_incident"] == result["stories"] == 1
    assert {"P1", "P2"}.isdisjoint(result["unmatched_incidents"]["by_priority"])
    assert result["decoys"]["with_incident"] == 0
    (story,) = result["per_story"]
    assert story["priorities"][0] in ("P1", "P2"), story
    (incident_id,) = story["incidents"]

    # when the plan's contain and eradicate steps are approved (twice where the policy asks) and run
    flow = demo_flow(db, settings, incident_id, requested_by=analyst, approve_as=approver)
    assert not flow.refused, flow.refused
    for step in (s for s in flow.final.steps if s.status == "proposed" and s.phase != "recover"):
        approve(db, step.id, second_approver, comment="second pair of eyes")
    report = execute(db, settings, incident_id)
    assert report.ok, [(r.action, r.outcome, r.message) for r in report.results]
    steps = {(s.action, s.subject): s for s in get_plan(db, incident_id).steps}

    # then the account is disabled, its sessions revoked and its forwarding rule gone, all verified
    for action in ("m365.disable_account", "m365.revoke_sessions", "m365.remove_inbox_rule"):
        step = steps[(action, victim)]
        assert step.status == "succeeded", step
        assert "playbook dormant_account_revived" in step.reason, step.reason
    changed = {c["action"] for c in sim.changes}
    assert {"disable_user", "revoke_sessions"} <= changed, changed
    state = sim.sim.state
    person = sim.sim.tenant.person(victim)
    assert state.user(person.index).entra_enabled is False
    assert not [
        r for r in state.inbox_rules_added.get(person.index, []) if r.id not in state.inbox_rules_removed
    ]

    # and disabling and removing the rule are reversible: rolled back, the account signs in and the rule is back
    for action in ("m365.disable_account", "m365.remove_inbox_rule"):
        undone = rollback(db, settings, steps[(action, victim)].id, actor=second_approver)
        assert undone.ok, [r.message for r in undone.results]
    assert state.user(person.index).entra_enabled is True
    assert [r for r in state.inbox_rules_added.get(person.index, []) if r.id not in state.inbox_rules_removed]
