"""The guest playbook against the simulator on the Slack guest-exfiltration story (issue 17): a
member lets an outside address into private channels; the plan takes the guest out of every
channel it was added to (admin.conversations.kick, which Slack's catalogue lacked) and signs the
inviter out; the state is read back, and the removal rolls back by inviting the guest back to the
same channels. The same run checks the story is one P1/P2 incident and the announced agency
guest none (this test replaces the end-to-end half of tests/simulator/test_slack_guest_exfiltration,
so the suite builds this world once)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from core.models import TimelineEntry
from core.models.enums import TimelineEntryKind
from remediation import demo_flow
from remediation.approvals import approve
from remediation.executor import execute, rollback
from remediation.planner import get_plan
from tests.scenario_run import run_and_score

pytestmark = [pytest.mark.slow, pytest.mark.one_backend]
GUEST = "r.kowalski.home@fastmail.example"


def _guest_channels(sim: Any) -> set[str]:
    """The channels the simulated workspace has the guest in (what conversations.members serves)."""
    state = sim.sim.state
    with state.lock:
        guest = next(g["id"] for g in state.slack_guests.values() if g["email"] == GUEST)
        return {channel for channel, guests in state.slack_channel_guests.items() if guest in guests}


def test_the_guest_leaves_every_channel_and_the_inviter_is_signed_out_then_the_removal_rolls_back(
    db, settings, settled_simulator, analyst, approver, second_approver
) -> None:
    # given the story collected and turned into one urgent incident by the product
    sim = settled_simulator("slack_guest_exfiltration")
    result = run_and_score(db, settings, sim)
    assert result["stories_split"] == result["stories_merged"] == 0
    assert result["exactly_one_incident"] == result["stories"] == 1
    assert {"P1", "P2"}.isdisjoint(result["unmatched_incidents"]["by_priority"])
    assert result["decoys"]["at_p1_p2"] == 0
    assert result["conversations"]["correct"] == result["conversations"]["expected"]
    (story,) = result["per_story"]
    assert story["priorities"][0] in ("P1", "P2"), story
    (incident_id,) = story["incidents"]
    inviter = next(
        r["target"]["user"]
        for r in sim.truth["stories"][0]["remediation"]
        if r["action"] == "reset_slack_sessions"
    )
    # and the analyst's thread on the timeline is named by its channel, not the channel id
    with db.session(readonly=True) as s:
        titles = s.exec(
            select(TimelineEntry.title).where(
                TimelineEntry.incident_id == incident_id, TimelineEntry.kind == TimelineEntryKind.MESSAGE
            )
        ).all()
    assert titles and all(t.endswith(" in #it-help") for t in titles), titles
    added_to = _guest_channels(sim)
    assert len(added_to) == 3  # #security-ops (private), #finance, #sales

    # when the plan's contain and eradicate steps are approved (twice where the policy asks) and run
    flow = demo_flow(db, settings, incident_id, requested_by=analyst, approve_as=approver)
    assert not flow.refused, flow.refused
    for step in (s for s in flow.final.steps if s.status == "proposed" and s.phase != "recover"):
        approve(db, step.id, second_approver, comment="second pair of eyes")
    report = execute(db, settings, incident_id)
    assert report.ok, [
        (r.action, r.outcome, r.message) for r in (flow.report.results if flow.report else ())
    ] + [(s.action, s.subject, s.status) for s in get_plan(db, incident_id).steps]
    steps = {(s.action, s.subject): s for s in get_plan(db, incident_id).steps}

    # then the guest is in no channel any more, verified by reading the members back
    removal = next(s for (action, _), s in steps.items() if action == "slack.remove_from_channels")
    assert removal.status == "succeeded", removal
    assert "playbook slack_guest_in_private_channel" in removal.reason
    assert _guest_channels(sim) == set()
    kicks = [c for c in sim.changes if c["action"] == "kick_from_channel"]
    assert {c["target"]["channel"] for c in kicks} == added_to
    # and the member who invited it is signed out of every Slack client
    reset = steps[("slack.reset_sessions", inviter)]
    assert reset.status == "succeeded", reset
    assert any(c["action"] == "reset_slack_sessions" and c["target"]["user"] == inviter for c in sim.changes)

    # and the removal is reversible: rolling it back invites the guest to the same channels again
    undone = rollback(db, settings, removal.id, actor=second_approver)
    assert undone.ok, [r.message for r in undone.results]
    assert _guest_channels(sim) == added_to
