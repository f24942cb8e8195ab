"""Every write endpoint changes what later reads return, is recorded in `changes`, and leaves the
vendor's own audit trail entry. Targets come from the scenarios' ground-truth remediation."""

from __future__ import annotations

import pytest
from googleapiclient.errors import HttpError


def remediation(truth: dict, action: str) -> dict:
    return next(
        r["target"] for story in truth["stories"] for r in story["remediation"] if r["action"] == action
    )


# ------------------------------------------------------------------ Microsoft 365


def test_account_takeover_remediation_through_graph(make_simulator, graph):
    sim = make_simulator("account_takeover")
    info = sim.info
    base = info["m365.graph_base_url"]
    session = graph(info)
    rule = remediation(sim.truth, "remove_inbox_rule")
    method = remediation(sim.truth, "delete_auth_method")
    user = rule["user"]
    assert rule["rule_id"] in {
        r["id"] for r in session.get(f"{base}/users/{user}/mailFolders/inbox/messageRules").json()["value"]
    }
    risky = session.get(
        f"{base}/identityProtection/riskyUsers", params={"$filter": "riskState eq 'atRisk'"}
    ).json()["value"]
    assert user in {r["userPrincipalName"] for r in risky}

    revoked = session.post(f"{base}/users/{user}/revokeSignInSessions")
    disabled = session.patch(f"{base}/users/{user}", json={"accountEnabled": False})
    confirmed = session.post(
        f"{base}/identityProtection/riskyUsers/confirmCompromised", json={"userIds": [rule["user_id"]]}
    )
    rule_deleted = session.delete(f"{base}/users/{user}/mailFolders/inbox/messageRules/{rule['rule_id']}")
    kind = "softwareOathMethods"
    method_deleted = session.delete(f"{base}/users/{user}/authentication/{kind}/{method['method_id']}")

    assert revoked.json()["value"] is True
    assert [
        disabled.status_code,
        confirmed.status_code,
        rule_deleted.status_code,
        method_deleted.status_code,
    ] == [204] * 4
    me = session.get(
        f"{base}/users/{user}", params={"$select": "accountEnabled,signInSessionsValidFromDateTime"}
    ).json()
    assert me["accountEnabled"] is False
    assert me["signInSessionsValidFromDateTime"] > sim.truth["end"][:19]
    assert rule["rule_id"] not in {
        r["id"] for r in session.get(f"{base}/users/{user}/mailFolders/inbox/messageRules").json()["value"]
    }
    assert method["method_id"] not in {
        m["id"] for m in session.get(f"{base}/users/{user}/authentication/methods").json()["value"]
    }
    assert (
        session.get(f"{base}/identityProtection/riskyUsers/{rule['user_id']}").json()["riskState"]
        == "confirmedCompromised"
    )
    assert [c["action"] for c in sim.changes] == [
        "revoke_sessions",
        "disable_user",
        "confirm_compromised",
        "remove_inbox_rule",
        "delete_auth_method",
    ]
    audits = session.get(
        f"{base}/auditLogs/directoryAudits",
        params={"$filter": f"initiatedBy/app/appId eq '{info['m365.client_id']}'"},
    ).json()["value"]
    assert {"Update user", "Disable account", "Admin deleted security info"} <= {
        a["activityDisplayName"] for a in audits
    }


def test_dismissing_risk_clears_the_risky_user(make_simulator, graph):
    sim = make_simulator("account_takeover")
    base = sim.info["m365.graph_base_url"]
    session = graph(sim.info)
    user_id = remediation(sim.truth, "confirm_compromised")["user_id"]

    assert (
        session.post(f"{base}/identityProtection/riskyUsers/dismiss", json={"userIds": [user_id]}).status_code
        == 204
    )

    assert session.get(f"{base}/identityProtection/riskyUsers/{user_id}").json()["riskState"] == "dismissed"


