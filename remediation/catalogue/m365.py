"""Microsoft 365 / Entra ID actions, through Microsoft Graph v1.0 (see saas-apis.md, "Remediation calls")."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from core.models import Provider
from providers.m365 import GraphGateway
from remediation.catalogue import ActionSpec, BlastRadius, Field, Operation, Verification
from remediation.errors import InvalidState, TargetMissing

USER = Field("user", "userPrincipalName or object id of the account")
_USER_SELECT = {"$select": "id,userPrincipalName,accountEnabled,signInSessionsValidFromDateTime"}


def _q(value: str) -> str:
    """Percent-encode a path segment; sub-delimiters (= ! $ ...) are legal in paths and ids use them."""
    return quote(str(value), safe="@!$&'()*+,;=:")


# Microsoft's own applications: disabling them or revoking their consent breaks the tenant. An
# audit record about a consent names the resource (Microsoft Graph) next to the client app.
MICROSOFT_TENANT_IDS = frozenset(
    {"f8cdef31-a31e-4b4a-93e4-5f571e91255a", "72f988bf-86f1-41af-91ab-2d7cd011db47"}
)
FIRST_PARTY_APPS = frozenset(
    {
        "microsoft graph",
        "office 365 exchange online",
        "office 365 sharepoint online",
        "windows azure active directory",
        "00000003-0000-0000-c000-000000000000",
        "00000002-0000-0ff1-ce00-000000000000",
        "00000003-0000-0ff1-ce00-000000000000",
        "00000002-0000-0000-c000-000000000000",
    }
)


def not_first_party(target: dict[str, Any]) -> str | None:
    app = str(target.get("app", "")).strip().lower()
    return (
        f"{target['app']} is a Microsoft first-party app: never disabled or revoked by remediation"
        if app in FIRST_PARTY_APPS
        else None
    )


def read_user(gw: GraphGateway, user: str) -> dict[str, Any]:
    found = gw.get(f"/users/{_q(user)}", _USER_SELECT)
    if found is None:
        raise TargetMissing(f"no Microsoft 365 user {user!r}: it was deleted or never existed")
    return found


# --------------------------------------------------------------------------- sessions


class RevokeSessions(Operation):
    def inspect(self, gw, target, params):
        return read_user(gw, target["user"])

    def apply(self, gw, target, params, before):
        gw.write("POST", f"/users/{_q(target['user'])}/revokeSignInSessions")

    def verify(self, gw, target, params, before):
        after = read_user(gw, target["user"])
        old, new = before.get("signInSessionsValidFromDateTime"), after.get("signInSessionsValidFromDateTime")
        return Verification(bool(new) and new != old, {"signInSessionsValidFromDateTime": new, "before": old})


# --------------------------------------------------------------------------- account enabled


class SetAccountEnabled(Operation):
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def inspect(self, gw, target, params):
        return read_user(gw, target["user"])

    def satisfied(self, before, params):
        return before.get("accountEnabled") is self.enabled

    def apply(self, gw, target, params, before):
        gw.write("PATCH", f"/users/{_q(target['user'])}", {"accountEnabled": self.enabled})

    def verify(self, gw, target, params, before):
        after = read_user(gw, target["user"])
        return Verification(
            after.get("accountEnabled") is self.enabled, {"accountEnabled": after.get("accountEnabled")}
        )


# --------------------------------------------------------------------------- user risk


class SetUserRisk(Operation):
    """confirmCompromised / dismiss on identityProtection/riskyUsers (needs the object id)."""

    def __init__(self, verb: str, state: str) -> None:
        self.verb = verb
        self.state = state

    def inspect(self, gw, target, params):
        user = read_user(gw, target["user"])
        risky = gw.get(f"/identityProtection/riskyUsers/{user['id']}") or {}
        return {
            "id": user["id"],
            "riskState": risky.get("riskState", "none"),
            "riskLevel": risky.get("riskLevel", "none"),
        }

    def satisfied(self, before, params):
        return before.get("riskState") == self.state

    def apply(self, gw, target, params, before):
        gw.write("POST", f"/identityProtection/riskyUsers/{self.verb}", {"userIds": [before["id"]]})

    def verify(self, gw, target, params, before):
        risky = gw.get(f"/identityProtection/riskyUsers/{before['id']}") or {}
        return Verification(risky.get("riskState") == self.state, {"riskState": risky.get("riskState")})


# --------------------------------------------------------------------------- drive permissions


class RemoveDrivePermissions(Operation):
    """Delete sharing links / grants of one drive item: one permission by id, or every link of a
    scope (``anonymous`` by default). The item is named by drive and item id, or by its owner and
    file name (what audit records carry), looked up in the owner's OneDrive."""

    def _item(self, gw: GraphGateway, target: dict[str, Any]) -> tuple[str, str]:
        if target.get("drive_id") and target.get("item_id"):
            return target["drive_id"], target["item_id"]
        if not (target.get("user") and target.get("file_name")):
            raise InvalidState("name the item by drive_id + item_id, or by user (owner) + file_name")
        drive = gw.get(f"/users/{_q(target['user'])}/drive")
        children = gw.list(f"/users/{_q(target['user'])}/drive/root/children") if drive else None
        name = str(target["file_name"]).rsplit("/", 1)[-1].lower()
        item = next((c for c in children or [] if str(c.get("name", "")).lower() == name), None)
        if drive is None or item is None:
            raise TargetMissing(f"no file {target['file_name']!r} in the OneDrive of {target['user']}")
        return drive["id"], item["id"]

    def inspect(self, gw, target, params):
        drive_id, item_id = self._item(gw, target)
        permissions = gw.list(f"/drives/{_q(drive_id)}/items/{_q(item_id)}/permissions")
        if permissions is None:
            raise TargetMissing(f"drive item {item_id} in drive {drive_id} does not exist")
        own = [p for p in permissions if not p.get("inheritedFrom") and "owner" not in (p.get("roles") or [])]
        if target.get("permission_id"):
            chosen = [p for p in own if p.get("id") == target["permission_id"]]
        else:
            scope = target.get("scope", "anonymous")
            chosen = [p for p in own if (p.get("link") or {}).get("scope") == scope]
        if not chosen:
            raise TargetMissing(f"item {item_id}: no matching permission defined on it (already removed?)")
        return {"drive_id": drive_id, "item_id": item_id, "permissions": chosen}

    def _path(self, before: dict[str, Any]) -> str:
        return f"/drives/{_q(before['drive_id'])}/items/{_q(before['item_id'])}/permissions"

    def apply(self, gw, target, params, before):
        for permission in before["permissions"]:
            gw.write("DELETE", f"{self._path(before)}/{_q(permission['id'])}")

    def verify(self, gw, target, params, before):
        ids = {p["id"] for p in before["permissions"]}
        remaining = [p["id"] for p in gw.list(self._path(before)) or [] if p.get("id") in ids]
        return Verification(not remaining, {"still_present": remaining})


