"""Google Workspace actions, through the Admin SDK Directory API and Drive v3 (googleapiclient)."""

from __future__ import annotations

from typing import Any

from core.models import Provider
from providers.google import GoogleGateway
from remediation.catalogue import ActionSpec, BlastRadius, Field, Operation, Verification
from remediation.errors import InvalidState, TargetMissing

USER = Field("user", "primary e-mail or id of the Workspace user")
_PERMISSION_FIELDS = "id,type,role,emailAddress,domain,allowFileDiscovery,displayName"


def read_user(gw: GoogleGateway, user: str) -> dict[str, Any]:
    found = gw.get(lambda s: s.directory.users().get(userKey=user))
    if found is None:
        raise TargetMissing(f"no Google Workspace user {user!r}: it was deleted or never existed")
    return found


class SetUserField(Operation):
    """users.update with one boolean field (suspended, changePasswordAtNextLogin)."""

    def __init__(self, field: str, value: bool) -> None:
        self.field = field
        self.value = value

    def inspect(self, gw, target, params):
        user = read_user(gw, target["user"])
        return {"id": user.get("id"), self.field: bool(user.get(self.field, False))}

    def satisfied(self, before, params):
        return before.get(self.field) is self.value

    def apply(self, gw, target, params, before):
        gw.write(lambda s: s.directory.users().update(userKey=target["user"], body={self.field: self.value}))

    def verify(self, gw, target, params, before):
        after = read_user(gw, target["user"])
        return Verification(
            bool(after.get(self.field, False)) is self.value, {self.field: after.get(self.field)}
        )


class SignOut(Operation):
    """users.signOut ends every web and device session; Google offers no read of sessions, so the
    check reads the user back and relies on the 2xx of the call (noted in the verification)."""

    def inspect(self, gw, target, params):
        user = read_user(gw, target["user"])
        return {"id": user.get("id"), "lastLoginTime": user.get("lastLoginTime")}

    def apply(self, gw, target, params, before):
        gw.write(lambda s: s.directory.users().signOut(userKey=target["user"]))

    def verify(self, gw, target, params, before):
        after = read_user(gw, target["user"])
        signed_out = [c for c in gw.log.writes if "/signOut" in c.url and (c.status or 0) < 300]
        return Verification(
            bool(signed_out),
            {"user": after.get("primaryEmail"), "signOut_status": [c.status for c in signed_out]},
        )


class RevokeToken(Operation):
    def _get(self, gw: GoogleGateway, target: dict[str, Any]) -> dict[str, Any] | None:
        found = gw.get(lambda s: s.directory.tokens().list(userKey=target["user"]))
        if found is None:
            raise TargetMissing(f"no Google Workspace user {target['user']!r}")
        return next((t for t in found.get("items", []) if t.get("clientId") == target["client_id"]), None)

    def inspect(self, gw, target, params):
        token = self._get(gw, target)
        if token is None:
            raise TargetMissing(
                f"{target['user']} has no OAuth token for client {target['client_id']} (already revoked?)"
            )
        return token

    def apply(self, gw, target, params, before):
        gw.write(lambda s: s.directory.tokens().delete(userKey=target["user"], clientId=target["client_id"]))

    def verify(self, gw, target, params, before):
        token = self._get(gw, target)
        return Verification(token is None, {"token_present": token is not None})


def _external(permission: dict[str, Any], domain: str) -> bool:
    if permission.get("type") == "anyone":
        return True
    if permission.get("type") == "domain":
        return (permission.get("domain") or "").lower() != domain
    address = (permission.get("emailAddress") or "").lower()
    return bool(domain) and bool(address) and not address.endswith("@" + domain)


