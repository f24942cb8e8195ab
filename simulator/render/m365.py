"""Microsoft Graph (sign-ins, directory audits, risk detections) and Office 365 unified audit shapes."""

from __future__ import annotations

import json
from typing import Any

from simulator.activity import Record, Session
from simulator.catalog import (
    AZURE_AD_POWERSHELL,
    AZURE_PORTAL,
    EXCHANGE_POWERSHELL,
    FIRST_PARTY_APPS,
    FirstPartyApp,
)
from simulator.identifiers import Ids
from simulator.render.context import RenderContext
from simulator.tenant import Person
from simulator.timestamps import graph_time, ual_time

APPS_BY_ID: dict[str, FirstPartyApp] = {
    a.app_id: a for a in (*FIRST_PARTY_APPS, AZURE_PORTAL, AZURE_AD_POWERSHELL, EXCHANGE_POWERSHELL)
}
FAILURE_REASONS = {
    0: None,
    50126: "Error validating credentials due to invalid username or password.",
    50140: "This error occurred due to 'Keep me signed in' interrupt when the user was signing in.",
    500121: "Authentication failed during strong authentication request.",
    50074: "Strong Authentication is required.",
    50053: "Account is locked because user tried to sign in too many times with an incorrect user ID or password.",
    53003: "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.",
    50076: "Due to a configuration change made by your administrator, or because you moved to a new location, "
    "you must use multi-factor authentication to access.",
}
ADDITIONAL_DETAILS = {
    0: None,
    50126: "The user didn't enter the right credentials. It's expected to see some number of these errors in your logs due to users making mistakes.",
    500121: "The user didn't complete the MFA prompt. They may have decided not to authenticate, timed out while doing authentication, or posted an incorrect response.",
}
# record kinds of non-interactive sign-ins (token refreshes by a client in a session the user opened)
NONINTERACTIVE_KINDS = frozenset({"ni", "ni_fail"})
# AADSTS code -> the Management API's LogonError name
LOGON_ERRORS = {
    50126: "InvalidUserNameOrPassword",
    50053: "IdsLocked",
    50074: "UserStrongAuthClientAuthNRequiredInterrupt",
    500121: "UserStrongAuthClientAuthNRequired",
}
CONTENT_TYPES = {
    "AzureActiveDirectory": "Audit.AzureActiveDirectory",
    "Exchange": "Audit.Exchange",
    "SharePoint": "Audit.SharePoint",
    "OneDrive": "Audit.SharePoint",
    "MicrosoftTeams": "Audit.General",
    "SecurityComplianceCenter": "Audit.General",
}


def location(session: Session) -> dict[str, Any]:
    city = session.city
    return {
        "city": city.name,
        "state": city.state,
        "countryOrRegion": city.country,
        "geoCoordinates": {"altitude": None, "latitude": city.lat, "longitude": city.lon},
    }


def device_detail(session: Session) -> dict[str, Any]:
    device = session.device
    managed = bool(device.managed)
    return {
        "deviceId": device.id if managed else "",
        "displayName": device.name if managed else None,
        "operatingSystem": device.model.os,
        "browser": device.model.browser,
        "isCompliant": device.compliant if managed else None,
        "isManaged": managed if managed else None,
        "trustType": ("Azure AD joined" if device.model.kind == "laptop" else "Azure AD registered")
        if managed
        else None,
    }