# --------------------------------------------------------------------------- OAuth2 grants


class RevokeOAuthGrants(Operation):
    """Delete delegated grants of a client app: one user's, one by id, or all of them."""

    def inspect(self, gw, target, params):
        client_id = _service_principal_id(gw, target["app"])
        grants = gw.list("/oauth2PermissionGrants", {"$filter": f"clientId eq '{client_id}'"}) or []
        if target.get("grant_id"):
            grants = [g for g in grants if g.get("id") == target["grant_id"]]
        if target.get("user"):
            principal = read_user(gw, target["user"])["id"]
            grants = [g for g in grants if g.get("principalId") == principal]
        if not grants:
            raise TargetMissing(
                f"no OAuth2 permission grant matches {target}: already revoked or never granted"
            )
        return {"grants": grants}

    def apply(self, gw, target, params, before):
        for grant in before["grants"]:
            gw.write("DELETE", f"/oauth2PermissionGrants/{_q(grant['id'])}")

    def verify(self, gw, target, params, before):
        ids = {g["id"] for g in before["grants"]}
        remaining = []
        for client_id in sorted({g["clientId"] for g in before["grants"]}):
            present = gw.list("/oauth2PermissionGrants", {"$filter": f"clientId eq '{client_id}'"}) or []
            remaining += [g["id"] for g in present if g.get("id") in ids]
        return Verification(not remaining, {"still_present": remaining})

    def inverse_request(self, target, params, before):
        keep = ("clientId", "consentType", "principalId", "resourceId", "scope")
        return dict(target), {"grants": [{k: g.get(k) for k in keep} for g in before["grants"]]}