class RemoveDrivePermissions(Operation):
    """Delete one permission by id, or every public ("anyone") or external permission of a file."""

    def _list(self, gw: GoogleGateway, file_id: str) -> list[dict[str, Any]] | None:
        found = gw.get(
            lambda s: s.drive.permissions().list(
                fileId=file_id, supportsAllDrives=True, fields=f"permissions({_PERMISSION_FIELDS})"
            )
        )
        return None if found is None else found.get("permissions", [])

    def inspect(self, gw, target, params):
        permissions = self._list(gw, target["file_id"])
        if permissions is None:
            raise TargetMissing(f"no Drive file {target['file_id']!r}")
        if target.get("permission_id"):
            chosen = [p for p in permissions if p.get("id") == target["permission_id"]]
        else:
            scope = target.get("scope", "anyone")
            domain = (target.get("internal_domain") or "").lower()
            chosen = [
                p
                for p in permissions
                if p.get("role") != "owner"
                and (p.get("type") == "anyone" if scope == "anyone" else _external(p, domain))
            ]
        if not chosen:
            raise TargetMissing(f"file {target['file_id']}: no matching permission (already removed?)")
        return {"permissions": chosen}

    def apply(self, gw, target, params, before):
        for permission in before["permissions"]:
            gw.write(
                lambda s, pid=permission["id"]: s.drive.permissions().delete(
                    fileId=target["file_id"], permissionId=pid, supportsAllDrives=True
                )
            )

    def verify(self, gw, target, params, before):
        ids = {p["id"] for p in before["permissions"]}
        remaining = [p["id"] for p in self._list(gw, target["file_id"]) or [] if p.get("id") in ids]
        return Verification(not remaining, {"still_present": remaining})

    def inverse_request(self, target, params, before):
        writable = ("type", "role", "emailAddress", "domain", "allowFileDiscovery")
        saved = [{k: p[k] for k in writable if p.get(k) is not None} for p in before["permissions"]]
        return {"file_id": target["file_id"]}, {"permissions": saved}


class RestoreDrivePermissions(Operation):
    def inspect(self, gw, target, params):
        found = gw.get(lambda s: s.drive.permissions().list(fileId=target["file_id"], supportsAllDrives=True))
        if found is None:
            raise TargetMissing(f"no Drive file {target['file_id']!r}")
        return {"existing": found.get("permissions", [])}

    def apply(self, gw, target, params, before):
        for permission in params["permissions"]:
            gw.write(
                lambda s, body=permission: s.drive.permissions().create(
                    fileId=target["file_id"], body=body, supportsAllDrives=True, sendNotificationEmail=False
                )
            )

    def verify(self, gw, target, params, before):
        found = (
            gw.get(
                lambda s: s.drive.permissions().list(
                    fileId=target["file_id"],
                    supportsAllDrives=True,
                    fields=f"permissions({_PERMISSION_FIELDS})",
                )
            )
            or {}
        )
        present = found.get("permissions", [])
        missing = [
            p
            for p in params["permissions"]
            if not any(
                q.get("type") == p.get("type")
                and q.get("role") == p.get("role")
                and q.get("emailAddress") == p.get("emailAddress")
                and q.get("domain") == p.get("domain")
                for q in present
            )
        ]
        return Verification(not missing, {"missing": missing})


class RemoveAdminRoles(Operation):
    """Delete a user's admin role assignment: by id, or every assignment of a named role."""

    def _assignments(self, gw: GoogleGateway, user: str) -> list[dict[str, Any]]:
        found = gw.get(lambda s: s.directory.roleAssignments().list(customer="my_customer", userKey=user))
        if found is None:
            raise TargetMissing(f"no Google Workspace user {user!r}")
        return list(found.get("items", []))

    def inspect(self, gw, target, params):
        assignments = self._assignments(gw, target["user"])
        if target.get("role_assignment_id"):
            chosen = [
                a for a in assignments if str(a.get("roleAssignmentId")) == str(target["role_assignment_id"])
            ]
        elif target.get("role"):
            roles = (gw.get(lambda s: s.directory.roles().list(customer="my_customer")) or {}).get(
                "items", []
            )
            ids = {
                str(r["roleId"])
                for r in roles
                if target["role"] in (r.get("roleName"), r.get("roleDescription"), str(r.get("roleId")))
            }
            chosen = [a for a in assignments if str(a.get("roleId")) in ids]
        else:
            raise InvalidState("name the role (role) or the assignment (role_assignment_id) to remove")
        if not chosen:
            raise TargetMissing(f"{target['user']} holds no such admin role (already removed?)")
        return {"assignments": chosen}

    def apply(self, gw, target, params, before):
        for assignment in before["assignments"]:
            gw.write(
                lambda s, aid=str(assignment["roleAssignmentId"]): s.directory.roleAssignments().delete(
                    customer="my_customer", roleAssignmentId=aid
                )
            )

    def verify(self, gw, target, params, before):
        ids = {str(a["roleAssignmentId"]) for a in before["assignments"]}
        remaining = [
            a["roleAssignmentId"]
            for a in self._assignments(gw, target["user"])
            if str(a.get("roleAssignmentId")) in ids
        ]
        return Verification(not remaining, {"still_present": remaining})


