"""Story actions in Microsoft 365: sign-ins, MFA, inbox rules, consent, roles, policies, sharing."""

from __future__ import annotations

from typing import Any

from simulator.catalog import APP_BY_NAME, ENTRA_ROLES, FIRST_PARTY_APPS
from simulator.errors import ScenarioError
from simulator.render.m365 import audit_extra, session_id, target
from simulator.scenario import StepSpec
from simulator.state import InboxRule, ServicePrincipal
from simulator.stories.engine import StoryBuilder, action, add_permission, choose_files, file_refs
from simulator.tenant import Permission
from simulator.timestamps import MINUTE, SECOND


def _app(name: str) -> Any:
    return APP_BY_NAME.get(name) or FIRST_PARTY_APPS[2]


@action("m365.password_spray")
def m365_password_spray(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """Failed sign-ins (50126) against many accounts from a few foreign IPs, the victim among them."""
    victim = b.person(p)
    others = [x for x in b.tenant.people if x.index != victim.index]
    b.rng.shuffle(others)
    accounts = [victim] + others[: max(0, int(p.get("accounts", 20)) - 1)]
    attempts = int(p.get("attempts", 1))
    times = b.spread(at, p, len(accounts) * attempts, "40m")
    app = _app(str(p.get("app", "Microsoft Office")))
    for i, ts in enumerate(times):
        person = accounts[i % len(accounts)]
        session = b.session(person, ts, "attacker", p, n=i)
        b.emit("m365:signins", ts, "fail", person, session, (app.app_id, 50126))
        b.emit("m365:unified_audit", ts + SECOND, "UserLoginFailed", person, session, None)


@action("m365.mfa_fatigue")
def m365_mfa_fatigue(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """Correct password, then repeated MFA prompts the user does not approve (500121)."""
    person = b.person(p)
    app = _app(str(p.get("app", "OfficeHome")))
    for _i, ts in enumerate(b.spread(at, p, int(p.get("prompts", 5)), "8m")):
        session = b.session(person, ts, b.where(p), p, n=int(p.get("ip", 0)))
        b.emit("m365:signins", ts, "fail", person, session, (app.app_id, 500121, True))


@action("m365.signin")
def m365_signin(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """A successful interactive sign-in (optionally risky) and its unified-audit twin."""
    person = b.person(p)
    app = _app(str(p.get("app", "OfficeHome")))
    session = b.session(person, at, b.where(p), p, n=int(p.get("ip", 0)))
    for k in range(int(p.get("failures", 0))):
        b.emit("m365:signins", at - (k + 1) * 45 * SECOND, "fail", person, session, (app.app_id, 50126))
    risk = p.get("risk") or {}
    b.emit("m365:signins", at, "ok", person, session, (app.app_id, 0, bool(p.get("mfa", True)), risk))
    b.emit("m365:unified_audit", at + 2 * SECOND, "UserLoggedIn", person, session, None)
    b.remember("token_session", session_id=session_id(b.ids, session), user=person.email)
    for risk_type in risk.get("types", []):
        b.emit(
            "m365:risk_detections",
            at + 3 * MINUTE,
            risk_type,
            person,
            session,
            {"level": risk.get("level", "medium")},
        )
    if risk.get("level") in ("medium", "high"):
        user = b.state.user(person.index)
        user.risk_level, user.risk_state, user.risk_detail, user.risk_updated = (
            risk["level"],
            "atRisk",
            "none",
            at + 3 * MINUTE,
        )


@action("m365.mfa_method_registered")
def m365_mfa_method_registered(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """A new authentication method appears on the account (persistence after takeover)."""
    person = b.person(p)
    method = str(p.get("method", "softwareOneTimePasscode"))
    session = b.session(person, at, b.where(p), p)
    details = [("Method", method), ("UserAgent", session.device.model.user_agent)]
    if p.get("phone"):
        details.append(("PhoneNumber", str(p["phone"])))
    b.emit(
        "m365:directory_audits",
        at,
        "audit",
        person,
        session,
        audit_extra(
            "User registered security info",
            "UserManagement",
            "Authentication Methods",
            "Add",
            person,
            session.ip,
            [target("User", person.entra_id, None, person.email)],
            details,
        ),
    )
    b.emit(
        "m365:directory_audits",
        at + 20 * SECOND,
        "audit",
        person,
        session,
        audit_extra(
            "User registered all required security info",
            "UserManagement",
            "Authentication Methods",
            "Add",
            person,
            session.ip,
            [target("User", person.entra_id, None, person.email)],
        ),
    )
    record = b.state._method(person, method, at)
    b.state.user(person.index).mfa_methods.append(record)
    b.remember("auth_method", id=record["id"], method=method, user=person.email)


@action("m365.inbox_rule")
def m365_inbox_rule(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """New-InboxRule (or Set-InboxRule) that forwards and/or hides mail."""
    person = b.person(p)
    session = b.session(person, at, b.where(p), p)
    name = str(p.get("name", "."))
    operation = str(p.get("operation", "New-InboxRule"))
    params = [
        {"Name": "AlwaysDeleteOutlookRulesBlob", "Value": "False"},
        {"Name": "Force", "Value": "False"},
        {"Name": "Name", "Value": name},
    ]
    actions: dict[str, Any] = {}
    conditions: dict[str, Any] = {}
    if p.get("forward_to"):
        params.append({"Name": "ForwardTo", "Value": str(p["forward_to"])})
        actions["forwardTo"] = [
            {"emailAddress": {"name": str(p["forward_to"]), "address": str(p["forward_to"])}}
        ]
    if p.get("redirect_to"):
        params.append({"Name": "RedirectTo", "Value": str(p["redirect_to"])})
        actions["redirectTo"] = [
            {"emailAddress": {"name": str(p["redirect_to"]), "address": str(p["redirect_to"])}}
        ]
    if p.get("move_to"):
        params.append({"Name": "MoveToFolder", "Value": str(p["move_to"])})
        actions["moveToFolder"] = str(p["move_to"])
    if p.get("delete"):
        params.append({"Name": "DeleteMessage", "Value": "True"})
        actions["delete"] = True
    if p.get("mark_read"):
        params.append({"Name": "MarkAsRead", "Value": "True"})
        actions["markAsRead"] = True
    if p.get("subject_contains"):
        words = [str(w) for w in p["subject_contains"]]
        params.append({"Name": "SubjectOrBodyContainsWords", "Value": ";".join(words)})
        conditions["bodyOrSubjectContains"] = words
    params.append({"Name": "StopProcessingRules", "Value": "True"})
    rule_id = b.ids.token("story-rule", b.spec.id if b.spec else "", step.id, length=22) + "AQ=="
    b.emit(
        "m365:unified_audit",
        at,
        operation,
        person,
        session,
        {
            "parameters": params,
            "object_id": f"{person.email}\\{name}",
            "app_id": "00000002-0000-0ff1-ce00-000000000000",
        },
    )
    actions["stopProcessingRules"] = True
    rules = b.state.inbox_rules_added.setdefault(person.index, [])
    existing = next((r for r in rules if r.name == name), None)
    if operation == "Set-InboxRule" and existing is not None:  # changes the rule made earlier
        existing.actions.update(actions)
        existing.conditions.update(conditions)
        rule_id = existing.id
    else:
        rules.append(InboxRule(rule_id, name, 0, True, conditions, actions, at))
    b.remember("inbox_rule", id=rule_id, name=name, user=person.email)


@action("m365.mass_download")
def m365_mass_download(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """Many FileDownloaded / FileSyncDownloadedFull records in a short time."""
    person = b.person(p)
    n = int(p.get("files", 100))
    operation = str(p.get("operation", "FileDownloaded"))
    refs = file_refs(b, person, n, "m365", str(p.get("owners", "team")))
    for i, ts in enumerate(b.spread(at, p, n, "25m")):
        session = b.session(person, ts, b.where(p), p)
        b.emit("m365:unified_audit", ts, operation, person, session, refs[i])


@action("m365.mail_read_by_app")
def m365_mail_read_by_app(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """A consented app reads the mailbox through Graph (MailItemsAccessed, app id of the rogue app)."""
    person = b.person(p)
    made = [m for m in b.created.get("service_principal", [])]
    app_id = made[-1]["app_id"] if made else b.ids.guid("app-id", "unknown")
    for i, ts in enumerate(b.spread(at, p, int(p.get("batches", 6)), "3h")):
        session = b.session(person, ts, b.where(p), p, n=i)
        b.emit(
            "m365:unified_audit",
            ts,
            "MailItemsAccessed",
            person,
            session,
            {
                "AppId": app_id,
                "ClientAppId": app_id,
                "OperationCount": 40 + (i * 17) % 60,
                "MailAccessType": "Bind",
                "Folders": [
                    {
                        "Path": "\\Inbox",
                        "FolderItems": [
                            {"InternetMessageId": f"<{b.ids.hex('mia', i, length=20)}@{b.tenant.domain}>"}
                        ],
                    }
                ],
            },
        )


@action("m365.oauth_consent")
def m365_oauth_consent(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """A user consents to an app: service principal created, delegated grant added, consent logged."""
    person = b.person(p)
    app = dict(p.get("app") or {})
    name = str(app.get("name", "Document Viewer"))
    scopes = str(app.get("scopes", "Mail.Read Mail.Send Files.ReadWrite.All offline_access User.Read"))
    session = b.session(person, at, b.where(p), p)
    key = f"story-app:{name}"
    sp_id = b.ids.guid("sp", key)
    app_id = b.ids.guid("app-id", key)
    if sp_id not in b.state.service_principals:
        b.state.service_principals[sp_id] = ServicePrincipal(
            sp_id,
            app_id,
            name,
            str(app.get("publisher", "")),
            bool(app.get("verified", False)),
            b.ids.guid("publisher-tenant", key),
            at,
            reply_urls=(str(app.get("reply_url", f"https://{name.lower().replace(' ', '-')}.example/auth")),),
        )
        b.emit(
            "m365:directory_audits",
            at,
            "audit",
            person,
            session,
            audit_extra(
                "Add service principal",
                "ApplicationManagement",
                "Core Directory",
                "Add",
                person,
                session.ip,
                [
                    target(
                        "ServicePrincipal",
                        sp_id,
                        name,
                        props=[("AppAddress", None, [app.get("reply_url", "")]), ("AppId", None, app_id)],
                    )
                ],
            ),
        )
    grant_id = b.ids.token("grant", key, person.index, length=43)
    b.state._add_grant(sp_id, "Principal", person.entra_id, scopes, grant_id)
    b.emit(
        "m365:directory_audits",
        at + 2 * SECOND,
        "audit",
        person,
        session,
        audit_extra(
            "Add delegated permission grant",
            "ApplicationManagement",
            "Core Directory",
            "Assign",
            person,
            session.ip,
            [
                target(
                    "ServicePrincipal",
                    b.state.graph_sp_id,
                    "Microsoft Graph",
                    props=[
                        ("DelegatedPermissionGrant.Scope", None, scopes),
                        ("DelegatedPermissionGrant.ConsentType", None, "Principal"),
                    ],
                ),
                target("ServicePrincipal", sp_id, name),
            ],
        ),
    )
    b.emit(
        "m365:directory_audits",
        at + 3 * SECOND,
        "audit",
        person,
        session,
        audit_extra(
            "Consent to application",
            "ApplicationManagement",
            "Core Directory",
            "Assign",
            person,
            session.ip,
            [
                target(
                    "ServicePrincipal",
                    sp_id,
                    name,
                    props=[
                        ("ConsentContext.IsAdminConsent", None, "False"),
                        ("ConsentContext.OnBehalfOfAll", None, "False"),
                        ("ConsentAction.Permissions", None, f"Scope: {scopes}"),
                        ("TargetId.ServicePrincipalNames", None, app_id),
                    ],
                )
            ],
            [("User-Agent", session.device.model.user_agent), ("AppId", app_id)],
        ),
    )
    b.emit(
        "m365:unified_audit",
        at + 4 * SECOND,
        "Consent to application.",
        person,
        session,
        {
            "ObjectId": sp_id,
            "ModifiedProperties": [{"Name": "ConsentAction.Permissions", "NewValue": scopes, "OldValue": ""}],
            "Target": [{"ID": sp_id, "Type": 2}, {"ID": name, "Type": 1}],
        },
    )
    b.remember("service_principal", id=sp_id, app_id=app_id, name=name)
    b.remember("grant", id=grant_id, client_id=sp_id, user=person.email, scope=scopes)


@action("m365.role_assigned")
def m365_role_assigned(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """An admin adds someone (maybe themselves) to a directory role."""
    admin = b.person(p, "by")
    person = b.person(p)
    role = str(p.get("role", "Global Administrator"))
    session = b.session(admin, at, b.where(p), p)
    assignment_id = b.ids.guid("story-role", b.spec.id if b.spec else "", step.id)
    b.state._add_role_assignment(person, role, assignment_id)
    b.state.bump(person)
    b.emit(
        "m365:directory_audits",
        at,
        "audit",
        admin,
        session,
        audit_extra(
            "Add member to role",
            "RoleManagement",
            "Core Directory",
            "Assign",
            admin,
            session.ip,
            [
                target(
                    "User",
                    person.entra_id,
                    None,
                    person.email,
                    [("Role.DisplayName", None, role), ("Role.TemplateId", None, ENTRA_ROLES[role])],
                ),
                target("Role", ENTRA_ROLES[role], role),
            ],
        ),
    )
    b.emit(
        "m365:unified_audit",
        at + 2 * SECOND,
        "Add member to role.",
        admin,
        session,
        {
            "ObjectId": person.email,
            "ModifiedProperties": [{"Name": "Role.DisplayName", "NewValue": role, "OldValue": ""}],
            "Target": [{"ID": person.entra_id, "Type": 2}, {"ID": person.email, "Type": 5}],
        },
    )
    b.remember("role_assignment", id=assignment_id, role=role, user=person.email)


@action("m365.ca_policy_changed")
def m365_ca_policy_changed(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """A conditional access policy is switched off or put in report-only (configuration drift)."""
    admin = b.person(p, "by")
    name = str(p.get("policy", "Require MFA for administrators"))
    new_state = str(p.get("state", "disabled"))
    policy = next((x for x in b.state.ca_policies.values() if x["displayName"] == name), None)
    if policy is None:
        raise ScenarioError(f"m365.ca_policy_changed: no conditional access policy named {name!r}")
    old = {"state": policy["state"], "displayName": name}
    policy["state"] = new_state
    policy["modifiedDateTime"] = at
    session = b.session(admin, at, b.where(p), p)
    b.emit(
        "m365:directory_audits",
        at,
        "audit",
        admin,
        session,
        audit_extra(
            "Update conditional access policy",
            "Policy",
            "Conditional Access",
            "Update",
            admin,
            session.ip,
            [
                target(
                    "Policy",
                    policy["id"],
                    name,
                    props=[("ConditionalAccessPolicy", old, {"state": new_state, "displayName": name})],
                )
            ],
        ),
    )
    b.remember("ca_policy", id=policy["id"], name=name, old_state=old["state"], new_state=new_state)


@action("m365.security_defaults_changed")
def m365_security_defaults_changed(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    admin = b.person(p, "by")
    enabled = bool(p.get("enabled", False))
    old = b.state.security_defaults["isEnabled"]
    b.state.security_defaults["isEnabled"] = enabled
    session = b.session(admin, at, b.where(p), p)
    b.emit(
        "m365:directory_audits",
        at,
        "audit",
        admin,
        session,
        audit_extra(
            "Update policy",
            "Policy",
            "Core Directory",
            "Update",
            admin,
            session.ip,
            [
                target(
                    "Policy",
                    b.state.security_defaults["id"],
                    "Security Defaults",
                    props=[("IsEnabled", old, enabled)],
                )
            ],
        ),
    )
    b.remember("security_defaults", old=old, new=enabled)


@action("m365.anonymous_link")
def m365_anonymous_link(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """'Anyone with the link' sharing links on OneDrive files."""
    person = b.person(p)
    files = b.tenant.files_of(person.index, "m365")
    chosen = choose_files(b, files, p)
    for i, (k, drive_file) in enumerate(chosen):
        ts = at + i * 40 * SECOND
        session = b.session(person, ts, b.where(p), p)
        perm_id = b.ids.hex("story-link", drive_file.id, length=20)
        add_permission(b, "m365", drive_file.id, Permission(perm_id, "anyone", "reader"))
        b.emit(
            "m365:unified_audit",
            ts,
            "AnonymousLinkCreated",
            person,
            session,
            {"file": (person.index, k), "EventData": "<Type>View</Type>"},
        )
        b.emit(
            "m365:unified_audit",
            ts + SECOND,
            "SharingSet",
            person,
            session,
            {
                "file": (person.index, k),
                "TargetUserOrGroupName": "Anyone with the link",
                "TargetUserOrGroupType": "Guest",
                "EventData": "<PermissionsGranted>Read</PermissionsGranted>",
            },
        )
        b.remember(
            "m365_link",
            file_id=drive_file.id,
            permission_id=perm_id,
            drive_id=b.tenant.drive_id(person.index),
            title=drive_file.title,
        )


@action("m365.external_share")
def m365_external_share(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    person = b.person(p)
    to = str(p["to"])
    files = b.tenant.files_of(person.index, "m365")
    for i, (k, drive_file) in enumerate(choose_files(b, files, p)):
        ts = at + i * 30 * SECOND
        session = b.session(person, ts, b.where(p), p)
        perm_id = b.ids.hex("story-share", drive_file.id, to, length=20)
        add_permission(b, "m365", drive_file.id, Permission(perm_id, "user", "reader", email=to))
        b.emit(
            "m365:unified_audit",
            ts,
            "SharingSet",
            person,
            session,
            {
                "file": (person.index, k),
                "TargetUserOrGroupName": to,
                "TargetUserOrGroupType": "Guest",
                "EventData": "<PermissionsGranted>Read</PermissionsGranted>",
            },
        )
        b.remember(
            "m365_share",
            file_id=drive_file.id,
            permission_id=perm_id,
            drive_id=b.tenant.drive_id(person.index),
            to=to,
        )


@action("teams.member_added")
def teams_member_added(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """Someone adds people to a team (Audit.General, Teams schema MemberAdded): `guest` (an outside
    address, Role 2) and/or `user` (a colleague, Role 0) to `team`."""
    owner = b.person(p, "by")
    session = b.session(owner, at, b.where(p), p)
    members = []
    if p.get("guest"):
        guest = str(p["guest"])
        members.append({"upn": guest, "role": 2, "name": str(p.get("guest_name", guest.split("@")[0]))})
    if p.get("user"):
        member = b.person(p)
        members.append({"upn": member.email, "role": 0, "name": member.name})
    if not members:
        raise ScenarioError("teams.member_added: give a guest address, a user or both")
    team = str(p.get("team", "Project"))
    b.emit("m365:unified_audit", at, "MemberAdded", owner, session, {"team": team, "members": members})
    b.remember("teams_members", team=team, members=[m["upn"] for m in members])


@action("m365.ediscovery_search")
def m365_ediscovery_search(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """A Content search in the compliance portal (Audit.General, RecordType 24): created, started,
    then (unless `export: false`) exported and the export downloaded (`mailboxes`: the people
    whose mailboxes it covers, default all; `query`, `case`, `search` name it)."""
    person = b.person(p, "by")
    session = b.session(person, at, b.where(p), p)
    mailboxes = [b.person({"user": m}).email for m in p.get("mailboxes", [])] or ["All"]
    search = {
        "search": str(p.get("search", f"Search {step.id}")),
        "case": str(p.get("case", "")),
        "query": str(p.get("query", "")),
        "mailboxes": mailboxes,
    }
    phases = [("SearchCreated", 0), ("SearchStarted", MINUTE)]
    if p.get("export", True):
        phases += [("SearchExported", 14 * MINUTE), ("SearchExportDownloaded", 31 * MINUTE)]
    for operation, delay in phases:
        b.emit("m365:unified_audit", at + delay, operation, person, session, dict(search))
    b.remember("ediscovery_search", **search)


ALERT_SEVERITIES = ("informational", "low", "medium", "high")
ALERT_SOURCES = {
    # serviceSource -> (detectionSource, productName)
    "microsoftDefenderForOffice365": ("microsoftDefenderForOffice365", "Microsoft Defender for Office 365"),
    "microsoftDefenderForCloudApps": ("microsoftDefenderForCloudApps", "Microsoft Defender for Cloud Apps"),
    "azureAdIdentityProtection": ("azureAdIdentityProtection", "Microsoft Entra ID Protection"),
    "microsoft365Defender": ("microsoft365Defender", "Microsoft Defender XDR"),
}


@action("m365.security_alert")
def m365_security_alert(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """A Microsoft 365 Defender alert about `user` (Graph `security/alerts_v2`): `title`,
    `severity` (informational|low|medium|high), `source` (a serviceSource: microsoftDefenderForOffice365,
    microsoftDefenderForCloudApps, azureAdIdentityProtection, microsoft365Defender), `category`,
    `mitre` (technique ids); its evidence names the user, their mailbox and the session's IP."""
    person = b.person(p)
    severity = str(p.get("severity", "high"))
    if severity not in ALERT_SEVERITIES:
        raise ScenarioError(f"m365.security_alert: severity must be one of {', '.join(ALERT_SEVERITIES)}")
    source = str(p.get("source", "microsoftDefenderForOffice365"))
    if source not in ALERT_SOURCES:
        raise ScenarioError(f"m365.security_alert: source must be one of {', '.join(ALERT_SOURCES)}")
    detection_source, product = ALERT_SOURCES[source]
    session = b.session(person, at, b.where(p), p, n=int(p.get("ip", 0)))
    title = str(p.get("title", "Suspicious email forwarding activity"))
    b.emit(
        "m365:security_alerts",
        at,
        "alert",
        person,
        session,
        {
            "title": title,
            "severity": severity,
            "service_source": source,
            "detection_source": detection_source,
            "product_name": product,
            "category": str(p.get("category", "Exfiltration")),
            "mitre": [str(t) for t in p.get("mitre", ["T1114.002"])],
            "description": str(p.get("description", f"{title} involving {person.email}.")),
            "recommended_actions": str(p.get("recommended_actions", "")),
            "mailbox": bool(p.get("mailbox", source == "microsoftDefenderForOffice365")),
        },
    )
    b.remember("security_alert", user=person.email, title=title, severity=severity)