class RestoreOAuthGrants(Operation):
    """Re-create grants from the copies saved when they were revoked (new ids, same consent)."""

    def inspect(self, gw, target, params):
        return {"grants": params["grants"]}

    def apply(self, gw, target, params, before):
        for grant in params["grants"]:
            gw.write("POST", "/oauth2PermissionGrants", grant)

    def verify(self, gw, target, params, before):
        missing = []
        for grant in params["grants"]:
            present = (
                gw.list("/oauth2PermissionGrants", {"$filter": f"clientId eq '{grant['clientId']}'"}) or []
            )
            if not any(
                p.get("scope") == grant["scope"] and p.get("principalId") == grant.get("principalId")
                for p in present
            ):
                missing.append(grant)
        return Verification(not missing, {"missing": missing})


def _service_principal_id(gw: GraphGateway, app: str) -> str:
    """Accept a service principal object id, an appId, or a display name."""
    found = gw.get(f"/servicePrincipals/{_q(app)}")
    if found is not None:
        return str(found.get("id", app))
    for expression in (f"appId eq '{app}'", f"displayName eq '{app}'"):
        matches = gw.list("/servicePrincipals", {"$filter": expression}) or []
        if matches:
            return str(matches[0]["id"])
    raise TargetMissing(f"no service principal (app) {app!r} in the tenant")


# --------------------------------------------------------------------------- inbox rules

_FORWARDING_ACTIONS = ("forwardTo", "redirectTo", "forwardAsAttachmentTo")


def _forwards(rule: dict[str, Any]) -> bool:
    actions = rule.get("actions") or {}
    return any(actions.get(name) for name in _FORWARDING_ACTIONS)


class RemoveInboxRules(Operation):
    def _rules_path(self, user: str) -> str:
        return f"/users/{_q(user)}/mailFolders/inbox/messageRules"

    def inspect(self, gw, target, params):
        rules = gw.list(self._rules_path(target["user"]))
        if rules is None:
            raise TargetMissing(f"no mailbox for {target['user']!r}")
        if target.get("rule_id"):
            chosen = [r for r in rules if r.get("id") == target["rule_id"]]
        else:
            chosen = [r for r in rules if _forwards(r)]
        if not chosen:
            what = f"rule {target['rule_id']}" if target.get("rule_id") else "no forwarding rule"
            raise TargetMissing(f"{target['user']}: {what} in the inbox (already removed?)")
        return {"rules": chosen}

    def apply(self, gw, target, params, before):
        for rule in before["rules"]:
            gw.write("DELETE", f"{self._rules_path(target['user'])}/{_q(rule['id'])}")

    def verify(self, gw, target, params, before):
        ids = {r["id"] for r in before["rules"]}
        remaining = [r["id"] for r in gw.list(self._rules_path(target["user"])) or [] if r.get("id") in ids]
        return Verification(not remaining, {"still_present": remaining})

    def inverse_request(self, target, params, before):
        writable = ("displayName", "sequence", "isEnabled", "conditions", "actions", "exceptions")
        rules = [{k: r[k] for k in writable if k in r} for r in before["rules"]]
        return {"user": target["user"]}, {"rules": rules}


class RestoreInboxRules(Operation):
    def inspect(self, gw, target, params):
        rules = gw.list(f"/users/{_q(target['user'])}/mailFolders/inbox/messageRules")
        if rules is None:
            raise TargetMissing(f"no mailbox for {target['user']!r}")
        return {"existing": [r.get("displayName") for r in rules]}

    def apply(self, gw, target, params, before):
        for rule in params["rules"]:
            gw.write("POST", f"/users/{_q(target['user'])}/mailFolders/inbox/messageRules", rule)

    def verify(self, gw, target, params, before):
        present = {
            r.get("displayName")
            for r in gw.list(f"/users/{_q(target['user'])}/mailFolders/inbox/messageRules") or []
        }
        missing = [r.get("displayName") for r in params["rules"] if r.get("displayName") not in present]
        return Verification(not missing, {"missing": missing})