class RestoreSetting(Operation):
    """Put a Workspace setting back (Cloud Identity policies.patch), for instance 2-step
    verification enforcement turned off for one organisational unit.

    Every policy of the setting type is read. With no value given, the organisation's own value —
    the policy with the lowest sortOrder, the root's — is restored on every other policy of that
    type whose value differs (an OU override that weakened it); ``value`` restores that value on
    them instead, ``values`` (policy name -> value, what a rollback sends) exactly those. The values
    before are saved, so a restore can be rolled back."""

    def _policies(self, gw: GoogleGateway, setting: str) -> list[dict[str, Any]]:
        wanted = setting.removeprefix("settings/")
        found = gw.get(
            lambda s: s.policies.policies().list(filter=f"setting.type.matches('{wanted}$')", pageSize=100)
        )
        policies = [
            p
            for p in (found or {}).get("policies", [])
            if str((p.get("setting") or {}).get("type", "")).removeprefix("settings/") == wanted
        ]
        if not policies:
            raise TargetMissing(f"no Workspace policy of setting {wanted!r}")
        return sorted(policies, key=lambda p: int((p.get("policyQuery") or {}).get("sortOrder") or 0))

    def _wanted(self, policies: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, dict[str, Any]]:
        if params.get("values"):
            return {str(k): dict(v) for k, v in params["values"].items()}
        root, *others = policies
        value = dict(params.get("value") or root["setting"]["value"])
        targets = others if not params.get("value") else policies
        return {str(p["name"]): value for p in targets}

    def inspect(self, gw, target, params):
        policies = self._policies(gw, target["setting"])
        wanted = self._wanted(policies, params)
        current = {str(p["name"]): dict(p["setting"].get("value") or {}) for p in policies}
        missing = [name for name in wanted if name not in current]
        if missing:
            raise TargetMissing(f"policies {missing} no longer exist")
        return {
            "wanted": wanted,
            "current": {name: current[name] for name in wanted},
            "org_units": {str(p["name"]): (p.get("policyQuery") or {}).get("orgUnit") for p in policies},
        }

    def satisfied(self, before, params):
        return all(before["current"][name] == value for name, value in before["wanted"].items())

    def apply(self, gw, target, params, before):
        setting = target["setting"].removeprefix("settings/")
        for name, value in before["wanted"].items():
            if before["current"][name] == value:
                continue
            gw.write(
                lambda s, name=name, value=value: s.policies.policies().patch(
                    name=name,
                    body={"setting": {"type": f"settings/{setting}", "value": value}},
                )
            )

    def verify(self, gw, target, params, before):
        now = {
            str(p["name"]): dict(p["setting"].get("value") or {})
            for p in self._policies(gw, target["setting"])
        }
        differ = {name: now.get(name) for name, value in before["wanted"].items() if now.get(name) != value}
        return Verification(not differ, {"differs": differ, "restored": sorted(before["wanted"])})

    def inverse_request(self, target, params, before):
        return {"setting": target["setting"]}, {"values": dict(before["current"])}


_P = Provider.GOOGLE