def test_oauth_consent_remediation_revokes_the_grant_and_disables_the_app(make_simulator, graph):
    sim = make_simulator("oauth_consent_phishing")
    base = sim.info["m365.graph_base_url"]
    session = graph(sim.info)
    grant = remediation(sim.truth, "revoke_oauth_grant")
    app = remediation(sim.truth, "disable_service_principal")
    grants = session.get(
        f"{base}/oauth2PermissionGrants", params={"$filter": f"clientId eq '{app['service_principal_id']}'"}
    ).json()["value"]
    assert grant["grant_id"] in {g["id"] for g in grants}
    assert "Mail.Send" in next(g for g in grants if g["id"] == grant["grant_id"])["scope"]

    assert session.delete(f"{base}/oauth2PermissionGrants/{grant['grant_id']}").status_code == 204
    assert (
        session.patch(
            f"{base}/servicePrincipals/{app['service_principal_id']}", json={"accountEnabled": False}
        ).status_code
        == 204
    )

    left = session.get(
        f"{base}/oauth2PermissionGrants", params={"$filter": f"clientId eq '{app['service_principal_id']}'"}
    ).json()["value"]
    assert grant["grant_id"] not in {g["id"] for g in left}
    assert (
        session.get(f"{base}/servicePrincipals/{app['service_principal_id']}").json()["accountEnabled"]
        is False
    )
    assert session.delete(f"{base}/oauth2PermissionGrants/{grant['grant_id']}").status_code == 404


def test_admin_abuse_remediation_removes_the_role_and_restores_policies(make_simulator, graph):
    sim = make_simulator("admin_privilege_abuse")
    base = sim.info["m365.graph_base_url"]
    session = graph(sim.info)
    role = remediation(sim.truth, "remove_role_assignment")
    policy = remediation(sim.truth, "restore_ca_policy")
    assert (
        session.get(f"{base}/identity/conditionalAccess/policies/{policy['policy_id']}").json()["state"]
        == "disabled"
    )

    removed = session.delete(f"{base}/roleManagement/directory/roleAssignments/{role['role_assignment_id']}")
    restored = session.patch(
        f"{base}/identity/conditionalAccess/policies/{policy['policy_id']}", json={"state": "enabled"}
    )
    defaults = session.patch(
        f"{base}/policies/identitySecurityDefaultsEnforcementPolicy", json={"isEnabled": True}
    )

    assert [removed.status_code, restored.status_code, defaults.status_code] == [204, 204, 204]
    assignments = session.get(
        f"{base}/roleManagement/directory/roleAssignments",
        params={"$filter": f"principalId eq '{role['user_id']}'"},
    ).json()["value"]
    assert role["role_assignment_id"] not in {a["id"] for a in assignments}
    assert (
        session.get(f"{base}/identity/conditionalAccess/policies/{policy['policy_id']}").json()["state"]
        == "enabled"
    )
    assert (
        session.get(f"{base}/policies/identitySecurityDefaultsEnforcementPolicy").json()["isEnabled"] is True
    )


def test_insider_sharing_link_is_removed_from_the_onedrive_item(make_simulator, graph):
    sim = make_simulator("insider_exfiltration")
    base = sim.info["m365.graph_base_url"]
    session = graph(sim.info)
    link = remediation(sim.truth, "remove_sharing_link")
    url = f"{base}/drives/{link['drive_id']}/items/{link['file_id']}/permissions"
    before = session.get(url).json()["value"]
    assert next(p for p in before if p["id"] == link["permission_id"])["link"]["scope"] == "anonymous"

    assert session.delete(f"{url}/{link['permission_id']}").status_code == 204

    assert link["permission_id"] not in {p["id"] for p in session.get(url).json()["value"]}
    assert sim.changes[-1]["action"] == "remove_sharing_link"


# ------------------------------------------------------------------ Google Workspace


def test_insider_remediation_in_google(make_simulator, google):
    sim = make_simulator("insider_exfiltration")
    info = sim.info
    public = remediation(sim.truth, "remove_public_link")
    suspend = remediation(sim.truth, "suspend_user")
    drive = google(info, "drive", "v3")
    directory = google(info, "admin", "directory_v1")
    file_id, permission_id = public["file_id"], public["permission_id"]
    assert "anyone" in {p["type"] for p in drive.permissions().list(fileId=file_id).execute()["permissions"]}

    drive.permissions().delete(fileId=file_id, permissionId=permission_id).execute()
    directory.users().update(userKey=suspend["user"], body={"suspended": True}).execute()
    directory.users().signOut(userKey=suspend["user"]).execute()

    assert "anyone" not in {
        p["type"] for p in drive.permissions().list(fileId=file_id).execute()["permissions"]
    }
    assert directory.users().get(userKey=suspend["user"]).execute()["suspended"] is True
    assert [c["action"] for c in sim.changes] == ["remove_drive_permission", "suspend_user", "sign_out"]
    sim.advance(60)  # Google's admin log lags by 30 s
    reports = google(info, "admin", "reports_v1")
    admin_events = (
        reports.activities().list(userKey="all", applicationName="admin", eventName="SUSPEND_USER").execute()
    )
    assert admin_events["items"][0]["events"][0]["parameters"][0]["value"] == suspend["user"]