# --------------------------------------------------------------------------- authentication methods

_METHOD_SEGMENTS = {
    "#microsoft.graph.phoneAuthenticationMethod": "phoneMethods",
    "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod": "microsoftAuthenticatorMethods",
    "#microsoft.graph.softwareOathAuthenticationMethod": "softwareOathMethods",
    "#microsoft.graph.fido2AuthenticationMethod": "fido2Methods",
    "#microsoft.graph.emailAuthenticationMethod": "emailMethods",
    "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod": "windowsHelloForBusinessMethods",
    "#microsoft.graph.temporaryAccessPassAuthenticationMethod": "temporaryAccessPassMethods",
}


class RemoveAuthMethods(Operation):
    """Delete MFA methods: one by id, or every removable method registered at or after a time."""

    def inspect(self, gw, target, params):
        methods = gw.list(f"/users/{_q(target['user'])}/authentication/methods")
        if methods is None:
            raise TargetMissing(f"no Microsoft 365 user {target['user']!r}")
        removable = [m for m in methods if m.get("@odata.type") in _METHOD_SEGMENTS]
        if target.get("method_id"):
            chosen = [m for m in removable if m.get("id") == target["method_id"]]
        else:
            since = params.get("registered_after") or ""
            chosen = [m for m in removable if since and str(m.get("createdDateTime") or "") >= since]
        if not chosen:
            raise TargetMissing(f"{target['user']}: no matching authentication method (already removed?)")
        return {"methods": chosen}

    def _path(self, user: str, method: dict[str, Any]) -> str:
        return (
            f"/users/{_q(user)}/authentication/{_METHOD_SEGMENTS[method['@odata.type']]}/{_q(method['id'])}"
        )

    def apply(self, gw, target, params, before):
        for method in before["methods"]:
            gw.write("DELETE", self._path(target["user"], method))

    def verify(self, gw, target, params, before):
        ids = {m["id"] for m in before["methods"]}
        remaining = [
            m["id"]
            for m in gw.list(f"/users/{_q(target['user'])}/authentication/methods") or []
            if m.get("id") in ids
        ]
        return Verification(not remaining, {"still_present": remaining})


# --------------------------------------------------------------------------- tenant policies


def _contains(actual: Any, wanted: Any) -> bool:
    """`wanted` is in `actual`: equal values, or for objects every wanted key matches (the service
    may add keys of its own to what we wrote)."""
    if isinstance(wanted, dict) and isinstance(actual, dict):
        return all(_contains(actual.get(k), v) for k, v in wanted.items())
    return bool(actual == wanted)


class RestoreCaPolicy(Operation):
    """PATCH a conditional-access policy back to known-good values (from a snapshot or baseline).
    The policy is named by id, or by display name (what the directory audit records carry)."""

    def _find(self, gw: GraphGateway, target: dict[str, Any]) -> dict[str, Any]:
        if target.get("policy_id"):
            policy = gw.get(f"/identity/conditionalAccess/policies/{_q(target['policy_id'])}")
        else:
            policies = gw.list("/identity/conditionalAccess/policies") or []
            named = [p for p in policies if p.get("displayName") == target.get("policy_name")]
            if len(named) > 1:
                raise InvalidState(
                    f"{len(named)} policies are named {target.get('policy_name')!r}: name it by policy_id"
                )
            policy = named[0] if named else None
        if policy is None:
            which = target.get("policy_id") or target.get("policy_name")
            raise TargetMissing(f"conditional-access policy {which!r} does not exist (deleted?)")
        return policy

    def inspect(self, gw, target, params):
        policy = self._find(gw, target)
        return {"id": policy["id"], "settings": {key: policy.get(key) for key in params["settings"]}}

    def satisfied(self, before, params):
        return _contains(before["settings"], params["settings"])

    def apply(self, gw, target, params, before):
        gw.write("PATCH", f"/identity/conditionalAccess/policies/{_q(before['id'])}", params["settings"])

    def verify(self, gw, target, params, before):
        after = gw.get(f"/identity/conditionalAccess/policies/{_q(before['id'])}") or {}
        differ = {k: after.get(k) for k, v in params["settings"].items() if not _contains(after.get(k), v)}
        return Verification(not differ, {"differs": differ})

    def inverse_request(self, target, params, before):
        return {"policy_id": before["id"]}, {"settings": dict(before["settings"])}


