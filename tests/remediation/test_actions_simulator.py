"""Every catalogue action against the simulator: the state changes, reads confirm it, rollback undoes it.

Each test stores connections pointing at a simulator, asks for one step (as an analyst), has a
second principal approve it, executes it through the official clients, then reads the tenant
back through the official clients (not through our gateways) and checks the simulator's change log.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from core.models import ActionStatus, AuditRecord, Connection, RemediationAction
from providers.credentials import Secrets
from providers.google import google_service
from providers.m365 import m365_clients
from providers.slack import slack_web_client
from remediation import Outcome, add_step, approve, execute, rollback
from remediation.errors import InvalidState

START = "2026-03-02T00:00:00Z"


class Tenant:
    """Independent reads of the simulated tenant through the official clients."""

    def __init__(self, db, sim) -> None:
        self.sim = sim
        with db.session() as s:
            self.connections = {c.provider: c for c in s.exec(select(Connection)).all()}

    def graph(self, path: str) -> Any:
        connection = self.connections["m365"]
        clients = m365_clients(connection, Secrets(connection.secret_refs))
        response = clients.graph.get(clients.graph_base_url + path)
        return response.json() if response.status_code == 200 else None

    def directory(self) -> Any:
        connection = self.connections["google"]
        return google_service(connection, Secrets(connection.secret_refs), "directory")

    def drive(self) -> Any:
        connection = self.connections["google"]
        return google_service(connection, Secrets(connection.secret_refs), "drive")

    def slack(self, token: str = "bot_token") -> Any:
        connection = self.connections["slack"]
        return slack_web_client(connection, Secrets(connection.secret_refs), token=token)

    def changes(self, action: str) -> list[dict[str, Any]]:
        return [c for c in self.sim.changes if c["action"] == action]


@pytest.fixture
def tenant_of(db, connect, make_simulator):
    def make(scenario: str) -> Tenant:
        sim = make_simulator(scenario, start=START)
        connect(sim)
        return Tenant(db, sim)

    return make


@pytest.fixture
def run(db, settings, make_incident, analyst, approver, second_approver):
    """Ask for one action, have it approved (by as many principals as policy asks), execute it."""

    def go(action: str, target: dict[str, Any], params: dict[str, Any] | None = None):
        incident = make_incident().id
        step = add_step(db, incident, action, target, params, requested_by=analyst, reason="test scenario")
        for who in (approver, second_approver)[: step.approvals_required]:
            approve(db, step.id, who)
        [result] = execute(db, settings, action_ids=[step.id]).results
        return step.id, result

    return go


@pytest.fixture
def undo(db, settings, approver):
    def go(action_id: int):
        [result] = rollback(db, settings, action_id, actor=approver).results
        return result

    return go


def succeeded(result) -> bool:
    assert result.outcome == Outcome.SUCCEEDED, f"{result.outcome}: {result.message}"
    return True


def rolled_back(result) -> bool:
    assert result.outcome == Outcome.ROLLED_BACK, f"{result.outcome}: {result.message}"
    return True


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) else value


def _remediation(sim, action: str) -> dict[str, Any]:
    return next(r["target"] for s in sim.truth["stories"] for r in s["remediation"] if r["action"] == action)


# --------------------------------------------------------------------------- Microsoft 365


def test_disable_account_then_roll_back(tenant_of, run, undo):
    tenant = tenant_of("account_takeover")
    victim = _remediation(tenant.sim, "revoke_sessions")["user"]

    step_id, result = run("m365.disable_account", {"user": victim})

    assert succeeded(result)
    assert tenant.graph(f"/users/{victim}?$select=accountEnabled")["accountEnabled"] is False
    assert tenant.changes("disable_user")[0]["target"]["user"] == victim

    assert rolled_back(undo(step_id))
    assert tenant.graph(f"/users/{victim}?$select=accountEnabled")["accountEnabled"] is True


def test_revoke_sessions_moves_the_valid_from_time_and_has_nothing_to_undo(tenant_of, run, undo):
    tenant = tenant_of("account_takeover")
    victim = _remediation(tenant.sim, "revoke_sessions")["user"]
    before = tenant.graph(f"/users/{victim}?$select=signInSessionsValidFromDateTime")[
        "signInSessionsValidFromDateTime"
    ]

    step_id, result = run("m365.revoke_sessions", {"user": victim})

    after = tenant.graph(f"/users/{victim}?$select=signInSessionsValidFromDateTime")[
        "signInSessionsValidFromDateTime"
    ]
    assert succeeded(result) and after > before
    assert len(tenant.changes("revoke_sessions")) == 1
    rolled = undo(step_id)
    assert rolled.outcome == Outcome.ROLLED_BACK and rolled.calls == () and "ends by itself" in rolled.message


def test_confirm_compromised_then_roll_back_dismisses(tenant_of, run, undo):
    tenant = tenant_of("account_takeover")
    victim = _remediation(tenant.sim, "confirm_compromised")
    risky = f"/identityProtection/riskyUsers/{victim['user_id']}"

    step_id, result = run("m365.confirm_compromised", {"user": victim["user"]})

    assert succeeded(result)
    assert tenant.graph(risky)["riskState"] == "confirmedCompromised"
    assert rolled_back(undo(step_id))
    assert tenant.graph(risky)["riskState"] == "dismissed"


def test_dismiss_risk_is_irreversible(db, settings, tenant_of, run, approver):
    tenant = tenant_of("account_takeover")
    victim = _remediation(tenant.sim, "confirm_compromised")

    step_id, result = run("m365.dismiss_risk", {"user": victim["user"]})

    assert succeeded(result)
    assert tenant.graph(f"/identityProtection/riskyUsers/{victim['user_id']}")["riskState"] == "dismissed"
    with pytest.raises(InvalidState, match="irreversible"):
        rollback(db, settings, step_id, actor=approver)


def test_remove_the_attackers_inbox_rule_then_roll_back(tenant_of, run, undo):
    tenant = tenant_of("account_takeover")
    target = _remediation(tenant.sim, "remove_inbox_rule")
    rules = f"/users/{target['user']}/mailFolders/inbox/messageRules"

    step_id, result = run("m365.remove_inbox_rule", {"user": target["user"], "rule_id": target["rule_id"]})

    assert succeeded(result)
    assert target["rule_id"] not in {r["id"] for r in tenant.graph(rules)["value"]}
    assert tenant.changes("remove_inbox_rule")[0]["target"]["rule_id"] == target["rule_id"]

    assert rolled_back(undo(step_id))
    restored = [r for r in tenant.graph(rules)["value"] if r["actions"].get("forwardTo")]
    assert restored and restored[0]["displayName"] == "."


def test_remove_the_attackers_mfa_method(tenant_of, run):
    tenant = tenant_of("account_takeover")
    target = _remediation(tenant.sim, "delete_auth_method")

    _, result = run("m365.remove_auth_method", {"user": target["user"], "method_id": target["method_id"]})

    assert succeeded(result)
    methods = tenant.graph(f"/users/{target['user']}/authentication/methods")["value"]
    assert target["method_id"] not in {m["id"] for m in methods}
    assert len(tenant.changes("delete_auth_method")) == 1


def test_revoke_a_users_oauth_grant_then_roll_back(tenant_of, run, undo):
    tenant = tenant_of("oauth_consent_phishing")
    target = _remediation(tenant.sim, "revoke_oauth_grant")
    grants = tenant.graph("/oauth2PermissionGrants")["value"]
    app = next(g["clientId"] for g in grants if g["id"] == _first(target["grant_id"]))

    step_id, result = run("m365.revoke_oauth_grant", {"user": target["user"], "app": app})

    assert succeeded(result)
    remaining = tenant.graph(f"/oauth2PermissionGrants?$filter=clientId eq '{app}'")["value"]
    assert not [g for g in remaining if g["principalId"] == target["user_id"]]
    assert [g for g in remaining if g["principalId"] != target["user_id"]]  # other users' consent untouched

    assert rolled_back(undo(step_id))
    back = tenant.graph(f"/oauth2PermissionGrants?$filter=clientId eq '{app}'")["value"]
    assert [g for g in back if g["principalId"] == target["user_id"]]


def test_remove_an_anonymous_sharing_link(tenant_of, run):
    tenant = tenant_of("insider_exfiltration")
    target = _remediation(tenant.sim, "remove_sharing_link")
    drive_id, item_id, permission_id = (_first(target[k]) for k in ("drive_id", "file_id", "permission_id"))

    _, result = run(
        "m365.remove_drive_permission",
        {"drive_id": drive_id, "item_id": item_id, "permission_id": permission_id},
    )

    assert succeeded(result)
    permissions = tenant.graph(f"/drives/{drive_id}/items/{item_id}/permissions")["value"]
    assert permission_id not in {p["id"] for p in permissions}
    assert tenant.changes("remove_sharing_link")[0]["target"]["permission_id"] == permission_id


def test_remove_anonymous_links_of_a_file_named_by_its_owner_and_name(tenant_of, run):
    tenant = tenant_of("insider_exfiltration")
    target = _remediation(tenant.sim, "remove_sharing_link")
    drive_id, item_id = _first(target["drive_id"]), _first(target["file_id"])
    name = tenant.graph(f"/drives/{drive_id}/items/{item_id}")["name"]

    _, result = run(
        "m365.remove_drive_permission", {"user": target["user"], "file_name": name, "scope": "anonymous"}
    )

    assert succeeded(result)
    links = [
        p for p in tenant.graph(f"/drives/{drive_id}/items/{item_id}/permissions")["value"] if p.get("link")
    ]
    assert not [p for p in links if p["link"]["scope"] == "anonymous"]


def test_restore_a_disabled_ca_policy_then_roll_back(tenant_of, run, undo):
    tenant = tenant_of("admin_privilege_abuse")
    target = _remediation(tenant.sim, "restore_ca_policy")
    policy = f"/identity/conditionalAccess/policies/{target['policy_id']}"
    assert tenant.graph(policy)["state"] == "disabled"

    step_id, result = run(
        "m365.restore_ca_policy", {"policy_id": target["policy_id"]}, {"settings": {"state": "enabled"}}
    )

    assert succeeded(result) and tenant.graph(policy)["state"] == "enabled"
    assert rolled_back(undo(step_id))
    assert tenant.graph(policy)["state"] == "disabled"


def test_restore_a_policy_named_by_its_display_name(tenant_of, run, undo):
    tenant = tenant_of("admin_privilege_abuse")
    policy_id = _remediation(tenant.sim, "restore_ca_policy")["policy_id"]
    policy = f"/identity/conditionalAccess/policies/{policy_id}"
    name = tenant.graph(policy)["displayName"]

    step_id, result = run("m365.restore_ca_policy", {"policy_name": name}, {"settings": {"state": "enabled"}})

    assert succeeded(result) and tenant.graph(policy)["state"] == "enabled"
    assert rolled_back(undo(step_id))
    assert tenant.graph(policy)["state"] == "disabled"


def test_restore_security_defaults_then_roll_back(tenant_of, run, undo):
    tenant = tenant_of("quiet_week")
    path = "/policies/identitySecurityDefaultsEnforcementPolicy"
    assert tenant.graph(path)["isEnabled"] is False

    step_id, result = run("m365.restore_security_defaults", {}, {"enabled": True})

    assert succeeded(result) and tenant.graph(path)["isEnabled"] is True
    assert rolled_back(undo(step_id))
    assert tenant.graph(path)["isEnabled"] is False


def test_disable_a_consented_app_then_roll_back(tenant_of, run, undo):
    tenant = tenant_of("oauth_consent_phishing")
    sp_id = _first(_remediation(tenant.sim, "disable_service_principal")["service_principal_id"])
    name = tenant.graph(f"/servicePrincipals/{sp_id}")["displayName"]

    step_id, result = run("m365.disable_service_principal", {"app": name})

    assert succeeded(result) and tenant.graph(f"/servicePrincipals/{sp_id}")["accountEnabled"] is False
    assert rolled_back(undo(step_id))
    assert tenant.graph(f"/servicePrincipals/{sp_id}")["accountEnabled"] is True


def test_remove_a_self_granted_admin_role(tenant_of, run):
    tenant = tenant_of("admin_privilege_abuse")
    target = _remediation(tenant.sim, "remove_role_assignment")

    _, result = run("m365.remove_role_assignment", {"user": target["user"], "role": "Global Administrator"})

    assert succeeded(result)
    left = tenant.graph(
        f"/roleManagement/directory/roleAssignments?$filter=principalId eq '{target['user_id']}'"
    )["value"]
    assert target["role_assignment_id"] not in {a["id"] for a in left}
    assert tenant.changes("remove_role_assignment")


# --------------------------------------------------------------------------- Google Workspace


def test_suspend_a_google_user_then_roll_back_unsuspends(tenant_of, run, undo):
    tenant = tenant_of("insider_exfiltration")
    user = _remediation(tenant.sim, "suspend_user")["user"]

    step_id, result = run("google.suspend_user", {"user": user})

    assert succeeded(result)
    assert tenant.directory().users().get(userKey=user).execute()["suspended"] is True
    assert rolled_back(undo(step_id))
    assert tenant.directory().users().get(userKey=user).execute()["suspended"] is False
    assert [c["action"] for c in tenant.sim.changes] == ["suspend_user", "unsuspend_user"]


def test_sign_a_google_user_out(tenant_of, run):
    tenant = tenant_of("insider_exfiltration")
    user = _remediation(tenant.sim, "suspend_user")["user"]

    _, result = run("google.sign_out", {"user": user})

    assert succeeded(result)
    assert tenant.changes("sign_out")[0]["target"]["user"] == user


def test_revoke_a_google_oauth_token(tenant_of, run):
    tenant = tenant_of("oauth_consent_phishing")
    target = _remediation(tenant.sim, "delete_google_token")

    _, result = run("google.revoke_token", {"user": target["user"], "client_id": target["client_id"]})

    assert succeeded(result)
    tokens = tenant.directory().tokens().list(userKey=target["user"]).execute().get("items", [])
    assert target["client_id"] not in {t["clientId"] for t in tokens}
    assert len(tenant.changes("delete_google_token")) == 1


def test_remove_a_public_drive_link_then_roll_back(tenant_of, run, undo):
    tenant = tenant_of("insider_exfiltration")
    target = _remediation(tenant.sim, "remove_public_link")
    file_id = _first(target["file_id"])

    def public() -> list[str]:
        listing = tenant.drive().permissions().list(fileId=file_id).execute()
        return [p["id"] for p in listing["permissions"] if p["type"] == "anyone"]

    assert public()
    step_id, result = run("google.remove_drive_permission", {"file_id": file_id, "scope": "anyone"})

    assert succeeded(result) and public() == []
    assert rolled_back(undo(step_id))
    assert public()


def test_force_a_google_password_change_then_roll_back(tenant_of, run, undo):
    tenant = tenant_of("insider_exfiltration")
    user = _remediation(tenant.sim, "suspend_user")["user"]

    step_id, result = run("google.force_password_change", {"user": user})

    assert succeeded(result)
    assert tenant.directory().users().get(userKey=user).execute()["changePasswordAtNextLogin"] is True
    assert rolled_back(undo(step_id))
    assert tenant.directory().users().get(userKey=user).execute()["changePasswordAtNextLogin"] is False


def test_remove_a_google_admin_role(tenant_of, run):
    tenant = tenant_of("admin_privilege_abuse")
    target = _remediation(tenant.sim, "remove_google_role")

    _, result = run(
        "google.remove_admin_role",
        {"user": target["user"], "role_assignment_id": target["role_assignment_id"]},
    )

    assert succeeded(result)
    left = tenant.directory().roleAssignments().list(customer="my_customer", userKey=target["user"]).execute()
    assert target["role_assignment_id"] not in {a["roleAssignmentId"] for a in left.get("items", [])}


# --------------------------------------------------------------------------- Slack


def test_reset_a_slack_users_sessions(tenant_of, run):
    tenant = tenant_of("slack_session_theft")
    target = _remediation(tenant.sim, "reset_slack_sessions")

    _, result = run("slack.reset_sessions", {"user": target["user"]})

    assert succeeded(result)
    assert tenant.changes("reset_slack_sessions")[0]["target"]["user_id"] == target["user_id"]


def test_deactivate_a_slack_user(tenant_of, run):
    tenant = tenant_of("insider_exfiltration")
    target = _remediation(tenant.sim, "deactivate_user")

    _, result = run("slack.deactivate_user", {"user": target["user_id"]})

    assert succeeded(result)
    assert tenant.slack().users_info(user=target["user_id"])["user"]["deleted"] is True


def test_revoke_a_slack_files_public_url_then_roll_back(tenant_of, run, undo):
    tenant = tenant_of("slack_session_theft")
    file_id = _remediation(tenant.sim, "revoke_public_url")["file_id"]

    step_id, result = run("slack.revoke_public_url", {"file": file_id})

    assert succeeded(result)
    assert tenant.slack().files_info(file=file_id)["file"]["public_url_shared"] is False
    assert rolled_back(undo(step_id))
    assert tenant.slack().files_info(file=file_id)["file"]["public_url_shared"] is True


def test_uninstall_a_slack_app(tenant_of, run):
    tenant = tenant_of("slack_session_theft")
    app_id = _remediation(tenant.sim, "uninstall_app")["app_id"]

    _, result = run("slack.uninstall_app", {"app": app_id})

    assert succeeded(result)
    installed = tenant.slack("admin_token").admin_apps_approved_list()["approved_apps"]
    assert app_id not in {entry["app"]["id"] for entry in installed}
    assert tenant.changes("uninstall_app")


# --------------------------------------------------------------------------- execution properties


def test_a_done_step_run_again_calls_nothing(db, settings, tenant_of, run):
    tenant = tenant_of("account_takeover")
    victim = _remediation(tenant.sim, "revoke_sessions")["user"]
    step_id, _ = run("m365.disable_account", {"user": victim})
    requests_before = len(tenant.sim.requests)

    [again] = execute(db, settings, action_ids=[step_id]).results

    assert again.outcome == Outcome.ALREADY_DONE and again.calls == ()
    assert len(tenant.sim.changes) == 1 and len(tenant.sim.requests) == requests_before


def test_a_dry_run_lists_the_exact_calls_and_changes_nothing(db, settings, tenant_of, make_incident, analyst):
    tenant = tenant_of("account_takeover")
    target = _remediation(tenant.sim, "remove_inbox_rule")
    incident = make_incident().id
    step = add_step(
        db,
        incident,
        "m365.remove_inbox_rule",
        {"user": target["user"]},
        requested_by=analyst,
        reason="forwarding",
    )

    [result] = execute(db, settings, incident, dry_run=True).results

    writes = [c for c in result.calls if c.kind == "write"]
    graph = tenant.sim.info["m365.graph_base_url"]
    assert result.outcome == Outcome.DRY_RUN
    assert [(c.method, c.url, c.sent) for c in writes] == [
        (
            "DELETE",
            f"{graph}/users/{target['user']}/mailFolders/inbox/messageRules/{target['rule_id']}",
            False,
        )
    ]
    assert tenant.sim.changes == []
    with db.session() as s:
        assert s.get(RemediationAction, step.id).status == ActionStatus.PROPOSED


def test_a_target_that_is_already_gone_is_refused_audited_and_nothing_is_written(db, tenant_of, run):
    tenant = tenant_of("account_takeover")
    target = _remediation(tenant.sim, "remove_inbox_rule")
    run("m365.remove_inbox_rule", {"user": target["user"], "rule_id": target["rule_id"]})

    step_id, second = run("m365.remove_inbox_rule", {"user": target["user"], "rule_id": target["rule_id"]})

    assert second.outcome == Outcome.REFUSED and "already removed" in second.message
    assert len(tenant.changes("remove_inbox_rule")) == 1
    with db.session() as s:
        assert s.get(RemediationAction, step_id).status == ActionStatus.SKIPPED
        refusal = s.exec(
            select(AuditRecord).where(
                AuditRecord.action == "remediation.refused", AuditRecord.object_id == str(step_id)
            )
        ).one()
    assert refusal.details["code"] == "target_missing"


def test_an_unknown_user_is_refused(tenant_of, run):
    tenant = tenant_of("account_takeover")

    _, result = run("m365.disable_account", {"user": "nobody@northwind.example"})

    assert result.outcome == Outcome.REFUSED and tenant.sim.changes == []


def test_the_calls_the_before_state_and_the_provider_ids_are_stored(db, tenant_of, run):
    tenant = tenant_of("insider_exfiltration")
    user = _remediation(tenant.sim, "suspend_user")["user"]

    step_id, _ = run("google.suspend_user", {"user": user})

    with db.session() as s:
        row = s.get(RemediationAction, step_id)
        trail = [
            r.action
            for r in s.exec(
                select(AuditRecord).where(AuditRecord.object_id == str(step_id)).order_by(AuditRecord.seq)
            ).all()
        ]
    execution = row.result["execution"]
    assert execution["before"]["suspended"] is False and execution["changed"] is True
    assert [c["method"] for c in execution["calls"] if c["kind"] == "write"] == ["PUT"]
    assert row.provider_response_ids and row.verified_at is not None
    assert trail == [
        "remediation.proposed",
        "remediation.approved",
        "remediation.execution_started",
        "remediation.succeeded",
    ]


def test_a_step_another_executor_is_running_is_left_alone_until_its_run_goes_stale(
    db, settings, tenant_of, make_incident, analyst, approver
):
    from datetime import timedelta

    from core.clock import utcnow

    tenant = tenant_of("account_takeover")
    victim = _remediation(tenant.sim, "revoke_sessions")["user"]
    step = add_step(
        db,
        make_incident().id,
        "m365.disable_account",
        {"user": victim},
        requested_by=analyst,
        reason="takeover",
    )
    approve(db, step.id, approver)
    with db.session() as s:
        row = s.get(RemediationAction, step.id)
        row.status, row.updated_at = ActionStatus.RUNNING, utcnow()
        s.add(row)

    [busy] = execute(db, settings, action_ids=[step.id]).results
    [taken_over] = execute(db, settings, action_ids=[step.id], now=utcnow() + timedelta(minutes=11)).results

    assert busy.outcome == Outcome.WAITING and busy.calls == ()
    assert succeeded(taken_over) and len(tenant.changes("disable_user")) == 1


def test_a_viewer_cannot_execute_and_the_refusal_is_audited(
    db, settings, tenant_of, make_incident, make_principal, analyst, approver
):
    from remediation.errors import NotAllowed

    tenant = tenant_of("account_takeover")
    victim = _remediation(tenant.sim, "revoke_sessions")["user"]
    step = add_step(
        db,
        make_incident().id,
        "m365.disable_account",
        {"user": victim},
        requested_by=analyst,
        reason="takeover",
    )
    approve(db, step.id, approver)

    with pytest.raises(NotAllowed):
        execute(db, settings, action_ids=[step.id], actor=make_principal("viewer", name="vic").actor)

    assert tenant.sim.changes == []
    with db.session() as s:
        assert (
            s.exec(select(AuditRecord).where(AuditRecord.action == "remediation.refused"))
            .one()
            .details["request"]
            == "execute"
        )


def test_the_approval_request_is_posted_to_slack(db, tenant_of, make_incident, analyst):
    from remediation.planner import get_plan
    from remediation.slack_approvals import post_approval_request

    tenant = tenant_of("account_takeover")
    victim = _remediation(tenant.sim, "revoke_sessions")["user"]
    incident = make_incident().id
    add_step(db, incident, "m365.disable_account", {"user": victim}, requested_by=analyst, reason="takeover")
    step = get_plan(db, incident).steps[0]
    channel = tenant.slack().conversations_list()["channels"][0]["id"]

    ts = post_approval_request(db, tenant.connections["slack"], channel, step)

    history = tenant.slack().conversations_history(channel=channel, limit=5)["messages"]
    assert victim in next(m for m in history if m["ts"] == ts)["text"]
    assert [r["status"] for r in tenant.sim.requests if r["path"] == "/api/chat.postMessage"] == [200]


def test_disabling_a_microsoft_first_party_app_is_refused_even_when_asked_by_id(tenant_of, run):
    tenant = tenant_of("oauth_consent_phishing")
    graph_sp = tenant.graph("/servicePrincipals?$filter=displayName eq 'Microsoft Graph'")["value"][0]["id"]

    _, result = run("m365.disable_service_principal", {"app": graph_sp})

    assert result.outcome == Outcome.REFUSED and "first-party" in result.message
    assert tenant.sim.changes == []
