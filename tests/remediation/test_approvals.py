"""Four eyes: who may approve (the permission matrix), how many must (the policy), and what is
refused (and audited) instead."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from core.audit import Actor, Channel
from core.models import ActionStatus, Approval, AuditRecord, ConfigSnapshot, Role, TimelineEntry
from core.permissions import Permission, role_allows
from remediation import Outcome, approve, execute, get_plan, plan_for_incident, reject
from remediation.errors import AlreadyDecided, InvalidState, NotAllowed, SelfApproval
from remediation.planner import add_step
from tests.leaks import PHONE, SECRET, assert_stored_redacted

from .conftest import T0, VICTIM


def _audit(db, action: str) -> list[AuditRecord]:
    with db.session() as s:
        return list(s.exec(select(AuditRecord).where(AuditRecord.action == action)).all())


def test_a_second_principal_approves_and_it_is_audited_and_on_the_timeline(
    db, ato_incident, analyst, approver
):
    step = plan_for_incident(db, ato_incident, analyst).step("m365.disable_account", VICTIM)

    outcome = approve(db, step.id, approver, comment="confirmed with the user by phone")

    assert outcome.status == ActionStatus.APPROVED and outcome.approved_by == (approver.name,)
    [record] = _audit(db, "remediation.approved")
    assert record.actor == approver.name and record.object_id == str(step.id)
    with db.session() as s:
        entry = s.exec(
            select(TimelineEntry).where(
                TimelineEntry.ref_id == str(step.id), TimelineEntry.actor == approver.name
            )
        ).one()
    assert entry.title.startswith("Approved by principal:bob")


def test_the_requester_cannot_approve_their_own_step(db, ato_incident, approver):
    step = plan_for_incident(db, ato_incident, approver).step("m365.disable_account", VICTIM)

    with pytest.raises(SelfApproval):
        approve(db, step.id, approver)

    assert get_plan(db, ato_incident).step("m365.disable_account", VICTIM).status == ActionStatus.PROPOSED
    [refusal] = _audit(db, "remediation.refused")
    assert refusal.details["code"] == "self_approval" and refusal.object_id == str(step.id)
    with db.session() as s:
        assert s.exec(select(Approval)).all() == []


def test_switching_to_slack_does_not_get_around_four_eyes(db, ato_incident, approver):
    step = plan_for_incident(db, ato_incident, approver).step("m365.disable_account", VICTIM)

    with pytest.raises(SelfApproval):
        approve(db, step.id, Actor("slack:U0BOB", Channel.SLACK))  # bob's Slack account


@pytest.mark.parametrize(
    ("name", "role", "disabled"),
    [
        ("ana2", "analyst", False),
        ("viv", "viewer", False),
        ("aud", "auditor", False),
        ("old", "approver", True),
    ],
)
def test_a_principal_without_the_approver_role_is_refused(
    db, ato_incident, analyst, make_principal, name, role, disabled
):
    step = plan_for_incident(db, ato_incident, analyst).step("m365.disable_account", VICTIM)
    who = make_principal(role, name=name, disabled=disabled).actor

    with pytest.raises(NotAllowed):
        approve(db, step.id, who)

    assert _audit(db, "remediation.refused")[0].details["code"] == "not_allowed"


def test_unknown_and_system_principals_cannot_approve(db, ato_incident, analyst):
    step = plan_for_incident(db, ato_incident, analyst).step("m365.disable_account", VICTIM)

    for who in ("principal:nobody", "slack:U0UNKNOWN", "system:scheduler"):
        with pytest.raises(NotAllowed):
            approve(db, step.id, Actor(who, Channel.API))
    assert len(_audit(db, "remediation.refused")) == 3


def _tenant_wide_step(db, make_incident, make_finding, analyst) -> tuple[int, int]:
    """A step restoring a weakened CA policy (tenant blast radius: two approvals needed)."""
    incident = make_incident(priority="P2").id
    with db.session() as s:
        s.add(
            ConfigSnapshot(
                provider="m365",
                object_type="ca_policy",
                object_id="pol-1",
                content_hash="a",
                data={"state": "enabled"},
                collected_at=T0 - timedelta(days=1),
            )
        )
    make_finding(
        rule_id="m365.mfa_admins",
        incident_id=incident,
        kind="drift",
        people=(),
        context={"object_type": "ca_policy", "object_id": "pol-1"},
    )
    return incident, plan_for_incident(db, incident, analyst).step("m365.restore_ca_policy").id


def test_a_tenant_wide_step_needs_two_different_approvers(
    db, make_incident, make_finding, analyst, approver, second_approver
):
    _, step_id = _tenant_wide_step(db, make_incident, make_finding, analyst)

    first = approve(db, step_id, approver)
    with pytest.raises(AlreadyDecided):
        approve(db, step_id, approver)
    second = approve(db, step_id, second_approver)

    assert (first.status, first.approvals, first.approvals_required) == (ActionStatus.PROPOSED, 1, 2)
    assert (second.status, second.approvals) == (ActionStatus.APPROVED, 2)
    assert len(_audit(db, "remediation.approval_recorded")) == 1


def test_one_person_through_the_api_and_through_slack_is_one_approver(
    db, make_incident, make_finding, analyst, approver, second_approver
):
    # Given a step that needs two approvals, approved by bob through the API
    incident, step_id = _tenant_wide_step(db, make_incident, make_finding, analyst)
    approve(db, step_id, approver)
    # When bob clicks Approve in Slack too, it does not count as a second pair of eyes
    with pytest.raises(AlreadyDecided):
        approve(db, step_id, Actor("slack:U0BOB", Channel.SLACK))
    [step] = [s for s in get_plan(db, incident).steps if s.id == step_id]
    assert step.approved_by == (approver.name,)
    # Then only a different person completes the approval
    assert approve(db, step_id, second_approver).status == ActionStatus.APPROVED


@pytest.mark.parametrize("role", list(Role))
def test_who_may_request_and_approve_is_the_permission_matrix(
    db, ato_incident, analyst, make_principal, role
):
    """The remediation stages ask core.permissions (the API's matrix) for every channel; the
    approval policy names no roles."""
    person = make_principal(role, name=f"someone-{role.value}").actor
    step = plan_for_incident(db, ato_incident, analyst).step("m365.disable_account", VICTIM)

    if role_allows(role, Permission.ACTIONS_DECIDE):
        assert approve(db, step.id, person).approved_by == (person.name,)
    else:
        with pytest.raises(NotAllowed, match="needs one of"):
            approve(db, step.id, person)
    if role_allows(role, Permission.ACTIONS_REQUEST):
        asked = add_step(
            db, ato_incident, "m365.revoke_sessions", {"user": VICTIM}, requested_by=person, reason="r"
        )
        assert asked.action == "m365.revoke_sessions"
    else:
        with pytest.raises(NotAllowed, match="needs one of"):
            add_step(
                db, ato_incident, "m365.revoke_sessions", {"user": VICTIM}, requested_by=person, reason="r"
            )


def test_a_rejected_step_cannot_be_approved_afterwards(db, ato_incident, analyst, approver, second_approver):
    step = plan_for_incident(db, ato_incident, analyst).step("m365.disable_account", VICTIM)

    reject(db, step.id, approver, comment="the user is travelling, sign-in is legitimate")

    with pytest.raises(InvalidState):
        approve(db, step.id, second_approver)
    assert get_plan(db, ato_incident).step("m365.disable_account", VICTIM).status == ActionStatus.REJECTED
    assert len(_audit(db, "remediation.rejected")) == 1


def test_an_expired_approval_is_refused_at_execution_and_nothing_runs(
    db, settings, ato_incident, analyst, approver, policy
):
    step = plan_for_incident(db, ato_incident, analyst).step("m365.disable_account", VICTIM)
    approve(db, step.id, approver, now=T0)

    report = execute(db, settings, action_ids=[step.id], now=T0 + policy.approval_ttl + timedelta(minutes=1))

    [result] = report.results
    assert result.outcome == Outcome.REFUSED and "expired" in result.message and result.calls == ()
    assert (
        get_plan(db, ato_incident, now=T0 + timedelta(days=2)).step("m365.disable_account", VICTIM).status
        == ActionStatus.PROPOSED
    )
    assert _audit(db, "remediation.refused")[0].details["code"] == "approval_invalid"


def test_a_step_that_was_never_approved_is_refused_when_named_explicitly(db, settings, ato_incident, analyst):
    step = plan_for_incident(db, ato_incident, analyst).step("m365.disable_account", VICTIM)

    [result] = execute(db, settings, action_ids=[step.id]).results

    assert result.outcome == Outcome.REFUSED and result.calls == ()
    assert len(_audit(db, "remediation.refused")) == 1


def test_when_a_step_is_rejected_the_steps_that_depend_on_it_are_stopped(
    db, settings, ato_incident, analyst, approver
):
    plan = plan_for_incident(db, ato_incident, analyst)
    for step in plan.steps:
        if step.action == "m365.disable_account":
            reject(db, step.id, approver, comment="not this one")
        else:
            approve(db, step.id, approver)

    report = execute(db, settings, ato_incident)

    outcomes = {r.action: r.outcome for r in report.results}
    assert outcomes["m365.enable_account"] == Outcome.STOPPED
    assert get_plan(db, ato_incident).step("m365.enable_account", VICTIM).status == ActionStatus.SKIPPED
    assert _audit(db, "remediation.stopped")


def test_a_step_without_a_usable_connection_stays_approved_and_its_dependents_wait(
    db, settings, ato_incident, analyst, approver
):
    # No connection is configured for m365: the contain steps cannot run, nothing was called
    plan = plan_for_incident(db, ato_incident, analyst)
    for step in plan.steps:
        approve(db, step.id, approver)

    report = execute(db, settings, ato_incident)

    outcomes = {r.action: r.outcome for r in report.results}
    assert outcomes["m365.disable_account"] == Outcome.FAILED
    assert outcomes["m365.enable_account"] == Outcome.WAITING
    assert get_plan(db, ato_incident).step("m365.disable_account", VICTIM).status == ActionStatus.APPROVED
    assert _audit(db, "remediation.not_run")


@pytest.mark.parametrize("decide", [approve, reject])
def test_a_decision_comment_is_stored_redacted(db, ato_incident, analyst, approver, decide):
    step = plan_for_incident(db, ato_incident, analyst).step("m365.disable_account", VICTIM)

    decide(db, step.id, approver, comment=f"user read me {SECRET} and {PHONE}")

    assert_stored_redacted(db)


def test_the_reason_for_an_asked_for_step_is_stored_redacted(db, ato_incident, analyst):
    add_step(
        db,
        ato_incident,
        "m365.revoke_sessions",
        {"user": VICTIM},
        requested_by=analyst,
        reason=f"the user pasted {SECRET}; call {PHONE}",
    )

    assert_stored_redacted(db)