class SetSecurityDefaults(Operation):
    PATH = "/policies/identitySecurityDefaultsEnforcementPolicy"

    def inspect(self, gw, target, params):
        policy = gw.get(self.PATH)
        if policy is None:
            raise TargetMissing("the tenant exposes no security-defaults policy")
        return {"isEnabled": policy.get("isEnabled")}

    def satisfied(self, before, params):
        return before.get("isEnabled") is params.get("enabled", True)

    def apply(self, gw, target, params, before):
        gw.write("PATCH", self.PATH, {"isEnabled": params.get("enabled", True)})

    def verify(self, gw, target, params, before):
        after = gw.get(self.PATH) or {}
        return Verification(
            after.get("isEnabled") is params.get("enabled", True), {"isEnabled": after.get("isEnabled")}
        )

    def inverse_request(self, target, params, before):
        return dict(target), {"enabled": bool(before.get("isEnabled"))}


# --------------------------------------------------------------------------- apps and roles


class SetServicePrincipalEnabled(Operation):
    """accountEnabled on a service principal: disabled, no user can sign in to the app or use its tokens."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def inspect(self, gw, target, params):
        sp_id = _service_principal_id(gw, target["app"])
        sp = gw.get(f"/servicePrincipals/{_q(sp_id)}") or {}
        if not self.enabled and sp.get("appOwnerOrganizationId") in MICROSOFT_TENANT_IDS:
            raise InvalidState(
                f"{sp.get('displayName') or sp_id} is a Microsoft first-party app: never disabled by remediation"
            )
        return {"id": sp_id, "displayName": sp.get("displayName"), "accountEnabled": sp.get("accountEnabled")}

    def satisfied(self, before, params):
        return before.get("accountEnabled") is self.enabled

    def apply(self, gw, target, params, before):
        gw.write("PATCH", f"/servicePrincipals/{_q(before['id'])}", {"accountEnabled": self.enabled})

    def verify(self, gw, target, params, before):
        after = gw.get(f"/servicePrincipals/{_q(before['id'])}") or {}
        return Verification(
            after.get("accountEnabled") is self.enabled, {"accountEnabled": after.get("accountEnabled")}
        )


class RemoveRoleAssignments(Operation):
    """Delete a user's directory role assignment: by id, or every assignment of a named role."""

    def _assignments(self, gw: GraphGateway, user_id: str) -> list[dict[str, Any]]:
        return (
            gw.list("/roleManagement/directory/roleAssignments", {"$filter": f"principalId eq '{user_id}'"})
            or []
        )

    def _role_id(self, gw: GraphGateway, role: str) -> str:
        name = role.strip().strip('"')
        definitions = gw.list("/roleManagement/directory/roleDefinitions") or []
        found = next(
            (d for d in definitions if name in (d.get("id"), d.get("templateId"), d.get("displayName"))), None
        )
        if found is None:
            raise TargetMissing(f"no directory role {name!r}")
        return str(found.get("templateId") or found["id"])

    def inspect(self, gw, target, params):
        user = read_user(gw, target["user"])
        assignments = self._assignments(gw, user["id"])
        if target.get("role_assignment_id"):
            chosen = [a for a in assignments if a.get("id") == target["role_assignment_id"]]
        elif target.get("role"):
            role_id = self._role_id(gw, target["role"])
            chosen = [a for a in assignments if a.get("roleDefinitionId") == role_id]
        else:
            raise InvalidState("name the role (role) or the assignment (role_assignment_id) to remove")
        if not chosen:
            raise TargetMissing(f"{target['user']} holds no such role assignment (already removed?)")
        return {"user_id": user["id"], "assignments": chosen}

    def apply(self, gw, target, params, before):
        for assignment in before["assignments"]:
            gw.write("DELETE", f"/roleManagement/directory/roleAssignments/{_q(assignment['id'])}")

    def verify(self, gw, target, params, before):
        ids = {a["id"] for a in before["assignments"]}
        remaining = [a["id"] for a in self._assignments(gw, before["user_id"]) if a.get("id") in ids]
        return Verification(not remaining, {"still_present": remaining})