def render_signin(ctx: RenderContext, record: Record) -> dict[str, Any]:
    ts, uid, kind, person, session, extra = record
    app_id, error = extra[0], extra[1]
    mfa = len(extra) > 2 and bool(extra[2])
    risk: dict[str, Any] = extra[3] if len(extra) > 3 else {}
    app = APPS_BY_ID.get(app_id) or FIRST_PARTY_APPS[0]
    ok = error == 0
    interactive = kind not in NONINTERACTIVE_KINDS
    # a replayed token carries the session id of the session it was issued in (extra[4])
    sid = extra[4] if len(extra) > 4 and extra[4] else session_id(ctx.ids, session)
    policy_result = "success" if ok and mfa else ("failure" if error in (53003, 500121) else "notApplied")
    level = risk.get("level", "none")
    return {
        "id": ctx.guid("m365:signins", uid),
        "createdDateTime": graph_time(ts),
        "userDisplayName": person.name,
        "userPrincipalName": person.email,
        "userId": person.entra_id,
        "appId": app.app_id,
        "appDisplayName": app.name,
        "ipAddress": session.ip,
        "clientAppUsed": app.client_app,
        "correlationId": ctx.ids.fast_guid("correlation", session.start, person.index, session.number)
        if interactive
        else ctx.ids.fast_guid("ni-correlation", uid),
        "sessionId": sid,
        "uniqueTokenIdentifier": ctx.ids.fast_token("token", uid),
        "conditionalAccessStatus": policy_result if error != 50126 else "notApplied",
        "isInteractive": interactive,
        "riskDetail": "none",
        "riskLevelAggregated": level if level != "none" else "none",
        "riskLevelDuringSignIn": level,
        "riskState": "atRisk" if level not in ("none", "low") else "none",
        "riskEventTypes": list(risk.get("types", [])),
        "riskEventTypes_v2": list(risk.get("types", [])),
        "resourceDisplayName": app.resource,
        "resourceId": app.resource_id,
        "status": {
            "errorCode": error,
            "failureReason": FAILURE_REASONS.get(error, "Other."),
            "additionalDetails": ADDITIONAL_DETAILS.get(error),
        },
        "deviceDetail": device_detail(session),
        "location": location(session),
        "appliedConditionalAccessPolicies": [
            {
                "id": ctx.ids.constant_guid("ca-policy", "require-mfa-all"),
                "displayName": "Require MFA for all users",
                "enforcedGrantControls": ["Mfa"] if mfa else [],
                "enforcedSessionControls": [],
                "result": policy_result if error != 50126 else "notApplied",
            }
        ],
        "authenticationRequirement": "multiFactorAuthentication"
        if mfa or error == 500121
        else "singleFactorAuthentication",
        "incomingTokenType": "primaryRefreshToken"
        if not interactive and session.device.managed
        else "refreshToken"
        if not interactive
        else "none",
        "userAgent": session.device.model.user_agent,
        "userType": "member",
        "signInEventTypes": ["interactiveUser" if interactive else "nonInteractiveUser"],
        "mfaDetail": {"authMethod": "Mobile app notification", "authDetail": None} if mfa and ok else None,
        "authenticationProtocol": "none",
        "originalTransferMethod": "none",
        **(extra[5] if len(extra) > 5 else {}),  # a story's overrides (device code flow ...)
    }


def session_id(ids: Ids, session: Session) -> str:
    """The Entra session id of a sign-in session (what its token refreshes carry too)."""
    return ids.fast_guid("session", session.start, session.person.index, session.number)


# ------------------------------------------------------------------ directory audits


def _user_target(person: Person, props: list[tuple[str, Any, Any]] | None = None) -> dict[str, Any]:
    return {
        "id": person.entra_id,
        "displayName": None,
        "type": "User",
        "userPrincipalName": person.email,
        "groupType": None,
        "modifiedProperties": [_prop(p) for p in props or []],
    }


def _prop(prop: tuple[str, Any, Any]) -> dict[str, Any]:
    name, old, new = prop
    return {
        "displayName": name,
        "oldValue": None if old is None else json.dumps(old),
        "newValue": None if new is None else json.dumps(new),
    }


def audit_extra(
    activity: str,
    category: str,
    service: str,
    operation: str,
    initiator: Person | str | None,
    ip: str | None,
    targets: list[dict[str, Any]],
    details: list[tuple[str, str]] | None = None,
    result: str = "success",
) -> dict[str, Any]:
    """The extra of a generic directory-audit record; initiator is a person or an app name."""
    return {
        "activity": activity,
        "category": category,
        "service": service,
        "operation": operation,
        "initiator": initiator,
        "ip": ip,
        "targets": targets,
        "details": details or [],
        "result": result,
    }