ACTIONS = (
    ActionSpec(
        name="google.suspend_user",
        provider=_P,
        title="Suspend the user",
        description="Suspend the Workspace account: no sign-in, no mail delivery to the attacker.",
        target=(USER,),
        permission="https://www.googleapis.com/auth/admin.directory.user",
        reversible=True,
        inverse="google.unsuspend_user",
        blast_radius=BlastRadius.USER,
        idempotency_fields=("user",),
        verification="users.get(userKey).suspended is true",
        operation=SetUserField("suspended", True),
    ),
    ActionSpec(
        name="google.unsuspend_user",
        provider=_P,
        title="Unsuspend the user",
        description="Give the account back to its owner once it is clean.",
        target=(USER,),
        permission="https://www.googleapis.com/auth/admin.directory.user",
        reversible=True,
        inverse="google.suspend_user",
        blast_radius=BlastRadius.USER,
        idempotency_fields=("user",),
        verification="users.get(userKey).suspended is false",
        operation=SetUserField("suspended", False),
    ),
    ActionSpec(
        name="google.sign_out",
        provider=_P,
        title="Sign the user out everywhere",
        description="End every web and device session (users.signOut).",
        target=(USER,),
        permission="https://www.googleapis.com/auth/admin.directory.user.security",
        reversible=True,
        inverse=None,  # nothing to undo: the user signs in again
        blast_radius=BlastRadius.USER,
        idempotency_fields=("user",),
        verification="users.signOut answered 2xx and users.get still finds the user (Google exposes no session read)",
        operation=SignOut(),
    ),
    ActionSpec(
        name="google.revoke_token",
        provider=_P,
        title="Revoke an OAuth token",
        description="Revoke the access a third-party app holds for the user (tokens.delete).",
        target=(USER, Field("client_id", "OAuth client id of the app")),
        permission="https://www.googleapis.com/auth/admin.directory.user.security",
        reversible=False,  # only the user can grant it again
        blast_radius=BlastRadius.OBJECT,
        idempotency_fields=("user", "client_id"),
        verification="tokens.list(userKey) no longer lists the clientId",
        operation=RevokeToken(),
    ),
    ActionSpec(
        name="google.remove_drive_permission",
        provider=_P,
        title="Remove a Drive permission",
        description="Delete a public link or an external share of a file (one by id, or all public/external).",
        target=(
            Field("file_id", "Drive file id"),
            Field("permission_id", "permission id (default: all matching `scope`)", required=False),
            Field(
                "scope",
                "'anyone' (public links, default) or 'external' (outside internal_domain)",
                required=False,
            ),
            Field("internal_domain", "the tenant's own domain, for scope=external", required=False),
        ),
        permission="https://www.googleapis.com/auth/drive (as the owner, or useDomainAdminAccess)",
        reversible=True,
        inverse="google.restore_drive_permission",
        blast_radius=BlastRadius.OBJECT,
        idempotency_fields=("file_id", "permission_id", "scope"),
        verification="permissions.list(fileId) no longer lists the permission ids",
        operation=RemoveDrivePermissions(),
    ),
    ActionSpec(
        name="google.restore_drive_permission",
        provider=_P,
        title="Restore Drive permissions",
        description="Re-create removed permissions from the saved copies (new ids).",
        target=(Field("file_id", "Drive file id"), Field("permission_id", "original id", required=False)),
        params=(Field("permissions", "the saved permissions"),),
        permission="https://www.googleapis.com/auth/drive",
        reversible=False,
        blast_radius=BlastRadius.OBJECT,
        idempotency_fields=("file_id", "permission_id"),
        verification="permissions.list(fileId) lists each saved type/role/grantee again",
        operation=RestoreDrivePermissions(),
        rollback_only=True,
    ),
    ActionSpec(
        name="google.force_password_change",
        provider=_P,
        title="Force a password change",
        description="Make the user choose a new password at the next sign-in.",
        target=(USER,),
        permission="https://www.googleapis.com/auth/admin.directory.user",
        reversible=True,
        inverse="google.clear_password_change",
        blast_radius=BlastRadius.USER,
        idempotency_fields=("user",),
        verification="users.get(userKey).changePasswordAtNextLogin is true",
        operation=SetUserField("changePasswordAtNextLogin", True),
    ),
    ActionSpec(
        name="google.clear_password_change",
        provider=_P,
        title="Cancel a forced password change",
        description="Undo a forced password change (changePasswordAtNextLogin=false).",
        target=(USER,),
        permission="https://www.googleapis.com/auth/admin.directory.user",
        reversible=True,
        inverse="google.force_password_change",
        blast_radius=BlastRadius.USER,
        idempotency_fields=("user",),
        verification="users.get(userKey).changePasswordAtNextLogin is false",
        operation=SetUserField("changePasswordAtNextLogin", False),
        rollback_only=True,
    ),
    ActionSpec(
        name="google.restore_setting",
        provider=_P,
        title="Restore a Workspace setting",
        description=(
            "Put a weakened Workspace setting back (Cloud Identity policies.patch): by default the "
            "organisation's own value on every organisational-unit override that differs from it."
        ),
        target=(Field("setting", "setting type, e.g. security.two_step_verification_enforcement"),),
        params=(
            Field("value", "the value to restore (default: the root policy's value)", required=False),
            Field("values", "policy name -> value, exactly (what a rollback restores)", required=False),
        ),
        permission="https://www.googleapis.com/auth/cloud-identity.policies",
        reversible=True,
        inverse="google.restore_setting",
        blast_radius=BlastRadius.TENANT,
        idempotency_fields=("setting",),
        verification="policies.list shows each restored policy with the wanted value",
        operation=RestoreSetting(),
    ),
    ActionSpec(
        name="google.remove_admin_role",
        provider=_P,
        title="Remove an admin role",
        description="Take a Workspace admin role away from a user (roleAssignments.delete).",
        target=(
            USER,
            Field("role_assignment_id", "roleAssignmentId", required=False),
            Field("role", "roleName (e.g. _SEED_ADMIN_ROLE) or description (Super Admin)", required=False),
        ),
        permission="https://www.googleapis.com/auth/admin.directory.rolemanagement",
        reversible=False,  # privilege goes back only through the normal role-assignment process
        blast_radius=BlastRadius.USER,
        idempotency_fields=("user", "role_assignment_id", "role"),
        verification="roleAssignments.list(userKey) no longer lists the assignment",
        operation=RemoveAdminRoles(),
    ),
)