# --------------------------------------------------------------------------- the declarations

_P = Provider.M365

ACTIONS = (
    ActionSpec(
        name="m365.revoke_sessions",
        provider=_P,
        title="Revoke sign-in sessions",
        description="Invalidate every refresh token and session cookie of the account; stolen tokens stop working.",
        target=(USER,),
        permission="User.RevokeSessions.All (or User.ReadWrite.All)",
        reversible=True,
        inverse=None,  # nothing to undo: the user simply signs in again
        blast_radius=BlastRadius.USER,
        idempotency_fields=("user",),
        verification="GET /users/{user}?$select=signInSessionsValidFromDateTime has moved past its value before the call",
        operation=RevokeSessions(),
    ),
    ActionSpec(
        name="m365.disable_account",
        provider=_P,
        title="Disable the account",
        description="Block every new sign-in to the account (accountEnabled=false).",
        target=(USER,),
        permission="User.EnableDisableAccount.All (or User.ReadWrite.All)",
        reversible=True,
        inverse="m365.enable_account",
        blast_radius=BlastRadius.USER,
        idempotency_fields=("user",),
        verification="GET /users/{user}?$select=accountEnabled is false",
        operation=SetAccountEnabled(False),
    ),
    ActionSpec(
        name="m365.enable_account",
        provider=_P,
        title="Re-enable the account",
        description="Let the owner sign in again once the account is clean (accountEnabled=true).",
        target=(USER,),
        permission="User.EnableDisableAccount.All (or User.ReadWrite.All)",
        reversible=True,
        inverse="m365.disable_account",
        blast_radius=BlastRadius.USER,
        idempotency_fields=("user",),
        verification="GET /users/{user}?$select=accountEnabled is true",
        operation=SetAccountEnabled(True),
    ),
    ActionSpec(
        name="m365.confirm_compromised",
        provider=_P,
        title="Confirm the user compromised",
        description="Tell Entra ID Protection the account is compromised: user risk high, risk policies apply.",
        target=(USER,),
        permission="IdentityRiskyUser.ReadWrite.All",
        reversible=True,
        inverse="m365.dismiss_risk",
        blast_radius=BlastRadius.USER,
        idempotency_fields=("user",),
        verification="GET /identityProtection/riskyUsers/{id} riskState is confirmedCompromised",
        operation=SetUserRisk("confirmCompromised", "confirmedCompromised"),
    ),
    ActionSpec(
        name="m365.dismiss_risk",
        provider=_P,
        title="Dismiss the user's risk",
        description="Clear the user risk once the account is remediated (riskState=dismissed).",
        target=(USER,),
        permission="IdentityRiskyUser.ReadWrite.All",
        reversible=False,
        blast_radius=BlastRadius.USER,
        idempotency_fields=("user",),
        verification="GET /identityProtection/riskyUsers/{id} riskState is dismissed",
        operation=SetUserRisk("dismiss", "dismissed"),
    ),
    ActionSpec(
        name="m365.remove_drive_permission",
        provider=_P,
        title="Remove sharing links or a drive permission",
        description="Delete a OneDrive/SharePoint item's anonymous links (or one permission by id) where they are defined.",
        target=(
            Field("drive_id", "drive id (or give user + file_name)", required=False),
            Field("item_id", "drive item id", required=False),
            Field("user", "owner of the OneDrive, with file_name", required=False),
            Field("file_name", "file name in the owner's OneDrive", required=False),
            Field("permission_id", "one permission (default: every link of `scope`)", required=False),
            Field("scope", "link scope to remove: anonymous (default), organization, users", required=False),
        ),
        permission="Files.ReadWrite.All or Sites.ReadWrite.All",
        reversible=False,  # a link cannot be re-created with the same URL
        blast_radius=BlastRadius.OBJECT,
        idempotency_fields=("drive_id", "item_id", "user", "file_name", "permission_id", "scope"),
        verification="GET /drives/{drive}/items/{item}/permissions no longer lists the removed permissions",
        operation=RemoveDrivePermissions(),
    ),
    ActionSpec(
        name="m365.revoke_oauth_grant",
        provider=_P,
        title="Revoke a user's OAuth2 permission grant",
        description="Delete the delegated consent one user gave to an app (consentType Principal).",
        target=(
            USER,
            Field("app", "client service principal id, appId or display name"),
            Field("grant_id", "only this oAuth2PermissionGrant", required=False),
        ),
        permission="DelegatedPermissionGrant.ReadWrite.All",
        reversible=True,
        inverse="m365.restore_oauth_grant",
        blast_radius=BlastRadius.USER,
        idempotency_fields=("user", "app"),
        verification="GET /oauth2PermissionGrants?$filter=clientId eq '{client}' no longer lists the revoked grants",
        operation=RevokeOAuthGrants(),
        guard=not_first_party,
    ),
    ActionSpec(
        name="m365.revoke_app_consent",
        provider=_P,
        title="Revoke every grant of an app",
        description="Delete all delegated consent to an app, tenant-wide (admin consent and each user's).",
        target=(
            Field("app", "client service principal id, appId or display name"),
            Field("grant_id", "only this oAuth2PermissionGrant", required=False),
        ),
        permission="DelegatedPermissionGrant.ReadWrite.All",
        reversible=True,
        inverse="m365.restore_oauth_grant",
        blast_radius=BlastRadius.APP,
        idempotency_fields=("app", "grant_id"),
        verification="GET /oauth2PermissionGrants?$filter=clientId eq '{client}' no longer lists the revoked grants",
        operation=RevokeOAuthGrants(),
        guard=not_first_party,
    ),
    ActionSpec(
        name="m365.restore_oauth_grant",
        provider=_P,
        title="Restore OAuth2 permission grants",
        description="Re-create revoked delegated grants from the copies saved at revocation.",
        target=(
            Field("grant_id", "original grant id", required=False),
            Field("app", "client app", required=False),
            Field("user", "user", required=False),
        ),
        params=(Field("grants", "the saved grants (clientId, consentType, principalId, resourceId, scope)"),),
        permission="DelegatedPermissionGrant.ReadWrite.All",
        reversible=False,
        blast_radius=BlastRadius.APP,
        idempotency_fields=("grant_id", "app", "user"),
        verification="GET /oauth2PermissionGrants?$filter=clientId eq '{client}' lists each saved scope again",
        operation=RestoreOAuthGrants(),
        rollback_only=True,
    ),
    ActionSpec(
        name="m365.remove_inbox_rule",
        provider=_P,
        title="Remove inbox forwarding rules",
        description="Delete the inbox rule(s) that forward or redirect mail (one by id, or all forwarding rules).",
        target=(USER, Field("rule_id", "messageRule id (default: every forwarding rule)", required=False)),
        permission="MailboxSettings.ReadWrite",
        reversible=True,
        inverse="m365.restore_inbox_rule",
        blast_radius=BlastRadius.OBJECT,
        idempotency_fields=("user", "rule_id"),
        verification="GET /users/{user}/mailFolders/inbox/messageRules no longer lists the rule ids",
        operation=RemoveInboxRules(),
    ),
    ActionSpec(
        name="m365.restore_inbox_rule",
        provider=_P,
        title="Restore inbox rules",
        description="Re-create inbox rules from the copies saved when they were removed.",
        target=(USER, Field("rule_id", "original rule id", required=False)),
        params=(Field("rules", "the saved rules"),),
        permission="MailboxSettings.ReadWrite",
        reversible=False,
        blast_radius=BlastRadius.OBJECT,
        idempotency_fields=("user", "rule_id"),
        verification="GET /users/{user}/mailFolders/inbox/messageRules lists each saved displayName",
        operation=RestoreInboxRules(),
        rollback_only=True,
    ),
    ActionSpec(
        name="m365.remove_auth_method",
        provider=_P,
        title="Remove MFA methods added by the attacker",
        description="Delete authentication methods registered during the incident (or one by id).",
        target=(USER, Field("method_id", "authentication method id", required=False)),
        params=(
            Field("registered_after", "ISO time: remove methods registered at or after it", required=False),
        ),
        permission="UserAuthenticationMethod.ReadWrite.All",
        reversible=False,  # the attacker's device cannot (and must not) be re-registered
        blast_radius=BlastRadius.USER,
        idempotency_fields=("user", "method_id"),
        verification="GET /users/{user}/authentication/methods no longer lists the method ids",
        operation=RemoveAuthMethods(),
    ),
    ActionSpec(
        name="m365.restore_ca_policy",
        provider=_P,
        title="Restore a conditional-access policy",
        description="Set a weakened conditional-access policy back to its known-good values.",
        target=(
            Field("policy_id", "conditionalAccessPolicy id (or policy_name)", required=False),
            Field("policy_name", "the policy's display name", required=False),
        ),
        params=(Field("settings", "the policy fields to set (state, conditions, grantControls, ...)"),),
        permission="Policy.ReadWrite.ConditionalAccess",
        reversible=True,
        inverse="m365.restore_ca_policy",
        blast_radius=BlastRadius.TENANT,
        idempotency_fields=("policy_id", "policy_name"),
        verification="GET /identity/conditionalAccess/policies/{id} shows every restored field",
        operation=RestoreCaPolicy(),
    ),
    ActionSpec(
        name="m365.restore_security_defaults",
        provider=_P,
        title="Restore security defaults",
        description="Turn Entra security defaults back on (or to the given value).",
        target=(),
        params=(Field("enabled", "desired isEnabled (default true)", required=False),),
        permission="Policy.ReadWrite.ConditionalAccess",
        reversible=True,
        inverse="m365.restore_security_defaults",
        blast_radius=BlastRadius.TENANT,
        idempotency_fields=(),
        verification="GET /policies/identitySecurityDefaultsEnforcementPolicy isEnabled is the desired value",
        operation=SetSecurityDefaults(),
    ),
    ActionSpec(
        name="m365.disable_service_principal",
        provider=_P,
        title="Disable an app (service principal)",
        description="Stop every sign-in to the app and every use of its tokens, tenant-wide.",
        target=(Field("app", "service principal id, appId or display name"),),
        permission="Application.ReadWrite.All",
        reversible=True,
        inverse="m365.enable_service_principal",
        blast_radius=BlastRadius.APP,
        idempotency_fields=("app",),
        verification="GET /servicePrincipals/{id} accountEnabled is false",
        operation=SetServicePrincipalEnabled(False),
        guard=not_first_party,
    ),
    ActionSpec(
        name="m365.enable_service_principal",
        provider=_P,
        title="Enable an app (service principal)",
        description="Let users sign in to the app again.",
        target=(Field("app", "service principal id, appId or display name"),),
        permission="Application.ReadWrite.All",
        reversible=True,
        inverse="m365.disable_service_principal",
        blast_radius=BlastRadius.APP,
        idempotency_fields=("app",),
        verification="GET /servicePrincipals/{id} accountEnabled is true",
        operation=SetServicePrincipalEnabled(True),
        rollback_only=True,
    ),
    ActionSpec(
        name="m365.remove_role_assignment",
        provider=_P,
        title="Remove a directory role assignment",
        description="Take an admin role away from a user (one assignment by id, or the named role).",
        target=(
            USER,
            Field("role_assignment_id", "unifiedRoleAssignment id", required=False),
            Field("role", "role display name or role definition id", required=False),
        ),
        permission="RoleManagement.ReadWrite.Directory",
        reversible=False,  # privilege goes back only through the normal role-assignment process
        blast_radius=BlastRadius.USER,
        idempotency_fields=("user", "role_assignment_id", "role"),
        verification="GET /roleManagement/directory/roleAssignments?$filter=principalId eq '{id}' no longer lists it",
        operation=RemoveRoleAssignments(),
    ),
)