def target(
    kind: str,
    id: str,
    name: str | None,
    upn: str | None = None,
    props: list[tuple[str, Any, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "id": id,
        "displayName": name,
        "type": kind,
        "userPrincipalName": upn,
        "groupType": None,
        "modifiedProperties": [_prop(p) for p in props or []],
    }


def _background_audit(
    ctx: RenderContext, kind: str, person: Person, session: Session | None, extra: Any
) -> dict[str, Any]:
    tenant = ctx.tenant
    if kind == "add_user":
        admin = ctx.person(extra)
        return audit_extra(
            "Add user",
            "UserManagement",
            "Core Directory",
            "Add",
            admin,
            _office_ip(ctx, admin),
            [_user_target(person, [("AccountEnabled", None, [True]), ("DisplayName", None, [person.name])])],
        )
    if kind == "update_user":
        admin = ctx.person(extra)
        return audit_extra(
            "Update user",
            "UserManagement",
            "Core Directory",
            "Update",
            admin,
            _office_ip(ctx, admin),
            [
                _user_target(
                    person,
                    [
                        ("JobTitle", [person.title], [person.title]),
                        ("Included Updated Properties", None, "JobTitle"),
                    ],
                )
            ],
        )
    if kind == "password_change_self":
        return audit_extra(
            "Change password (self-service)",
            "UserManagement",
            "Self-service Password Management",
            "Update",
            person,
            session.ip if session else None,
            [_user_target(person)],
        )
    if kind == "security_info_registered":
        return audit_extra(
            "User registered security info",
            "UserManagement",
            "Authentication Methods",
            "Add",
            person,
            session.ip if session else None,
            [_user_target(person)],
            [("Method", extra), ("UserAgent", session.device.model.user_agent if session else "")],
        )
    if kind == "add_group_member":
        admin = ctx.person(extra)
        group = next(
            (g for g in tenant.groups if person.index in g.members and g.name != "All Staff"),
            tenant.groups[0],
        )
        return audit_extra(
            "Add member to group",
            "GroupManagement",
            "Core Directory",
            "Assign",
            admin,
            _office_ip(ctx, admin),
            [
                _user_target(person),
                target("Group", group.id, group.name, props=[("Group.DisplayName", None, group.name)]),
            ],
        )
    raise KeyError(kind)


def _office_ip(ctx: RenderContext, person: Person) -> str:
    block = ctx.tenant.offices.get(person.office.id, person.home_block)
    return block.address(person.index * 7)


def _directory_audit_id(ctx: RenderContext, uid: int) -> str:
    suffix = f"{ctx.ids.fast('dir-suffix', uid):016X}"[:5]
    return f"Directory_{ctx.guid('m365:directory_audits', uid)}_{suffix}_{uid % 10**9:09d}"


def render_directory_audit(ctx: RenderContext, record: Record) -> dict[str, Any]:
    ts, uid, kind, person, session, extra = record
    spec = extra if kind == "audit" else _background_audit(ctx, kind, person, session, extra)
    initiator = spec["initiator"]
    if isinstance(initiator, Person):
        initiated = {
            "app": None,
            "user": {
                "id": initiator.entra_id,
                "displayName": None,
                "userPrincipalName": initiator.email,
                "ipAddress": spec["ip"] or "",
                "userType": None,
                "homeTenantId": None,
                "homeTenantName": None,
            },
        }
    else:
        initiated = {
            "app": {
                "appId": spec.get("app_id"),
                "displayName": initiator or "Microsoft Graph",
                "servicePrincipalId": spec.get("sp_id"),
                "servicePrincipalName": None,
            },
            "user": None,
        }
    return {
        "id": _directory_audit_id(ctx, uid),
        "category": spec["category"],
        "correlationId": ctx.ids.fast_guid("audit-correlation", uid),
        "result": spec["result"],
        "resultReason": "",
        "activityDisplayName": spec["activity"],
        "activityDateTime": graph_time(ts),
        "loggedByService": spec["service"],
        "operationType": spec["operation"],
        "initiatedBy": initiated,
        "targetResources": spec["targets"],
        "additionalDetails": [{"key": k, "value": v} for k, v in spec["details"]],
    }


# ------------------------------------------------------------------ risk detections


def render_risk_detection(ctx: RenderContext, record: Record) -> dict[str, Any]:
    ts, uid, kind, person, session, extra = record
    level = extra if isinstance(extra, str) else extra.get("level", "medium")
    state = "atRisk" if level in ("medium", "high") else "dismissed"
    loc = location(session)
    loc["geoCoordinates"] = None
    return {
        "id": "".join(f"{ctx.ids.fast('m365:risk_detections', uid, k):016x}" for k in range(4)),
        "requestId": ctx.ids.fast_guid("risk-request", uid),
        "correlationId": ctx.ids.fast_guid("correlation", session.start, person.index, session.number),
        "riskEventType": kind,
        "riskType": kind,
        "riskState": state,
        "riskLevel": level,
        "riskDetail": "none" if state == "atRisk" else "aiConfirmedSigninSafe",
        "source": "IdentityProtection",
        "detectionTimingType": "realtime" if kind != "passwordSpray" else "offline",
        "activity": "signin",
        "tokenIssuerType": "AzureAD",
        "ipAddress": session.ip,
        "location": loc,
        "activityDateTime": graph_time(ts - 30_000_000),
        "detectedDateTime": graph_time(ts),
        "lastUpdatedDateTime": graph_time(ts + 60_000_000),
        "userId": person.entra_id,
        "userDisplayName": person.name,
        "userPrincipalName": person.email,
        "additionalInfo": json.dumps([{"Key": "userAgent", "Value": session.device.model.user_agent}]),
    }


# ------------------------------------------------------------------ security alerts (security/alerts_v2)


def _user_account(person: Person) -> dict[str, Any]:
    local, _, domain = person.email.partition("@")
    return {
        "accountName": local,
        "domainName": domain,
        "userSid": f"S-1-12-1-{int(person.entra_id.replace('-', '')[:8], 16)}-{person.index + 1000}",
        "azureAdUserId": person.entra_id,
        "userPrincipalName": person.email,
        "displayName": person.name,
    }


def render_security_alert(ctx: RenderContext, record: Record) -> dict[str, Any]:
    """A microsoft.graph.security.alert as the v1.0 resource documents it, with user, IP and
    mailbox evidence naming the account and the address the alert is about (record ts is its
    lastUpdateDateTime; extra carries the alert's title, severity, source and techniques)."""
    ts, uid, kind, person, session, extra = record
    created = ts - 2 * 60_000_000
    first = ts - int(extra.get("activity_minutes", 10)) * 60_000_000
    alert_id = f"fa{ctx.ids.fast_guid('m365:security_alerts', uid)}"
    incident = str(10_000 + ctx.ids.fast("alert-incident", uid) % 90_000)
    common: dict[str, Any] = {
        "createdDateTime": graph_time(created),
        "verdict": "suspicious",
        "remediationStatus": "none",
        "remediationStatusDetails": None,
        "roles": [],
        "detailedRoles": [],
        "tags": [],
    }
    evidence: list[dict[str, Any]] = [
        {
            "@odata.type": "#microsoft.graph.security.userEvidence",
            **common,
            "userAccount": _user_account(person),
        }
    ]
    if session is not None:
        evidence.append(
            {
                "@odata.type": "#microsoft.graph.security.ipEvidence",
                **common,
                "ipAddress": session.ip,
                "countryLetterCode": session.city.country,
            }
        )
    if extra.get("mailbox", True):
        evidence.append(
            {
                "@odata.type": "#microsoft.graph.security.mailboxEvidence",
                **common,
                "primaryAddress": person.email,
                "displayName": person.name,
                "userAccount": _user_account(person),
            }
        )
    portal = "https://security.microsoft.com"
    return {
        "id": alert_id,
        "providerAlertId": ctx.ids.fast_guid("alert-provider", uid),
        "incidentId": incident,
        "status": extra.get("status", "new"),
        "severity": extra["severity"],
        "classification": extra.get("classification", "unknown"),
        "determination": extra.get("determination", "unknown"),
        "serviceSource": extra["service_source"],
        "detectionSource": extra["detection_source"],
        "productName": extra.get("product_name", "Microsoft Defender for Office 365"),
        "detectorId": ctx.ids.fast_guid("alert-detector", len(extra["title"])),
        "tenantId": ctx.tenant.tenant_id,
        "title": extra["title"],
        "description": extra.get("description", ""),
        "recommendedActions": extra.get("recommended_actions", ""),
        "category": extra["category"],
        "assignedTo": None,
        "alertWebUrl": f"{portal}/alerts/{alert_id}?tid={ctx.tenant.tenant_id}",
        "incidentWebUrl": f"{portal}/incidents/{incident}?tid={ctx.tenant.tenant_id}",
        "actorDisplayName": None,
        "threatDisplayName": None,
        "threatFamilyName": None,
        "mitreTechniques": list(extra.get("mitre", [])),
        "createdDateTime": graph_time(created),
        "lastUpdateDateTime": graph_time(ts),
        "resolvedDateTime": None,
        "firstActivityDateTime": graph_time(first),
        "lastActivityDateTime": graph_time(ts - 3 * 60_000_000),
        "comments": [],
        "systemTags": [],
        "alertPolicyId": None,
        "additionalData": {},
        "evidence": evidence,
    }


# ------------------------------------------------------------------ unified audit log (Management Activity API)

RECORD_TYPES = {
    "UserLoggedIn": (15, "AzureActiveDirectory"),
    "UserLoginFailed": (15, "AzureActiveDirectory"),
    "FileAccessed": (6, "OneDrive"),
    "FileModified": (6, "OneDrive"),
    "FileDownloaded": (6, "OneDrive"),
    "FileUploaded": (6, "OneDrive"),
    "FilePreviewed": (6, "OneDrive"),
    "FileSyncDownloadedFull": (6, "OneDrive"),
    "AnonymousLinkCreated": (14, "OneDrive"),
    "SharingSet": (14, "OneDrive"),
    "AddedToSecureLink": (14, "OneDrive"),
    "Send": (2, "Exchange"),
    "MailItemsAccessed": (50, "Exchange"),
    "New-InboxRule": (1, "Exchange"),
    "Set-InboxRule": (1, "Exchange"),
    "Remove-InboxRule": (1, "Exchange"),
    "Set-Mailbox": (1, "Exchange"),
    "Add-MailboxPermission": (1, "Exchange"),
    "Consent to application.": (8, "AzureActiveDirectory"),
    "Add member to role.": (8, "AzureActiveDirectory"),
    # Audit.General: Microsoft Teams (RecordType 25, the Teams schema) and the compliance portal's
    # eDiscovery / Content search activities (RecordType 24, Discovery)
    "TeamsSessionStarted": (25, "MicrosoftTeams"),
    "MemberAdded": (25, "MicrosoftTeams"),
    "SearchCreated": (24, "SecurityComplianceCenter"),
    "SearchStarted": (24, "SecurityComplianceCenter"),
    "SearchExported": (24, "SecurityComplianceCenter"),
    "SearchExportDownloaded": (24, "SecurityComplianceCenter"),
}


def content_type(record_body: dict[str, Any]) -> str:
    return CONTENT_TYPES.get(record_body.get("Workload", ""), "Audit.General")


def record_content_type(ctx: RenderContext, record: Record) -> str:
    """`content_type(render_unified_audit(ctx, record))` without rendering where the record's kind
    decides the workload (every record but raw ones and extras that carry their own Workload):
    the Management API's listings and blobs sort each hour's records by content type."""
    kind, extra = record[2], record[5]
    if kind == "raw" or (isinstance(extra, dict) and "Workload" in extra):
        from simulator.render import render

        return content_type(render(ctx, "m365:unified_audit", record))
    return CONTENT_TYPES.get(RECORD_TYPES.get(kind, (8, "AzureActiveDirectory"))[1], "Audit.General")


def render_unified_audit(ctx: RenderContext, record: Record) -> dict[str, Any]:
    ts, uid, kind, person, session, extra = record
    record_type, workload = RECORD_TYPES.get(kind, (8, "AzureActiveDirectory"))
    body: dict[str, Any] = {
        "CreationTime": ual_time(ts),
        "Id": ctx.guid("m365:unified_audit", uid),
        "Operation": kind,
        "OrganizationId": ctx.tenant.tenant_id,
        "RecordType": record_type,
        "ResultStatus": "Succeeded",
        "UserKey": person.entra_id if person else "",
        "UserType": 0,
        "Version": 1,
        "Workload": workload,
        # Entra ID records leave ClientIP empty and name the caller in ActorIpAddress
        "ClientIP": session.ip if session and workload != "AzureActiveDirectory" else "",
        "ObjectId": "",
        "UserId": person.email if person else "",
    }
    if record_type == 15:
        _ual_login(ctx, body, uid, kind, person, session)
    elif workload == "OneDrive":
        _ual_file(ctx, body, kind, person, session, extra)
    elif kind == "Send":
        _ual_send(ctx, body, uid, person, session, extra)
    elif record_type == 1:
        _ual_exchange_admin(body, kind, person, session, extra)
    elif workload == "MicrosoftTeams":
        _ual_teams(ctx, body, kind, person, session, extra)
    elif record_type == 24:
        _ual_discovery(ctx, body, kind, extra)
    elif kind == "MailItemsAccessed":
        body.update(extra or {})
        body["ResultStatus"] = "Succeeded"
        body["LogonType"] = 0
        body["MailboxOwnerUPN"] = person.email
        body["MailboxGuid"] = ctx.ids.fast_guid("mailbox", person.index)
        body["ClientIPAddress"] = session.ip
    else:
        body.update(extra or {})
    return body


def _ual_login(
    ctx: RenderContext, body: dict[str, Any], uid: int, kind: str, person: Person, session: Session
) -> None:
    body["ResultStatus"] = "Success" if kind == "UserLoggedIn" else "Failed"
    body["UserType"] = 0
    body["ObjectId"] = "00000003-0000-0ff1-ce00-000000000000"
    body["ActorIpAddress"] = session.ip
    body["ApplicationId"] = "4765445b-32c6-49b0-83e6-1d93765276ca"
    body["AzureActiveDirectoryEventType"] = 1
    body["ExtendedProperties"] = [
        {"Name": "ResultStatusDetail", "Value": "Success" if kind == "UserLoggedIn" else "UserError"},
        {"Name": "UserAgent", "Value": session.device.model.user_agent},
        {"Name": "RequestType", "Value": "OAuth2:Authorize"},
    ]
    body["Actor"] = [{"ID": person.entra_id, "Type": 0}, {"ID": person.email, "Type": 5}]
    body["ActorContextId"] = ctx.tenant.tenant_id
    body["InterSystemsId"] = ctx.ids.fast_guid("intersystems", uid)
    body["IntraSystemId"] = ctx.ids.fast_guid("intrasystem", uid)
    body["Target"] = [{"ID": "00000003-0000-0ff1-ce00-000000000000", "Type": 0}]
    body["TargetContextId"] = ctx.tenant.tenant_id
    error = 0 if kind == "UserLoggedIn" else 50126
    body["ErrorNumber"] = str(error)
    body["ErrorCode"] = str(error)
    if error:
        body["LogonError"] = LOGON_ERRORS.get(error, "InvalidUserNameOrPassword")


def _ual_teams(
    ctx: RenderContext, body: dict[str, Any], kind: str, person: Person, session: Session, extra: Any
) -> None:
    """The Teams schema's fields: a sign-in names the client; membership changes name the team and
    its Members (UPN, Role 0 member / 1 owner / 2 guest, DisplayName)."""
    body["UserType"] = 0
    if kind == "TeamsSessionStarted":
        body["ObjectId"] = ""
        body["ExtraProperties"] = [
            {"Key": "UserAgent", "Value": session.device.model.user_agent},
            {"Key": "ClientType", "Value": "Desktop" if session.network != "mobile" else "Mobile"},
        ]
        return
    team = extra or {}
    body.update(
        {
            "ObjectId": team.get("team", ""),
            "TeamName": team.get("team", ""),
            "TeamGuid": ctx.ids.guid("teams-team", team.get("team", "")),
            "CommunicationType": "Team",
            "Members": [
                {"UPN": m["upn"], "Role": m.get("role", 0), "DisplayName": m.get("name", m["upn"])}
                for m in team.get("members", [])
            ],
            "AADGroupId": ctx.ids.guid("teams-group", team.get("team", "")),
        }
    )


def _ual_discovery(ctx: RenderContext, body: dict[str, Any], kind: str, extra: Any) -> None:
    """A Content search / eDiscovery activity: the search (ObjectId), its case, query and the
    locations it covers; an export names its export."""
    search = extra or {}
    name = str(search.get("search", "Content search"))
    body.update(
        {
            "ObjectId": name,
            "ObjectType": "ComplianceSearch",
            "Case": str(search.get("case", "")),
            "CaseId": ctx.ids.guid("ediscovery-case", search.get("case", "")) if search.get("case") else "",
            "Query": str(search.get("query", "")),
            "ExchangeLocations": list(search.get("mailboxes", ["All"])),
            "ClientApplication": "EMC",
        }
    )
    if kind in ("SearchExported", "SearchExportDownloaded"):
        body["ExportName"] = f"{name}_Export"


def _site_url(ctx: RenderContext, owner: Person) -> str:
    tenant_host = ctx.tenant.domain.split(".")[0]
    return (
        f"https://{tenant_host}-my.sharepoint.com/personal/{owner.email.replace('@', '_').replace('.', '_')}/"
    )


def _ual_file(
    ctx: RenderContext, body: dict[str, Any], kind: str, person: Person, session: Session, extra: Any
) -> None:
    if isinstance(extra, dict):  # a story gives explicit file fields
        owner_index, k = extra["file"]
        body.update({key: value for key, value in extra.items() if key != "file"})
    else:
        owner_index, k = extra
    owner = ctx.person(owner_index)
    files = ctx.tenant.files_of(owner_index, "m365")
    drive_file = files[k % len(files)]
    site = _site_url(ctx, owner)
    body.update(
        {
            "ObjectId": f"{site}Documents/{drive_file.name}",
            "SiteUrl": site,
            "SourceFileName": drive_file.name,
            "SourceFileExtension": drive_file.extension,
            "SourceRelativeUrl": "Documents",
            "ItemType": "File",
            "ListItemUniqueId": ctx.ids.fast_guid("list-item", owner_index, k),
            "Site": ctx.ids.fast_guid("site", owner_index),
            "WebId": ctx.ids.fast_guid("web", owner_index),
            "UserAgent": session.device.model.user_agent,
            "EventSource": "SharePoint",
            "Platform": "WinDesktop"
            if "Windows" in session.device.model.os
            else "Mac"
            if "Mac" in session.device.model.os
            else "NotSpecified",
            "GeoLocation": "NAM" if session.city.country in ("US", "CA", "MX") else "EUR",
            "DoNotDistributeEvent": True,
            "IsManagedDevice": bool(session.device.managed),
        }
    )
    if kind in ("AnonymousLinkCreated", "SharingSet") and "TargetUserOrGroupType" not in body:
        body["TargetUserOrGroupType"] = "Guest" if kind == "AnonymousLinkCreated" else "Member"


def _ual_send(
    ctx: RenderContext, body: dict[str, Any], uid: int, person: Person, session: Session, extra: Any
) -> None:
    recipient = ctx.person(extra) if isinstance(extra, int) else None
    app = extra if isinstance(extra, dict) else None  # sent by an application with its own token
    body.update(
        {
            "ObjectId": "",
            "ClientIPAddress": session.ip,
            "ClientInfoString": "Client=OWA;Action=ViaProxy",
            "LogonType": 0,
            "MailboxGuid": ctx.ids.fast_guid("mailbox", person.index),
            "MailboxOwnerUPN": person.email,
            "Item": {
                "Id": ctx.ids.fast_token("mail-item", uid, length=40),
                "InternetMessageId": f"<{ctx.ids.fast('msgid', uid):016x}@{ctx.tenant.domain}>",
                "Subject": "Re: follow-up" if recipient else "Update",
                "ParentFolder": {"Name": "Sent Items", "Path": "\\Sent Items"},
                "SizeInBytes": 4200 + uid % 30000,
            },
        }
    )
    if app is not None:
        body.update(
            {
                "AppId": app["app_id"],
                "ClientAppId": app["app_id"],
                "ClientInfoString": "Client=REST;Client=RESTSystem;;",
                "Item": {**body["Item"], "Subject": app.get("subject", body["Item"]["Subject"])},
            }
        )


def _ual_exchange_admin(
    body: dict[str, Any], kind: str, person: Person, session: Session | None, extra: Any
) -> None:
    if isinstance(extra, dict):
        parameters = extra["parameters"]
        object_id = extra.get("object_id", "")
        body["ResultStatus"] = "True"
    else:  # background: a benign rule that files newsletters away
        name, action = extra
        parameters = [
            {"Name": "Name", "Value": name},
            {"Name": "SubjectContainsWords", "Value": "newsletter;digest"},
            {"Name": "MoveToFolder", "Value": "Newsletters"},
            {"Name": "StopProcessingRules", "Value": "True"},
        ]
        object_id = f"{person.email}\\{name}"
        body["ResultStatus"] = "True"
    body.update(
        {
            "ObjectId": object_id,
            "Parameters": parameters,
            "ClientIP": f"{session.ip}:{49152 + len(object_id) * 37 % 16000}" if session else "",
            "ExternalAccess": False,
            "OrganizationName": f"{body['UserId'].split('@')[1].split('.')[0]}.onmicrosoft.com"
            if body["UserId"]
            else "",
            "OriginatingServer": "AM0PR02MB1234 (15.20.7452.000)",
            "SessionId": body["Id"],
            "AppId": "00000002-0000-0ff1-ce00-000000000000"
            if not isinstance(extra, dict)
            else extra.get("app_id", ""),
        }
    )


M365_RENDERERS = {
    "m365:signins": render_signin,
    "m365:directory_audits": render_directory_audit,
    "m365:risk_detections": render_risk_detection,
    "m365:security_alerts": render_security_alert,
    "m365:unified_audit": render_unified_audit,
}
