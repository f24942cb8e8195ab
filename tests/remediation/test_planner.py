"""Planning: an incident's findings become one ordered, de-duplicated plan that keeps approvals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from core.errors import IncidentNotFoundError
from core.models import ActionStatus, AuditRecord, ConfigSnapshot, RemediationAction, TimelineEntry
from remediation import approve, get_plan, plan_for_incident
from remediation.catalogue import Phase
from remediation.errors import NotAllowed

from .conftest import T0, VICTIM


def test_takeover_plan_is_ordered_contain_eradicate_recover_and_deduplicated(db, ato_incident, analyst):
    plan = plan_for_incident(db, ato_incident, analyst)

    phases = [Phase(s.phase).rank for s in plan.steps]
    assert phases == sorted(phases)
    actions = [s.action for s in plan.steps]
    assert actions.count("m365.revoke_sessions") == 1  # asked for by three playbooks, planned once
    assert {
        "m365.disable_account",
        "m365.remove_inbox_rule",
        "m365.remove_auth_method",
        "m365.revoke_oauth_grant",
        "m365.enable_account",
    } <= set(actions)
    revoke = plan.step("m365.revoke_sessions", VICTIM)
    assert len(revoke.finding_ids) == 3 and revoke.reason.count("[playbook") == 3
    for step in plan.steps:
        assert step.reason and step.risk.split(":")[0] in ("low", "medium", "high")
        assert step.verification and step.permission


def test_recover_waits_for_everything_before_it_on_the_same_account(db, ato_incident, analyst):
    plan = plan_for_incident(db, ato_incident, analyst)

    enable = plan.step("m365.enable_account", VICTIM)
    earlier = {s.id for s in plan.steps if s.subject == VICTIM and s.phase != "recover"}
    assert set(enable.depends_on) == earlier


def test_every_proposal_is_audited_and_on_the_timeline(db, ato_incident, analyst):
    plan = plan_for_incident(db, ato_incident, analyst)

    with db.session() as s:
        proposed = s.exec(select(AuditRecord).where(AuditRecord.action == "remediation.proposed")).all()
        entries = s.exec(
            select(TimelineEntry).where(
                TimelineEntry.incident_id == ato_incident, TimelineEntry.kind == "remediation"
            )
        ).all()
    assert {int(r.object_id) for r in proposed} == {s.id for s in plan.steps}
    assert all(r.actor == analyst.name for r in proposed)
    assert len(entries) == len(plan.steps)


def test_replanning_with_a_new_finding_keeps_approvals_and_adds_steps(
    db, ato_incident, analyst, approver, make_finding
):
    first = plan_for_incident(db, ato_incident, analyst)
    rule = first.step("m365.remove_inbox_rule", VICTIM)
    approve(db, rule.id, approver)

    make_finding(
        rule_id="m365_anonymous_link_created",
        people=[VICTIM],
        incident_id=ato_incident,
        context={"fields": {"SourceFileName": "Q3 forecast.xlsx"}},
        first_seen=T0 + timedelta(minutes=30),
    )
    second = plan_for_incident(db, ato_incident, analyst)

    kept = second.step("m365.remove_inbox_rule", VICTIM)
    assert (
        kept.id == rule.id and kept.status == ActionStatus.APPROVED and kept.approved_by == (approver.name,)
    )
    assert len(second.steps) == len(first.steps) + 1
    assert second.step("m365.remove_drive_permission").status == ActionStatus.PROPOSED
    with db.session() as s:
        assert len(
            s.exec(select(RemediationAction).where(RemediationAction.incident_id == ato_incident)).all()
        ) == len(second.steps)


def test_a_step_whose_parameters_change_needs_approval_again(db, ato_incident, analyst, approver):
    plan = plan_for_incident(db, ato_incident, analyst)
    method = plan.step("m365.remove_auth_method", VICTIM)
    approve(db, method.id, approver)

    with db.session() as s:  # the incident turns out to have started earlier: a wider window to clean
        from core.models import Incident

        incident = s.get(Incident, ato_incident)
        incident.first_seen = T0 - timedelta(days=1)
        s.add(incident)
    replanned = plan_for_incident(db, ato_incident, analyst).step("m365.remove_auth_method", VICTIM)

    assert replanned.id == method.id
    assert replanned.status == ActionStatus.PROPOSED and replanned.approved_by == ()
    with db.session() as s:
        assert (
            s.exec(select(AuditRecord).where(AuditRecord.action == "remediation.replanned")).first()
            is not None
        )


def test_a_step_the_finding_cannot_fill_is_left_out_with_the_reason(db, make_incident, make_finding, analyst):
    incident = make_incident().id
    make_finding(
        rule_id="m365_anonymous_link_created",
        people=[VICTIM],
        incident_id=incident,
        context={"fields": {"ObjectId": "https://x/doc"}},
    )

    plan = plan_for_incident(db, incident, analyst)

    assert not [s for s in plan.steps if s.action == "m365.remove_drive_permission"]
    assert any("m365.remove_drive_permission" in n and "SourceFileName" in n for n in plan.notes)


def test_a_weakened_policy_is_restored_from_its_last_snapshot_before_the_change(
    db, make_incident, make_finding, analyst
):
    incident = make_incident(priority="P2").id
    good = {
        "displayName": "Require MFA",
        "state": "enabled",
        "conditions": {"users": {"includeUsers": ["All"]}},
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
    }
    with db.session() as s:
        s.add(
            ConfigSnapshot(
                provider="m365",
                object_type="ca_policy",
                object_id="pol-1",
                content_hash="a",
                data={**good, "id": "pol-1"},
                collected_at=T0 - timedelta(days=2),
            )
        )
        s.add(
            ConfigSnapshot(
                provider="m365",
                object_type="ca_policy",
                object_id="pol-1",
                content_hash="b",
                data={**good, "state": "disabled"},
                collected_at=T0 + timedelta(minutes=1),
            )
        )
    make_finding(
        rule_id="m365.mfa_admins",
        incident_id=incident,
        kind="drift",
        people=(),
        context={"object_type": "ca_policy", "object_id": "pol-1"},
    )

    step = plan_for_incident(db, incident, analyst).step("m365.restore_ca_policy", "pol-1")

    assert step.params["settings"]["state"] == "enabled" and "id" not in step.params["settings"]
    assert step.blast_radius == "tenant" and step.approvals_required == 2


def test_a_policy_named_in_an_audit_detection_is_turned_back_on(db, make_incident, make_finding, analyst):
    incident = make_incident(priority="P2").id
    make_finding(
        rule_id="m365_ca_policy_weakened",
        incident_id=incident,
        people=(),
        context={"fields": {"targetResources.displayName": "Require MFA for administrators"}},
    )

    step = plan_for_incident(db, incident, analyst).step(
        "m365.restore_ca_policy", "Require MFA for administrators"
    )

    assert step.target == {"policy_name": "Require MFA for administrators"}
    assert step.params == {"settings": {"state": "enabled"}}


def test_an_admin_target_raises_the_risk_and_the_number_of_approvers(
    db, make_incident, make_finding, make_account, analyst
):
    make_account(VICTIM, is_admin=True)
    incident = make_incident().id
    make_finding(
        rule_id="m365_signin_from_new_country",
        people=[VICTIM],
        incident_id=incident,
        mitre=("attack.t1078.004",),
    )

    plan = plan_for_incident(db, incident, analyst)

    disable = plan.step("m365.disable_account", VICTIM)
    assert disable.risk.startswith("high") and "target is an admin" in disable.risk
    assert disable.approvals_required == 2
    assert (
        plan.step("m365.revoke_sessions", VICTIM).status == ActionStatus.PROPOSED
    )  # admins are never auto-approved


def test_revoking_a_known_non_admins_sessions_in_a_p1_is_approved_by_policy(
    db, make_incident, make_finding, make_account, analyst
):
    make_account(VICTIM, is_admin=False)
    p1 = make_incident(priority="P1").id
    make_finding(
        rule_id="m365_signin_from_new_country", people=[VICTIM], incident_id=p1, mitre=("attack.t1078.004",)
    )

    plan = plan_for_incident(db, p1, analyst)

    assert plan.step("m365.revoke_sessions", VICTIM).approved_by == ("system:policy",)
    assert plan.step("m365.revoke_sessions", VICTIM).status == ActionStatus.APPROVED
    assert plan.step("m365.disable_account", VICTIM).status == ActionStatus.PROPOSED


def test_outside_a_p1_nothing_is_auto_approved(db, make_incident, make_finding, make_account, analyst):
    make_account(VICTIM, is_admin=False)
    p3 = make_incident(priority="P3").id
    make_finding(
        rule_id="m365_signin_from_new_country", people=[VICTIM], incident_id=p3, mitre=("attack.t1078.004",)
    )

    plan = plan_for_incident(db, p3, analyst)

    assert all(s.status == ActionStatus.PROPOSED for s in plan.steps)


def test_a_viewer_cannot_ask_for_a_plan_and_the_refusal_is_audited(db, ato_incident, make_principal):
    viewer = make_principal("viewer", name="vic").actor

    with pytest.raises(NotAllowed):
        plan_for_incident(db, ato_incident, viewer)

    assert get_plan(db, ato_incident).steps == ()
    with db.session() as s:
        refusal = s.exec(select(AuditRecord).where(AuditRecord.action == "remediation.refused")).one()
    assert refusal.actor == viewer.name and refusal.details["code"] == "not_allowed"


def test_planning_an_unknown_incident_says_so(db, analyst):
    with pytest.raises(IncidentNotFoundError, match="no incident 999"):
        plan_for_incident(db, 999, analyst)


def test_an_audit_record_naming_two_apps_plans_one_step_per_app_and_never_touches_microsoft_graph(
    db, make_incident, make_finding, analyst
):
    incident = make_incident().id
    make_finding(
        rule_id="m365_consent_high_risk_scopes",
        people=[VICTIM],
        incident_id=incident,
        mitre=("attack.t1528",),
        apps=("Microsoft Graph", "SecureDoc Viewer"),
        context={"fields": {"targetResources.displayName": ["Microsoft Graph", "SecureDoc Viewer"]}},
    )

    plan = plan_for_incident(db, incident, analyst)

    assert {(s.action, s.target["app"]) for s in plan.steps} == {
        ("m365.revoke_oauth_grant", "SecureDoc Viewer"),
        ("m365.disable_service_principal", "SecureDoc Viewer"),
    }
    assert any("Microsoft Graph is a Microsoft first-party app" in n for n in plan.notes)


def test_a_step_many_findings_call_for_gives_its_reason_once_and_names_every_finding(
    db, make_incident, make_finding, analyst
):
    incident = make_incident(priority="P1").id
    ids = [
        make_finding(rule_id="m365_inbox_rule_forwarding", people=[VICTIM], incident_id=incident).id
        for _ in range(6)
    ]

    plan = plan_for_incident(db, incident, analyst)

    revoke = plan.step("m365.revoke_sessions", VICTIM)
    [why] = {p.split(" [")[0] for p in revoke.reason.split("] ") if p}
    assert revoke.reason.count(why) == 1  # not six copies of one sentence
    assert all(f"#{i} m365_inbox_rule_forwarding" in revoke.reason for i in ids)
    assert "findings #" in revoke.reason