def test_oauth_token_is_deleted_from_the_google_user(make_simulator, google):
    sim = make_simulator("oauth_consent_phishing")
    token = remediation(sim.truth, "delete_google_token")
    tokens = google(sim.info, "admin", "directory_v1").tokens()
    assert token["client_id"] in {
        t["clientId"] for t in tokens.list(userKey=token["user"]).execute()["items"]
    }

    tokens.delete(userKey=token["user"], clientId=token["client_id"]).execute()

    assert token["client_id"] not in {
        t["clientId"] for t in tokens.list(userKey=token["user"]).execute().get("items", [])
    }
    with pytest.raises(HttpError):
        tokens.delete(userKey=token["user"], clientId=token["client_id"]).execute()


def test_google_role_and_setting_are_restored(make_simulator, google):
    sim = make_simulator("admin_privilege_abuse")
    info = sim.info
    role = remediation(sim.truth, "remove_google_role")
    directory = google(info, "admin", "directory_v1")
    policies = google(info, "cloudidentity", "v1").policies()
    customer = info["google.customer_id"]
    two_sv = next(
        p
        for p in policies.list().execute()["policies"]
        if p["setting"]["type"] == "settings/security.two_step_verification_enforcement"
    )
    assert directory.users().get(userKey=role["user"]).execute()["isAdmin"] is True

    directory.roleAssignments().delete(
        customer=customer, roleAssignmentId=role["role_assignment_id"]
    ).execute()
    policies.patch(
        name=two_sv["name"],
        body={
            "setting": {"type": two_sv["setting"]["type"], "value": {"enforcedFrom": "2026-01-01T00:00:00Z"}}
        },
    ).execute()

    assert directory.users().get(userKey=role["user"]).execute()["isAdmin"] is False
    assert (
        policies.get(name=two_sv["name"]).execute()["setting"]["value"]["enforcedFrom"]
        == "2026-01-01T00:00:00Z"
    )


# ------------------------------------------------------------------ Slack


def test_slack_session_theft_remediation(make_simulator, slack, audit_logs):
    sim = make_simulator("slack_session_theft")
    info = sim.info
    admin = slack(info, "slack.admin_token")
    reset = remediation(sim.truth, "reset_slack_sessions")
    public = remediation(sim.truth, "revoke_public_url")
    app = remediation(sim.truth, "uninstall_app")
    assert app["app_id"] in {a["app"]["id"] for a in admin.admin_apps_approved_list()["approved_apps"]}
    assert admin.files_info(file=public["file_id"])["file"]["public_url_shared"] is True

    admin.admin_users_session_reset(user_id=reset["user_id"])
    slack(info, "slack.user_token").files_revokePublicURL(file=public["file_id"])
    admin.admin_apps_uninstall(app_id=app["app_id"])
    admin.admin_users_remove(team_id=info["slack.team_id"], user_id=reset["user_id"])

    assert admin.files_info(file=public["file_id"])["file"]["public_url_shared"] is False
    assert app["app_id"] not in {a["app"]["id"] for a in admin.admin_apps_approved_list()["approved_apps"]}
    assert admin.users_info(user=reset["user_id"])["user"]["deleted"] is True
    assert [c["action"] for c in sim.changes] == [
        "reset_slack_sessions",
        "revoke_public_url",
        "uninstall_app",
        "deactivate_user",
    ]
    actions = {
        e["action"]
        for e in audit_logs(info)
        .logs(action="user_session_reset_by_admin,file_public_link_revoked,app_uninstalled,user_deactivated")
        .body["entries"]
    }
    assert actions == {
        "user_session_reset_by_admin",
        "file_public_link_revoked",
        "app_uninstalled",
        "user_deactivated",
    }
