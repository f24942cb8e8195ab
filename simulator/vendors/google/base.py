"""What every Google handler shares: the JWT-bearer token endpoint, scope and admin checks, paging."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import jwt

from simulator.auth import TOKEN_LIFETIME, verify_google_assertion
from simulator.http import Request, Response
from simulator.server import ApiError
from simulator.tenant import Person
from simulator.timestamps import SECOND
from simulator.vendors.paging import decode_cursor

if TYPE_CHECKING:
    from simulator.server import Simulator

# activities.list's applicationName values: the enum of the Reports discovery document that
# google-api-python-client ships (tests/simulator/test_discovery_conformance.py keeps them equal)
KNOWN_APPLICATIONS = {
    "access_transparency",
    "admin",
    "calendar",
    "chat",
    "drive",
    "gcp",
    "gmail",
    "gplus",
    "groups",
    "groups_enterprise",
    "jamboard",
    "login",
    "meet",
    "mobile",
    "rules",
    "saml",
    "token",
    "user_accounts",
    "context_aware_access",
    "chrome",
    "data_studio",
    "keep",
    "vault",
    "gemini_in_workspace_apps",
    "classroom",
    "assignments",
    "cloud_search",
    "tasks",
    "data_migration",
    "meet_hardware",
    "directory_sync",
    "ldap",
    "profile",
    "access_evaluation",
    "admin_data_action",
    "contacts",
    "takeout",
    "graduation",
    "voice",
    "chrome_sync",
    "workspace_studio",
    "gemini_notebook",
}
SCOPES = {
    "reports": ("https://www.googleapis.com/auth/admin.reports.audit.readonly",),
    "directory_read": (
        "https://www.googleapis.com/auth/admin.directory.user.readonly",
        "https://www.googleapis.com/auth/admin.directory.user",
    ),
    "directory_write": ("https://www.googleapis.com/auth/admin.directory.user",),
    # groups.list takes the group scopes only (the discovery document's list for the method)
    "groups": (
        "https://www.googleapis.com/auth/admin.directory.group.readonly",
        "https://www.googleapis.com/auth/admin.directory.group",
    ),
    "security": ("https://www.googleapis.com/auth/admin.directory.user.security",),
    "roles": (
        "https://www.googleapis.com/auth/admin.directory.rolemanagement.readonly",
        "https://www.googleapis.com/auth/admin.directory.rolemanagement",
    ),
    "roles_write": ("https://www.googleapis.com/auth/admin.directory.rolemanagement",),
    "drive": (
        "https://www.googleapis.com/auth/drive",
        "https://www.googleapis.com/auth/drive.readonly",
        "https://www.googleapis.com/auth/drive.metadata.readonly",
    ),
    "drive_write": ("https://www.googleapis.com/auth/drive",),
    "gmail": (
        "https://www.googleapis.com/auth/gmail.readonly",
        "https://www.googleapis.com/auth/gmail.metadata",
        "https://mail.google.com/",
        "https://www.googleapis.com/auth/gmail.modify",
    ),
    "policies": (
        "https://www.googleapis.com/auth/cloud-identity.policies.readonly",
        "https://www.googleapis.com/auth/cloud-identity.policies",
    ),
    "policies_write": ("https://www.googleapis.com/auth/cloud-identity.policies",),
}
PARAMETER_FILTER = re.compile(r"^\s*(\w+)\s*(==|<>|<=|>=|<|>)\s*(.*?)\s*$")


class GoogleBase:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.world = sim.world
        self.tenant = sim.tenant
        self.state = sim.state
        self._last_login: dict[int, int | None] = {}

    def token(self, request: Request) -> Response:
        form = request.form
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Response.json(
                {"error": "unsupported_grant_type", "error_description": "Invalid grant_type."}, 400
            )
        creds = self.sim.credentials
        try:
            claims = verify_google_assertion(
                str(form.get("assertion", "")),
                creds.google_public_key(),
                creds.sa_email,
                f"{self.sim.base_url}/google/token",
            )
        except jwt.PyJWTError as exc:
            return Response.json(
                {"error": "invalid_grant", "error_description": f"Invalid JWT Signature. ({exc})"}, 400
            )
        subject = claims.get("sub")
        if subject and subject != creds.sa_email:
            person = self.tenant.person(subject)
            if person is None or self.state.user(person.index).google_suspended:
                return Response.json(
                    {"error": "invalid_grant", "error_description": "Invalid email or User ID"}, 400
                )
        scopes = tuple(str(claims.get("scope", "")).split())
        if not scopes:
            return Response.json(
                {"error": "invalid_scope", "error_description": "Empty or missing scope not allowed."}, 400
            )
        token = self.sim.tokens.issue("google", "google", subject, scopes, self.sim.now() / SECOND)
        return Response.json(
            {"access_token": token.value, "expires_in": TOKEN_LIFETIME, "token_type": "Bearer"}
        )

    def need(self, request: Request, scope_kind: str, admin: bool = False) -> Person | None:
        token = self.sim.tokens.get(request.bearer)
        scopes = set(token.scopes) if token else set()
        if not scopes & set(SCOPES[scope_kind]):
            raise ApiError(403, "insufficientPermissions", "Request had insufficient authentication scopes.")
        subject = request.params.get("_token_subject") or None
        person = self.tenant.person(subject) if subject else None
        if admin and (person is None or not self._is_admin(person)):
            raise ApiError(403, "forbidden", "Not Authorized to access this resource/api")
        return person

    def _is_admin(self, person: Person) -> bool:
        with self.state.lock:
            if self.state.user(person.index).google_admin:
                return True
            return any(
                a["assignedTo"] == person.google_id for a in self.state.google_role_assignments.values()
            )

    def person(self, key: str) -> Person:
        person = self.tenant.person(key)
        if person is None or person.index in self.state.removed_users:
            raise ApiError(404, "notFound", "Resource Not Found: userKey")
        return person

    def change(
        self,
        request: Request,
        action: str,
        target: dict[str, Any],
        status: int = 204,
        person: Person | None = None,
    ) -> None:
        self.state.bump(person)
        self.state.record_change(
            "google",
            action,
            target,
            {"method": request.method, "path": request.path, "body": request.form or None},
            status,
        )

    def admin_event(self, actor: Person | None, events: list[tuple[str, str, dict[str, Any]]]) -> None:
        from simulator.render.google import activity_extra

        self.world.store.add_dynamic(
            "google:admin", self.sim.now(), "activity", actor, activity_extra(actor, None, events)
        )

    @staticmethod
    def size(request: Request, name: str, default: int, maximum: int) -> int:
        raw = request.arg(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(400, "invalid", f"Invalid value for {name}: {raw}") from None
        if value < 1:
            raise ApiError(400, "invalid", f"Invalid value for {name}: {raw}")
        return min(value, maximum)

    @staticmethod
    def page_token(request: Request, name: str = "pageToken") -> dict[str, Any] | None:
        raw = request.arg(name)
        if not raw:
            return None
        data = decode_cursor(raw)
        if data is None:
            raise ApiError(400, "invalid", "Invalid page token, please restart your list request without it.")
        return data

    def _people(self) -> list[Person]:
        now = self.sim.now()
        return [p for p in self.tenant.people if p.index not in self.state.removed_users and p.created <= now]


def both(first: Any, second: Any) -> Any:
    if first is None:
        return second
    return lambda activity: first(activity) and second(activity)


def copy_policy(policy: dict[str, Any]) -> dict[str, Any]:
    return {
        **policy,
        "policyQuery": dict(policy["policyQuery"]),
        "setting": {"type": policy["setting"]["type"], "value": dict(policy["setting"]["value"])},
    }


def param_value(event: dict[str, Any], name: str) -> Any:
    for parameter in event.get("parameters", []):
        if parameter["name"] == name:
            for key in ("value", "boolValue", "intValue", "multiValue"):
                if key in parameter:
                    return parameter[key]
    return None


def param_matches(event: dict[str, Any], name: str, op: str, expected: str) -> bool:
    value = param_value(event, name)
    if value is None:
        return False
    values = value if isinstance(value, list) else [value]
    texts = [str(v).lower() for v in values]
    target = expected.lower()
    if op == "==":
        return target in texts
    if op == "<>":
        return target not in texts
    try:
        number, limit = float(texts[0]), float(target)
    except ValueError:
        return False
    return {"<": number < limit, "<=": number <= limit, ">": number > limit, ">=": number >= limit}[op]


def matches_query(user: dict[str, Any], query: str) -> bool:
    for clause in query.split():
        key, sep, value = clause.partition("=") if "=" in clause else clause.partition(":")
        if not sep:
            continue
        value = value.strip("'\"").lower()
        if key == "isAdmin":
            if str(user["isAdmin"]).lower() != value:
                return False
        elif key == "isEnrolledIn2Sv":
            if str(user["isEnrolledIn2Sv"]).lower() != value:
                return False
        elif key == "isSuspended":
            if str(user["suspended"]).lower() != value:
                return False
        elif key == "isDelegatedAdmin":
            if str(user["isDelegatedAdmin"]).lower() != value:
                return False
        elif (
            key == "email"
            and not user["primaryEmail"].lower().startswith(value.rstrip("*"))
            or key == "orgUnitPath"
            and user["orgUnitPath"].lower() != value
        ):
            return False
    return True


def drive_visibility(perms: list[Any]) -> str:
    kinds = {p.type: p for p in perms}
    if "anyone" in kinds:
        return "anyoneCanFind" if kinds["anyone"].discoverable else "anyoneWithLink"
    if "domain" in kinds:
        return "domainCanFind" if kinds["domain"].discoverable else "domainWithLink"
    return "limited"
