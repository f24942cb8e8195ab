"""Microsoft Graph v1.0 (and beta): audit logs, users, policies, apps, risk, drives, mail, Teams.

Paths live under /graph/v1.0 and /graph/beta. Lists page with `$top` and an absolute
`@odata.nextLink` carrying `$skiptoken`; `users/delta` ends with `@odata.deltaLink`.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from simulator.catalog import ENTRA_ROLES, PRIVILEGED_ENTRA_ROLES
from simulator.http import Request, Response
from simulator.odata import FilterError, equals_value, evaluate, parse_filter, time_bounds
from simulator.render.m365 import BETA_SIGNIN_FIELDS, audit_extra, target
from simulator.server import ApiError
from simulator.store import Window
from simulator.tenant import Person
from simulator.timestamps import DAY, SECOND, graph_time
from simulator.vendors.paging import decode_cursor, encode_cursor, event_page

if TYPE_CHECKING:
    from simulator.server import Simulator

G = r"/graph/(?P<version>v1\.0|beta)"
USER = r"(?P<user>[^/]+)"
APP_NAME = "tenantguard"
EVENT_STREAMS = {
    "signins": ("m365:signins", "createdDateTime", "auditLogs/signIns"),
    "directory_audits": ("m365:directory_audits", "activityDateTime", "auditLogs/directoryAudits"),
    "risk_detections": ("m365:risk_detections", "detectedDateTime", "identityProtection/riskDetections"),
}
DEFAULT_USER_FIELDS = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
METHOD_TYPES = {
    "microsoftAuthenticatorPush": (
        "microsoftAuthenticatorMethods",
        "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
    ),
    "softwareOneTimePasscode": ("softwareOathMethods", "#microsoft.graph.softwareOathAuthenticationMethod"),
    "mobilePhone": ("phoneMethods", "#microsoft.graph.phoneAuthenticationMethod"),
    "windowsHelloForBusiness": (
        "windowsHelloForBusinessMethods",
        "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
    ),
}


def register(sim: Simulator) -> None:
    api = GraphApi(sim)
    add = sim.router.add
    for name in EVENT_STREAMS:
        path = EVENT_STREAMS[name][2]
        add("GET", f"{G}/{path}", api.events_handler(name), "m365", name, "graph")
    routes: list[tuple[str, str, Callable[[Request], Response], str]] = [
        ("GET", "/users", api.users, "users"),
        ("GET", "/users/delta", api.users_delta, "users"),
        ("GET", f"/users/{USER}", api.user, "users"),
        ("PATCH", f"/users/{USER}", api.patch_user, "users"),
        ("POST", f"/users/{USER}/revokeSignInSessions", api.revoke_sessions, "users"),
        ("GET", f"/users/{USER}/authentication/methods", api.auth_methods, "auth_methods"),
        (
            "DELETE",
            f"/users/{USER}/authentication/(?P<kind>\\w+Methods)/(?P<method>[^/]+)",
            api.delete_auth_method,
            "auth_methods",
        ),
        ("GET", f"/users/{USER}/mailFolders/(?P<folder>[^/]+)/messageRules", api.inbox_rules, "inbox_rules"),
        (
            "DELETE",
            f"/users/{USER}/mailFolders/(?P<folder>[^/]+)/messageRules/(?P<rule>[^/]+)",
            api.delete_inbox_rule,
            "inbox_rules",
        ),
        ("GET", f"/users/{USER}/messages", api.messages, "mail"),
        ("GET", f"/users/{USER}/chats/getAllMessages(?:\\(\\))?", api.chat_messages, "teams_messages"),
        ("GET", f"/users/{USER}/drive", api.user_drive, "drive"),
        ("GET", f"/users/{USER}/drive/root/children", api.user_drive_children, "drive"),
        ("GET", f"/users/{USER}/drive/items/(?P<item>[^/]+)/permissions", api.user_item_permissions, "drive"),
        ("GET", "/drives/(?P<drive>[^/]+)/root/children", api.drive_children, "drive"),
        ("GET", "/drives/(?P<drive>[^/]+)/items/(?P<item>[^/]+)", api.drive_item, "drive"),
        ("GET", "/drives/(?P<drive>[^/]+)/items/(?P<item>[^/]+)/permissions", api.item_permissions, "drive"),
        (
            "DELETE",
            "/drives/(?P<drive>[^/]+)/items/(?P<item>[^/]+)/permissions/(?P<permission>[^/]+)",
            api.delete_permission,
            "drive",
        ),
        ("GET", "/groups", api.groups, "groups"),
        ("GET", "/groups/(?P<group>[^/]+)/members", api.group_members, "groups"),
        ("GET", "/organization", api.organization, "organization"),
        (
            "GET",
            "/reports/authenticationMethods/userRegistrationDetails",
            api.registration_details,
            "registration",
        ),
        ("GET", "/identity/conditionalAccess/policies", api.ca_policies, "ca_policies"),
        ("GET", "/identity/conditionalAccess/policies/(?P<policy>[^/]+)", api.ca_policy, "ca_policies"),
        (
            "PATCH",
            "/identity/conditionalAccess/policies/(?P<policy>[^/]+)",
            api.patch_ca_policy,
            "ca_policies",
        ),
        (
            "GET",
            "/policies/identitySecurityDefaultsEnforcementPolicy",
            api.security_defaults,
            "security_defaults",
        ),
        (
            "PATCH",
            "/policies/identitySecurityDefaultsEnforcementPolicy",
            api.patch_security_defaults,
            "security_defaults",
        ),
        ("GET", "/oauth2PermissionGrants", api.grants, "oauth_grants"),
        ("DELETE", "/oauth2PermissionGrants/(?P<grant>[^/]+)", api.delete_grant, "oauth_grants"),
        ("GET", "/servicePrincipals", api.service_principals, "service_principals"),
        ("GET", "/servicePrincipals/(?P<sp>[^/]+)", api.service_principal, "service_principals"),
        ("PATCH", "/servicePrincipals/(?P<sp>[^/]+)", api.patch_service_principal, "service_principals"),
        ("GET", "/identityProtection/riskyUsers", api.risky_users, "risky_users"),
        ("GET", "/identityProtection/riskyUsers/(?P<risky>[0-9a-f-]{36})", api.risky_user, "risky_users"),
        ("POST", "/identityProtection/riskyUsers/confirmCompromised", api.confirm_compromised, "risky_users"),
        ("POST", "/identityProtection/riskyUsers/dismiss", api.dismiss_risk, "risky_users"),
        ("GET", "/roleManagement/directory/roleAssignments", api.role_assignments, "role_assignments"),
        (
            "DELETE",
            "/roleManagement/directory/roleAssignments/(?P<assignment>[^/]+)",
            api.delete_role_assignment,
            "role_assignments",
        ),
        ("GET", "/roleManagement/directory/roleDefinitions", api.role_definitions, "role_assignments"),
        ("GET", "/teams", api.teams, "teams_messages"),
        ("GET", "/teams/(?P<team>[^/]+)/channels", api.team_channels, "teams_messages"),
        (
            "GET",
            "/teams/(?P<team>[^/]+)/channels/(?P<channel>[^/]+)/messages",
            api.channel_messages,
            "teams_messages",
        ),
        (
            "GET",
            "/teams/(?P<team>[^/]+)/channels/(?P<channel>[^/]+)/messages/(?P<message>[^/]+)/replies",
            api.channel_replies,
            "teams_messages",
        ),
    ]
    for method, path, handler, resource in routes:
        add(method, G + path, handler, "m365", resource, "graph")


class GraphApi:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.world = sim.world
        self.tenant = sim.tenant
        self.state = sim.state
        self._last_signin: dict[int, tuple[int | None, int | None]] = {}

    # ---------------------------------------------------------------- helpers

    def context(self, request: Request, what: str) -> str:
        return f"https://graph.microsoft.com/{request.params['version']}/$metadata#{what}"

    def listing(
        self,
        request: Request,
        what: str,
        items: list[dict[str, Any]],
        next_cursor: dict[str, Any] | None = None,
        delta: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Response:
        body: dict[str, Any] = {"@odata.context": self.context(request, what)}
        if extra:
            body.update(extra)
        body["value"] = items
        if next_cursor is not None:
            body["@odata.nextLink"] = self.link(
                request, {"$skiptoken": encode_cursor(next_cursor)}, drop=("$deltatoken",)
            )
        if delta is not None:
            body["@odata.deltaLink"] = delta
        return Response.json(body)

    def link(self, request: Request, replace: dict[str, str], drop: tuple[str, ...] = ()) -> str:
        query = {k: v[0] for k, v in request.query.items() if k not in replace and k not in drop}
        query.update(replace)
        encoded = urllib.parse.urlencode(query, safe="$'(),:/", quote_via=urllib.parse.quote)
        return f"{request.base_url}{request.path}?{encoded}"

    def top(self, request: Request, default: int) -> int:
        raw = request.arg("$top")
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(400, "BadRequest", f"Invalid value '{raw}' for query parameter $top.") from None
        if not 1 <= value <= 999 + 1:
            raise ApiError(
                400,
                "BadRequest",
                f"Invalid page size specified: '{value}'. Must be between 1 and 1000 inclusive.",
            )
        return min(value, self.sim.paging.graph_max)

    def cursor(self, request: Request) -> dict[str, Any] | None:
        raw = request.arg("$skiptoken")
        if raw is None:
            return None
        data = decode_cursor(raw)
        if data is None:
            raise ApiError(
                400,
                "BadRequest",
                "Invalid $skiptoken: the token is malformed or expired. Restart the query without it.",
            )
        return data

    def filter(self, request: Request) -> Any:
        raw = request.arg("$filter")
        if not raw:
            return None
        try:
            return parse_filter(raw)
        except FilterError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from None

    def select(self, request: Request) -> list[str] | None:
        raw = request.arg("$select")
        return [s.strip() for s in raw.split(",") if s.strip()] if raw else None

    def project(self, item: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
        if not fields:
            return item
        keep = {f.lower() for f in fields} | {"id", "@odata.type"}
        return {k: v for k, v in item.items() if k.lower() in keep}

    def person(self, key: str) -> Person:
        person = self.tenant.person(key)
        if person is None or person.index in self.state.removed_users:
            raise ApiError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
            )
        return person

    def page_of(
        self,
        request: Request,
        items: list[dict[str, Any]],
        default: int,
        what: str,
        extra: dict[str, Any] | None = None,
    ) -> Response:
        """Offset paging for lists that are computed in full (tenant-sized, not time-sized)."""
        node = self.filter(request)
        if node is not None:
            items = [i for i in items if evaluate(node, i)]
        size = self.top(request, default)
        cursor = self.cursor(request)
        offset = int(cursor.get("o", 0)) if cursor else 0
        chunk = items[offset : offset + size]
        fields = self.select(request)
        chunk = [self.project(i, fields) for i in chunk]
        next_cursor = {"o": offset + size} if offset + size < len(items) else None
        if request.arg("$count") == "true":
            extra = {**(extra or {}), "@odata.count": len(items)}
        return self.listing(request, what, chunk, next_cursor, extra=extra)

    def app_audit(
        self,
        activity: str,
        category: str,
        service: str,
        operation: str,
        targets: list[dict[str, Any]],
        person: Person | None = None,
    ) -> None:
        """Write-time events look like the real ones: initiated by our app, logged in directoryAudits."""
        extra = audit_extra(activity, category, service, operation, APP_NAME, None, targets)
        extra["app_id"] = self.sim.credentials.client_id
        self.world.store.add_dynamic("m365:directory_audits", self.sim.now(), "audit", person, extra)

    def change(
        self,
        request: Request,
        action: str,
        target_: dict[str, Any],
        status: int = 204,
        person: Person | None = None,
    ) -> None:
        self.state.bump(person)
        self.state.record_change(
            "m365",
            action,
            target_,
            {"method": request.method, "path": request.path, "body": request.form or None},
            status,
        )

    # ---------------------------------------------------------------- event streams

    def events_handler(self, name: str) -> Callable[[Request], Response]:
        stream, time_field, what = EVENT_STREAMS[name]

        def handle(request: Request) -> Response:
            node = self.filter(request)
            cursor = self.cursor(request)
            start, end = time_bounds(node, time_field) if node is not None else (None, None)
            person = None
            upn = (
                equals_value(node, "userPrincipalName") or equals_value(node, "userId")
                if node is not None
                else None
            )
            if upn is not None and name != "directory_audits":
                person = self.tenant.person(upn)
                if person is None:
                    return self.listing(request, what, [])
            orderby = (request.arg("$orderby") or "").lower()
            descending = not orderby.endswith(" asc")
            window = Window(
                start if start is not None else 0, end if end is not None else 1 << 62, descending, person
            )
            default = (
                self.sim.paging.graph_signins_default if name == "signins" else self.sim.paging.graph_default
            )
            size = self.top(request, default)
            predicate = (lambda body: evaluate(node, body)) if node is not None else None
            page = event_page(self.sim, stream, window, size, cursor, predicate, request.path)
            items = page.items
            if name == "signins" and request.params["version"] == "v1.0":
                items = [{k: v for k, v in i.items() if k not in BETA_SIGNIN_FIELDS} for i in items]
            fields = self.select(request)
            if fields:
                items = [self.project(i, fields) for i in items]
            return self.listing(request, what, items, page.next)

        return handle

    # ---------------------------------------------------------------- users

    def user_object(self, person: Person, fields: list[str] | None = None) -> dict[str, Any]:
        """The user as Graph returns it: default properties, or exactly the `$select`ed ones."""
        body = self.full_user(
            person, bool(fields) and any(f.lower() == "signinactivity" for f in fields or [])
        )
        if fields:
            return self.project(body, fields)
        return {k: body[k] for k in DEFAULT_USER_FIELDS}

    def full_user(self, person: Person, with_activity: bool = False) -> dict[str, Any]:
        state = self.state.user(person.index)
        body: dict[str, Any] = {
            "businessPhones": [],
            "displayName": person.name,
            "givenName": person.given,
            "jobTitle": person.title,
            "mail": person.email,
            "mobilePhone": None,
            "officeLocation": person.office.name,
            "preferredLanguage": "en-US",
            "surname": person.family,
            "userPrincipalName": person.email,
            "id": person.entra_id,
            "accountEnabled": state.entra_enabled,
            "userType": "Member",
            "department": person.department,
            "usageLocation": person.office.country,
            "country": person.office.country,
            "city": person.office.name,
            "createdDateTime": graph_time(person.created - person.created % SECOND),
            "onPremisesSyncEnabled": None,
            "signInSessionsValidFromDateTime": graph_time(
                state.sessions_revoked_at or person.created - person.created % SECOND
            ),
        }
        if with_activity:
            body["signInActivity"] = self.sign_in_activity(person)
        return body

    def sign_in_activity(self, person: Person) -> dict[str, Any]:
        last, last_ok = self._last_signin.get(person.index) or self._find_last_signin(person)
        if last is None and person.dormant:
            last = last_ok = (
                self.tenant.options.start - (60 + self.tenant.ids.number("dormant", person.index) % 200) * DAY
            )
        return {
            "lastSignInDateTime": graph_time(last) if last else None,
            "lastSignInRequestId": self.tenant.ids.guid("last-signin", person.index) if last else None,
            "lastNonInteractiveSignInDateTime": graph_time(last + 600 * SECOND) if last else None,
            "lastNonInteractiveSignInRequestId": self.tenant.ids.guid("last-ni-signin", person.index)
            if last
            else None,
            "lastSuccessfulSignInDateTime": graph_time(last_ok) if last_ok else None,
            "lastSuccessfulSignInRequestId": self.tenant.ids.guid("last-ok-signin", person.index)
            if last_ok
            else None,
        }

    def _find_last_signin(self, person: Person) -> tuple[int | None, int | None]:
        options = self.tenant.options
        end = options.end
        last = last_ok = None
        while end > options.start and last_ok is None:
            records = self.world.store.person_records(
                "m365:signins", person, max(options.start, end - 2 * DAY), end
            )
            for record in reversed(records):
                last = last or record[0]
                if record[2] == "ok":
                    last_ok = record[0]
                    break
            end -= 2 * DAY
        self._last_signin[person.index] = (last, last_ok)
        return last, last_ok

    def visible_people(self) -> list[Person]:
        removed = self.state.removed_users
        return [p for p in self.tenant.people if p.index not in removed and p.created <= self.sim.now()]

    def users(self, request: Request) -> Response:
        fields = self.select(request)
        node = self.filter(request)
        activity = any(f.lower() == "signinactivity" for f in fields or []) or "signInActivity" in (
            request.arg("$filter") or ""
        )
        everything = [self.full_user(p, activity) for p in self.visible_people()]
        if node is not None:
            everything = [u for u in everything if evaluate(node, u)]
        trimmed = [
            self.project(u, fields) if fields else {k: u[k] for k in DEFAULT_USER_FIELDS} for u in everything
        ]
        size = self.top(request, self.sim.paging.graph_default)
        cursor = self.cursor(request)
        offset = int(cursor.get("o", 0)) if cursor else 0
        next_cursor = {"o": offset + size} if offset + size < len(trimmed) else None
        return self.listing(request, "users", trimmed[offset : offset + size], next_cursor)

    def user(self, request: Request) -> Response:
        person = self.person(request.params["user"])
        body = self.user_object(person, self.select(request))
        body["@odata.context"] = self.context(request, "users/$entity")
        return Response.json(body)

    def users_delta(self, request: Request) -> Response:
        token = request.arg("$deltatoken")
        fields = self.select(request)
        if token is not None:
            data = decode_cursor(token)
            if data is None or "v" not in data:
                raise ApiError(400, "BadRequest", "Invalid $deltatoken; restart the delta query without it.")
            since = int(data["v"])
            changed = [p for p in self.tenant.people if self.state.user(p.index).version > since]
            items = [
                {"id": p.entra_id, "@removed": {"reason": "deleted"}}
                if p.index in self.state.removed_users
                else self.user_object(p, fields)
                for p in changed
            ]
            return self.listing(request, "users", items, delta=self._delta_link(request))
        cursor = self.cursor(request)
        offset = int(cursor.get("o", 0)) if cursor else 0
        version = int(cursor.get("v", self.state.version)) if cursor else self.state.version
        people = self.visible_people()
        size = self.top(request, self.sim.paging.graph_default)
        chunk = [self.user_object(p, fields) for p in people[offset : offset + size]]
        if offset + size < len(people):
            return self.listing(request, "users", chunk, {"o": offset + size, "v": version})
        return self.listing(request, "users", chunk, delta=self._delta_link(request, version))

    def _delta_link(self, request: Request, version: int | None = None) -> str:
        token = encode_cursor({"v": self.state.version if version is None else version})
        return self.link(request, {"$deltatoken": token}, drop=("$skiptoken", "$filter", "$top"))

    def patch_user(self, request: Request) -> Response:
        person = self.person(request.params["user"])
        body = request.json()
        state = self.state.user(person.index)
        if "accountEnabled" in body:
            before = state.entra_enabled
            state.entra_enabled = bool(body["accountEnabled"])
            if before != state.entra_enabled:
                self.app_audit(
                    "Disable account" if not state.entra_enabled else "Enable account",
                    "UserManagement",
                    "Core Directory",
                    "Update",
                    [
                        target(
                            "User",
                            person.entra_id,
                            None,
                            person.email,
                            [("AccountEnabled", [before], [state.entra_enabled])],
                        )
                    ],
                    person,
                )
        self.change(
            request,
            "disable_user" if body.get("accountEnabled") is False else "update_user",
            {"user": person.email, "id": person.entra_id, "changes": body},
            person=person,
        )
        return Response.empty(204)

    def revoke_sessions(self, request: Request) -> Response:
        person = self.person(request.params["user"])
        now = self.sim.now()
        self.state.user(person.index).sessions_revoked_at = now
        self.app_audit(
            "Update user",
            "UserManagement",
            "Core Directory",
            "Update",
            [
                target(
                    "User",
                    person.entra_id,
                    None,
                    person.email,
                    [("StsRefreshTokensValidFrom", None, [graph_time(now)])],
                )
            ],
            person,
        )
        self.change(request, "revoke_sessions", {"user": person.email, "id": person.entra_id}, 200, person)
        return Response.json({"@odata.context": self.context(request, "Edm.Boolean"), "value": True})

    # ---------------------------------------------------------------- authentication methods

    def method_object(self, method: dict[str, Any]) -> dict[str, Any]:
        kind, odata_type = METHOD_TYPES.get(
            method["method"], ("softwareOathMethods", "#microsoft.graph.softwareOathAuthenticationMethod")
        )
        body: dict[str, Any] = {
            "@odata.type": odata_type,
            "id": method["id"],
            "createdDateTime": graph_time(method["created"]),
        }
        if method["method"] == "mobilePhone":
            body.update(
                {
                    "phoneNumber": "+1 2065550" + str(int(method["id"][:4], 16) % 1000).zfill(3),
                    "phoneType": "mobile",
                    "smsSignInState": "notEnabled",
                }
            )
        elif method["method"] == "microsoftAuthenticatorPush":
            body.update(
                {"displayName": "iPhone", "deviceTag": "SoftwareTokenActivated", "phoneAppVersion": "6.8.7"}
            )
        return body

    def auth_methods(self, request: Request) -> Response:
        person = self.person(request.params["user"])
        password = {
            "@odata.type": "#microsoft.graph.passwordAuthenticationMethod",
            "id": "28c10230-6103-485e-b985-444c60001490",
            "createdDateTime": graph_time(person.created - person.created % SECOND),
            "password": None,
        }
        with self.state.lock:
            methods = [self.method_object(m) for m in self.state.user(person.index).mfa_methods]
        return self.listing(
            request, f"users('{person.entra_id}')/authentication/methods", [password, *methods]
        )

    def delete_auth_method(self, request: Request) -> Response:
        person = self.person(request.params["user"])
        method_id = request.params["method"]
        with self.state.lock:
            methods = self.state.user(person.index).mfa_methods
            found = next((m for m in methods if m["id"] == method_id), None)
            if found is None:
                raise ApiError(
                    404, "itemNotFound", f"Authentication method '{method_id}' not found for the user."
                )
            methods.remove(found)
        self.app_audit(
            "Admin deleted security info",
            "UserManagement",
            "Authentication Methods",
            "Delete",
            [target("User", person.entra_id, None, person.email)],
            person,
        )
        self.change(
            request,
            "delete_auth_method",
            {"user": person.email, "method_id": method_id, "method": found["method"]},
            person=person,
        )
        return Response.empty(204)

    # ---------------------------------------------------------------- inbox rules

    def rule_object(self, rule: Any) -> dict[str, Any]:
        return {
            "id": rule.id,
            "displayName": rule.name,
            "sequence": rule.sequence,
            "isEnabled": rule.enabled,
            "hasError": False,
            "isReadOnly": False,
            "conditions": rule.conditions,
            "actions": rule.actions,
            "exceptions": {},
        }

    def inbox_rules(self, request: Request) -> Response:
        person = self.person(request.params["user"])
        rules = [self.rule_object(r) for r in self.state.inbox_rules(person)]
        return self.listing(request, f"users('{person.entra_id}')/mailFolders('inbox')/messageRules", rules)

    def delete_inbox_rule(self, request: Request) -> Response:
        person = self.person(request.params["user"])
        rule_id = request.params["rule"]
        if not any(r.id == rule_id for r in self.state.inbox_rules(person)):
            raise ApiError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        with self.state.lock:
            self.state.inbox_rules_removed.add(rule_id)
        self.world.store.add_dynamic(
            "m365:unified_audit",
            self.sim.now(),
            "Remove-InboxRule",
            person,
            {
                "parameters": [{"Name": "Identity", "Value": rule_id}],
                "object_id": f"{person.email}\\{rule_id}",
                "app_id": self.sim.credentials.client_id,
            },
        )
        self.change(request, "remove_inbox_rule", {"user": person.email, "rule_id": rule_id}, person=person)
        return Response.empty(204)

    # ---------------------------------------------------------------- conversations (mail, Teams)

    def _time_range(self, request: Request, field: str) -> tuple[int, int, Any]:
        node = self.filter(request)
        start, end = time_bounds(node, field) if node is not None else (None, None)
        return start if start is not None else 0, end if end is not None else 1 << 62, node

    def message_object(self, message: Any) -> dict[str, Any]:
        sender = message.sender_email
        name = message.sender.name if isinstance(message.sender, Person) else sender
        return {
            "id": message.id,
            "createdDateTime": graph_time(message.ts),
            "lastModifiedDateTime": graph_time(message.ts),
            "receivedDateTime": graph_time(message.ts),
            "sentDateTime": graph_time(message.ts - 2 * SECOND),
            "hasAttachments": False,
            "internetMessageId": f"<{self.tenant.ids.hex('imid', message.id, length=24)}@{sender.split('@')[-1]}>",
            "subject": message.subject,
            "bodyPreview": message.text[:255],
            "importance": "normal",
            "conversationId": message.thread,
            "isRead": True,
            "isDraft": False,
            "body": {"contentType": "text", "content": message.text},
            "from": {"emailAddress": {"name": name, "address": sender}},
            "sender": {"emailAddress": {"name": name, "address": sender}},
            "toRecipients": [
                {
                    "emailAddress": {
                        "name": r.name if isinstance(r, Person) else r,
                        "address": r.email if isinstance(r, Person) else r,
                    }
                }
                for r in message.recipients
            ],
        }

    def messages(self, request: Request) -> Response:
        person = self.person(request.params["user"])
        start, end, node = self._time_range(request, "receivedDateTime")
        items = [
            self.message_object(m) for m in self.world.conversations.mailbox("m365:mail", person, start, end)
        ]
        items.reverse()
        if node is not None:
            items = [i for i in items if evaluate(node, i)]
        return self._offset_page(request, items, f"users('{person.entra_id}')/messages", 10)

    def _offset_page(
        self, request: Request, items: list[dict[str, Any]], what: str, default: int
    ) -> Response:
        size = self.top(request, default)
        cursor = self.cursor(request)
        offset = int(cursor.get("o", 0)) if cursor else 0
        fields = self.select(request)
        chunk = [self.project(i, fields) for i in items[offset : offset + size]]
        return self.listing(
            request, what, chunk, {"o": offset + size} if offset + size < len(items) else None
        )

    def chat_object(self, message: Any, chat_id: str | None = None, channel: Any = None) -> dict[str, Any]:
        sender = message.sender
        body: dict[str, Any] = {
            "id": message.id,
            "replyToId": message.thread,
            "etag": str(message.ts // 1000),
            "messageType": "message",
            "createdDateTime": graph_time(message.ts),
            "lastModifiedDateTime": graph_time(message.ts),
            "lastEditedDateTime": None,
            "deletedDateTime": None,
            "subject": None,
            "summary": None,
            "chatId": chat_id,
            "importance": "normal",
            "locale": "en-us",
            "webUrl": None,
            "channelIdentity": {"teamId": channel.team_id, "channelId": channel.id} if channel else None,
            "from": {
                "application": None,
                "device": None,
                "user": {
                    "@odata.type": "#microsoft.graph.teamworkUserIdentity",
                    "id": sender.entra_id,
                    "displayName": sender.name,
                    "userIdentityType": "aadUser",
                    "tenantId": self.tenant.tenant_id,
                },
            }
            if isinstance(sender, Person)
            else None,
            "body": {"contentType": "text", "content": message.text},
            "attachments": [],
            "mentions": [],
            "reactions": [],
        }
        return body

    def chat_messages(self, request: Request) -> Response:
        person = self.person(request.params["user"])
        start, end, node = self._time_range(request, "lastModifiedDateTime")
        conversations = self.world.conversations
        messages = [
            m
            for m in conversations.story + conversations.added
            if m.stream == "m365:teams_messages"
            and m.container.endswith("@unq.gbl.spaces")
            and person in m.recipients
            and start <= m.ts < end
        ]
        items = [self.chat_object(m, chat_id=m.container) for m in sorted(messages, key=lambda m: m.ts)]
        if node is not None:
            items = [i for i in items if evaluate(node, i)]
        return self._offset_page(request, items, "chatMessages", 50)

    def teams(self, request: Request) -> Response:
        channels = self.world.conversations.teams_channels
        items = [{"id": c.team_id, "displayName": c.team_name, "description": None} for c in channels]
        return self.listing(request, "teams", items)

    def team_channels(self, request: Request) -> Response:
        channels = [c for c in self.world.conversations.teams_channels if c.team_id == request.params["team"]]
        if not channels:
            raise ApiError(404, "NotFound", f"No team found with Group Id {request.params['team']}")
        return self.listing(
            request,
            "channels",
            [{"id": c.id, "displayName": c.name, "membershipType": "standard"} for c in channels],
        )

    def _channel(self, request: Request) -> Any:
        channel = next(
            (
                c
                for c in self.world.conversations.teams_channels
                if c.team_id == request.params["team"] and c.id == request.params["channel"]
            ),
            None,
        )
        if channel is None:
            raise ApiError(404, "NotFound", "Channel not found")
        return channel

    def channel_messages(self, request: Request) -> Response:
        channel = self._channel(request)
        start, end, node = self._time_range(request, "lastModifiedDateTime")
        messages = self.world.conversations.channel_messages("m365:teams_messages", channel.id, start, end)
        items = [self.chat_object(m, channel=channel) for m in reversed(messages) if m.thread is None]
        if node is not None:
            items = [i for i in items if evaluate(node, i)]
        return self._offset_page(request, items, "chatMessages", 20)

    def channel_replies(self, request: Request) -> Response:
        channel = self._channel(request)
        messages = self.world.conversations.channel_messages("m365:teams_messages", channel.id, 0, 1 << 62)
        items = [
            self.chat_object(m, channel=channel) for m in messages if m.thread == request.params["message"]
        ]
        return self._offset_page(request, items, "chatMessages", 20)

    # ---------------------------------------------------------------- drives

    def drive_object(self, person: Person) -> dict[str, Any]:
        return {
            "id": self.tenant.drive_id(person.index),
            "driveType": "business",
            "name": "OneDrive",
            "owner": {"user": {"id": person.entra_id, "displayName": person.name, "email": person.email}},
            "webUrl": f"https://{self.tenant.domain.split('.')[0]}-my.sharepoint.com/personal/{person.email.replace('@', '_').replace('.', '_')}/Documents",
        }

    def item_object(self, drive_file: Any) -> dict[str, Any]:
        owner = self.tenant.people[drive_file.owner]
        perms = self.state.permissions("m365", drive_file.id)
        scope = (
            "anonymous"
            if any(p.type == "anyone" for p in perms)
            else "organization"
            if any(p.type == "domain" for p in perms)
            else ("users" if len(perms) > 1 else None)
        )
        body = {
            "id": drive_file.id,
            "name": drive_file.name,
            "size": drive_file.size,
            "createdDateTime": graph_time(drive_file.created),
            "lastModifiedDateTime": graph_time(drive_file.created + DAY),
            "webUrl": f"{self.drive_object(owner)['webUrl']}/{urllib.parse.quote(drive_file.name)}",
            "file": {"mimeType": _MIME.get(drive_file.extension, "application/octet-stream")},
            "parentReference": {
                "driveId": self.tenant.drive_id(owner.index),
                "driveType": "business",
                "path": "/drive/root:",
            },
            "createdBy": {"user": {"id": owner.entra_id, "displayName": owner.name, "email": owner.email}},
        }
        if scope:
            body["shared"] = {
                "scope": scope,
                "owner": {"user": {"id": owner.entra_id, "displayName": owner.name}},
            }
        return body

    def permission_object(self, permission: Any, drive_file: Any) -> dict[str, Any]:
        roles = {"owner": ["owner"], "writer": ["write"], "reader": ["read"]}[permission.role]
        if permission.type == "anyone":
            return {
                "id": permission.id,
                "roles": roles,
                "shareId": f"u!{permission.id}",
                "hasPassword": False,
                "link": {
                    "type": "view",
                    "scope": "anonymous",
                    "preventsDownload": False,
                    "webUrl": f"https://{self.tenant.domain.split('.')[0]}-my.sharepoint.com/:w:/g/personal/{permission.id}",
                },
            }
        if permission.type == "domain":
            return {
                "id": permission.id,
                "roles": roles,
                "shareId": f"s!{permission.id}",
                "link": {
                    "type": "view",
                    "scope": "organization",
                    "webUrl": f"https://{self.tenant.domain.split('.')[0]}-my.sharepoint.com/:w:/g/org/{permission.id}",
                },
            }
        person = self.tenant.person(permission.email)
        if person is not None:
            identity = {"id": person.entra_id, "displayName": person.name, "email": person.email}
            return {
                "id": permission.id,
                "roles": roles,
                "grantedTo": {"user": identity},
                "grantedToV2": {"user": identity},
            }
        return {
            "id": permission.id,
            "roles": roles,
            "invitation": {"email": permission.email, "signInRequired": True},
            "grantedToIdentitiesV2": [{"user": {"displayName": permission.email, "email": permission.email}}],
            "grantedToIdentities": [{"user": {"displayName": permission.email, "email": permission.email}}],
        }

    def _drive_owner(self, drive_id: str) -> Person:
        owner = self.tenant.owner_of_drive(drive_id)
        if owner is None:
            raise ApiError(404, "itemNotFound", f"The drive '{drive_id}' could not be found.")
        return owner

    def _item(self, drive_id: str | None, item_id: str, owner: Person | None = None) -> Any:
        drive_file = self.tenant.file("m365", item_id)
        if owner is None and drive_id is not None:
            owner = self._drive_owner(drive_id)
        if drive_file is None or (owner is not None and drive_file.owner != owner.index):
            raise ApiError(404, "itemNotFound", "The resource could not be found.")
        return drive_file

    def user_drive(self, request: Request) -> Response:
        return Response.json(self.drive_object(self.person(request.params["user"])))

    def user_drive_children(self, request: Request) -> Response:
        person = self.person(request.params["user"])
        items = [self.item_object(f) for f in self.tenant.files_of(person.index, "m365")]
        return self._offset_page(request, items, "drives/items", 200)

    def drive_children(self, request: Request) -> Response:
        owner = self._drive_owner(request.params["drive"])
        items = [self.item_object(f) for f in self.tenant.files_of(owner.index, "m365")]
        return self._offset_page(request, items, "drives/items", 200)

    def drive_item(self, request: Request) -> Response:
        return Response.json(self.item_object(self._item(request.params["drive"], request.params["item"])))

    def item_permissions(self, request: Request) -> Response:
        drive_file = self._item(request.params["drive"], request.params["item"])
        perms = [self.permission_object(p, drive_file) for p in self.state.permissions("m365", drive_file.id)]
        return self.listing(request, "permissions", perms)

    def user_item_permissions(self, request: Request) -> Response:
        person = self.person(request.params["user"])
        drive_file = self._item(None, request.params["item"], person)
        perms = [self.permission_object(p, drive_file) for p in self.state.permissions("m365", drive_file.id)]
        return self.listing(request, "permissions", perms)

    def delete_permission(self, request: Request) -> Response:
        drive_file = self._item(request.params["drive"], request.params["item"])
        permission_id = request.params["permission"]
        perms = self.state.permissions("m365", drive_file.id)
        found = next((p for p in perms if p.id == permission_id), None)
        if found is None:
            raise ApiError(404, "itemNotFound", "The permission could not be found.")
        if found.role == "owner":
            raise ApiError(403, "accessDenied", "The owner's permission cannot be removed.")
        with self.state.lock:
            self.state.removed_permissions.add((drive_file.id, permission_id))
        owner = self.tenant.people[drive_file.owner]
        self.world.store.add_dynamic(
            "m365:unified_audit",
            self.sim.now(),
            "SharingRevoked",
            owner,
            {
                "ObjectId": drive_file.name,
                "Workload": "OneDrive",
                "RecordType": 14,
                "SourceFileName": drive_file.name,
                "TargetUserOrGroupName": found.email or found.type,
                "AppId": self.sim.credentials.client_id,
            },
        )
        self.change(
            request,
            "remove_sharing_link",
            {
                "drive_id": request.params["drive"],
                "file_id": drive_file.id,
                "permission_id": permission_id,
                "type": found.type,
            },
            person=owner,
        )
        return Response.empty(204)

    # ---------------------------------------------------------------- groups, organization

    def groups(self, request: Request) -> Response:
        items = [
            {
                "id": g.id,
                "displayName": g.name,
                "mail": g.email,
                "mailEnabled": not g.security,
                "securityEnabled": g.security,
                "groupTypes": [] if g.security else ["Unified"],
                "createdDateTime": graph_time(self.tenant.options.start - 400 * DAY),
            }
            for g in self.tenant.groups
        ]
        return self.page_of(request, items, 100, "groups")

    def group_members(self, request: Request) -> Response:
        group = next((g for g in self.tenant.groups if g.id == request.params["group"]), None)
        if group is None:
            raise ApiError(
                404, "Request_ResourceNotFound", f"Resource '{request.params['group']}' does not exist."
            )
        items = [
            {"@odata.type": "#microsoft.graph.user", **self.user_object(self.tenant.people[i])}
            for i in group.members
        ]
        return self.page_of(request, items, 100, "directoryObjects")

    def organization(self, request: Request) -> Response:
        tenant = self.tenant
        return self.listing(
            request,
            "organization",
            [
                {
                    "id": tenant.tenant_id,
                    "displayName": tenant.scenario.tenant.name,
                    "countryLetterCode": tenant.geo.city(tenant.scenario.tenant.hq).country,
                    "verifiedDomains": [
                        {
                            "name": tenant.domain,
                            "isDefault": True,
                            "isInitial": False,
                            "type": "Managed",
                            "capabilities": "Email, OfficeCommunicationsOnline",
                        }
                    ],
                    "createdDateTime": graph_time(tenant.options.start - 900 * DAY),
                }
            ],
        )

    # ---------------------------------------------------------------- registration details

    def registration_details(self, request: Request) -> Response:
        items = []
        for person in self.visible_people():
            with self.state.lock:
                methods = [m["method"] for m in self.state.user(person.index).mfa_methods]
            admin = any(
                r in PRIVILEGED_ENTRA_ROLES or r.endswith("Administrator") for r in self._roles_of(person)
            )
            items.append(
                {
                    "id": person.entra_id,
                    "userPrincipalName": person.email,
                    "userDisplayName": person.name,
                    "userType": "member",
                    "isAdmin": admin,
                    "isSsprRegistered": bool(methods),
                    "isSsprEnabled": True,
                    "isSsprCapable": bool(methods),
                    "isMfaRegistered": bool(methods),
                    "isMfaCapable": bool(methods),
                    "isPasswordlessCapable": "windowsHelloForBusiness" in methods,
                    "methodsRegistered": methods,
                    "isSystemPreferredAuthenticationMethodEnabled": True,
                    "systemPreferredAuthenticationMethods": ["push"]
                    if "microsoftAuthenticatorPush" in methods
                    else ([] if not methods else ["sms"]),
                    "userPreferredMethodForSecondaryAuthentication": "push"
                    if "microsoftAuthenticatorPush" in methods
                    else ("oath" if methods else "none"),
                    "lastUpdatedDateTime": graph_time(self.tenant.options.end - DAY),
                }
            )
        return self.page_of(request, items, 1000, "reports/authenticationMethods/userRegistrationDetails")

    def _roles_of(self, person: Person) -> list[str]:
        by_id = {v: k for k, v in ENTRA_ROLES.items()}
        with self.state.lock:
            return [
                by_id.get(a["roleDefinitionId"], "")
                for a in self.state.role_assignments.values()
                if a["principalId"] == person.entra_id
            ]

    # ---------------------------------------------------------------- conditional access, security defaults

    def policy_object(self, policy: dict[str, Any]) -> dict[str, Any]:
        body = dict(policy)
        body["createdDateTime"] = graph_time(policy["createdDateTime"])
        body["modifiedDateTime"] = graph_time(policy["modifiedDateTime"])
        return body

    def ca_policies(self, request: Request) -> Response:
        with self.state.lock:
            items = [self.policy_object(p) for p in self.state.ca_policies.values()]
        return self.page_of(request, items, 100, "identity/conditionalAccess/policies")

    def _policy(self, request: Request) -> dict[str, Any]:
        policy = self.state.ca_policies.get(request.params["policy"])
        if policy is None:
            raise ApiError(404, "ResourceNotFound", f"Policy '{request.params['policy']}' was not found.")
        return policy

    def ca_policy(self, request: Request) -> Response:
        with self.state.lock:
            return Response.json(self.policy_object(self._policy(request)))

    def patch_ca_policy(self, request: Request) -> Response:
        body = request.json()
        with self.state.lock:
            policy = self._policy(request)
            old = {k: policy.get(k) for k in body}
            for key, value in body.items():
                if isinstance(value, dict) and isinstance(policy.get(key), dict):
                    policy[key] = _merge(policy[key], value)
                else:
                    policy[key] = value
            policy["modifiedDateTime"] = self.sim.now()
        self.app_audit(
            "Update conditional access policy",
            "Policy",
            "Conditional Access",
            "Update",
            [
                target(
                    "Policy",
                    policy["id"],
                    policy["displayName"],
                    props=[("ConditionalAccessPolicy", old, body)],
                )
            ],
        )
        self.change(
            request,
            "patch_ca_policy",
            {"policy_id": policy["id"], "name": policy["displayName"], "changes": body},
        )
        return Response.empty(204)

    def security_defaults(self, request: Request) -> Response:
        with self.state.lock:
            body = dict(self.state.security_defaults)
        return Response.json(
            {
                "@odata.context": self.context(
                    request, "policies/identitySecurityDefaultsEnforcementPolicy/$entity"
                ),
                **body,
            }
        )

    def patch_security_defaults(self, request: Request) -> Response:
        body = request.json()
        with self.state.lock:
            old = self.state.security_defaults.get("isEnabled")
            if "isEnabled" in body:
                self.state.security_defaults["isEnabled"] = bool(body["isEnabled"])
        self.app_audit(
            "Update policy",
            "Policy",
            "Core Directory",
            "Update",
            [
                target(
                    "Policy",
                    self.state.security_defaults["id"],
                    "Security Defaults",
                    props=[("IsEnabled", old, body.get("isEnabled"))],
                )
            ],
        )
        self.change(request, "patch_security_defaults", {"changes": body})
        return Response.empty(204)

    # ---------------------------------------------------------------- apps and grants

    def grants(self, request: Request) -> Response:
        with self.state.lock:
            items = [
                {
                    "id": g.id,
                    "clientId": g.client_id,
                    "consentType": g.consent_type,
                    "principalId": g.principal_id,
                    "resourceId": g.resource_id,
                    "scope": g.scope,
                }
                for g in self.state.grants.values()
            ]
        return self.page_of(request, items, 100, "oauth2PermissionGrants")

    def delete_grant(self, request: Request) -> Response:
        grant_id = request.params["grant"]
        with self.state.lock:
            grant = self.state.grants.pop(grant_id, None)
        if grant is None:
            raise ApiError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{grant_id}' does not exist or one of its queried reference-property objects are not present.",
            )
        self.app_audit(
            "Remove delegated permission grant",
            "ApplicationManagement",
            "Core Directory",
            "Unassign",
            [
                target(
                    "ServicePrincipal",
                    grant.client_id,
                    None,
                    props=[("DelegatedPermissionGrant.Scope", grant.scope, None)],
                )
            ],
        )
        person = next((p for p in self.tenant.people if p.entra_id == grant.principal_id), None)
        self.change(
            request,
            "revoke_oauth_grant",
            {
                "grant_id": grant_id,
                "client_id": grant.client_id,
                "user": person.email if person else None,
                "scope": grant.scope,
            },
            person=person,
        )
        return Response.empty(204)

    def sp_object(self, sp: Any) -> dict[str, Any]:
        return {
            "id": sp.id,
            "appId": sp.app_id,
            "displayName": sp.display_name,
            "appDisplayName": sp.display_name,
            "appOwnerOrganizationId": sp.owner_tenant,
            "servicePrincipalType": "Application",
            "accountEnabled": sp.enabled,
            "publisherName": sp.publisher or None,
            "verifiedPublisher": {
                "displayName": sp.publisher,
                "verifiedPublisherId": "1" + sp.id[:7],
                "addedDateTime": graph_time(sp.created),
            }
            if sp.verified
            else {"displayName": None, "verifiedPublisherId": None, "addedDateTime": None},
            "replyUrls": list(sp.reply_urls),
            "tags": ["WindowsAzureActiveDirectoryIntegratedApp"],
            "createdDateTime": graph_time(sp.created),
        }

    def service_principals(self, request: Request) -> Response:
        with self.state.lock:
            items = [self.sp_object(sp) for sp in self.state.service_principals.values()]
        return self.page_of(request, items, 100, "servicePrincipals")

    def _sp(self, request: Request) -> Any:
        sp = self.state.service_principals.get(request.params["sp"]) or next(
            (s for s in self.state.service_principals.values() if s.app_id == request.params["sp"]), None
        )
        if sp is None:
            raise ApiError(
                404, "Request_ResourceNotFound", f"Resource '{request.params['sp']}' does not exist."
            )
        return sp

    def service_principal(self, request: Request) -> Response:
        return Response.json(self.sp_object(self._sp(request)))

    def patch_service_principal(self, request: Request) -> Response:
        sp = self._sp(request)
        body = request.json()
        with self.state.lock:
            if "accountEnabled" in body:
                sp.enabled = bool(body["accountEnabled"])
        self.app_audit(
            "Update service principal",
            "ApplicationManagement",
            "Core Directory",
            "Update",
            [
                target(
                    "ServicePrincipal", sp.id, sp.display_name, props=[("AccountEnabled", None, [sp.enabled])]
                )
            ],
        )
        self.change(
            request,
            "disable_service_principal"
            if body.get("accountEnabled") is False
            else "update_service_principal",
            {"service_principal_id": sp.id, "name": sp.display_name, "changes": body},
        )
        return Response.empty(204)

    # ---------------------------------------------------------------- risky users

    def risky_object(self, person: Person) -> dict[str, Any]:
        state = self.state.user(person.index)
        return {
            "id": person.entra_id,
            "isDeleted": False,
            "isProcessing": False,
            "riskLastUpdatedDateTime": graph_time(state.risk_updated or self.tenant.options.start),
            "riskLevel": state.risk_level,
            "riskState": state.risk_state,
            "riskDetail": state.risk_detail,
            "userDisplayName": person.name,
            "userPrincipalName": person.email,
        }

    def risky_users(self, request: Request) -> Response:
        with self.state.lock:
            people = [
                self.tenant.people[i] for i, s in sorted(self.state.users.items()) if s.risk_state != "none"
            ]
        return self.page_of(
            request, [self.risky_object(p) for p in people], 20, "identityProtection/riskyUsers"
        )

    def risky_user(self, request: Request) -> Response:
        person = self.person(request.params["risky"])
        if self.state.user(person.index).risk_state == "none":
            raise ApiError(404, "NotFound", "The risky user was not found.")
        return Response.json(self.risky_object(person))

    def _risk_update(
        self, request: Request, level: str, risk_state: str, detail: str, action: str
    ) -> Response:
        user_ids = request.json().get("userIds")
        if not isinstance(user_ids, list) or not user_ids:
            raise ApiError(400, "BadRequest", "userIds must be a non-empty list of user ids.")
        people = [self.person(str(u)) for u in user_ids]
        now = self.sim.now()
        with self.state.lock:
            for person in people:
                state = self.state.user(person.index)
                state.risk_level, state.risk_state, state.risk_detail, state.risk_updated = (
                    level,
                    risk_state,
                    detail,
                    now,
                )
        for person in people:
            self.change(request, action, {"user": person.email, "id": person.entra_id}, person=person)
        return Response.empty(204)

    def confirm_compromised(self, request: Request) -> Response:
        return self._risk_update(
            request, "high", "confirmedCompromised", "adminConfirmedUserCompromised", "confirm_compromised"
        )

    def dismiss_risk(self, request: Request) -> Response:
        return self._risk_update(request, "none", "dismissed", "adminDismissedAllRiskForUser", "dismiss_risk")

    # ---------------------------------------------------------------- role assignments

    def role_assignments(self, request: Request) -> Response:
        with self.state.lock:
            items = [dict(a) for a in self.state.role_assignments.values()]
        if "principal" in (request.arg("$expand") or ""):
            for item in items:
                person = self.tenant.person(item["principalId"])
                item["principal"] = {
                    "@odata.type": "#microsoft.graph.user",
                    "id": item["principalId"],
                    "userPrincipalName": person.email if person else None,
                    "displayName": person.name if person else None,
                }
        return self.page_of(request, items, 100, "roleManagement/directory/roleAssignments")

    def delete_role_assignment(self, request: Request) -> Response:
        assignment_id = request.params["assignment"]
        with self.state.lock:
            assignment = self.state.role_assignments.pop(assignment_id, None)
        if assignment is None:
            raise ApiError(404, "Request_ResourceNotFound", f"Resource '{assignment_id}' does not exist.")
        person = self.tenant.person(assignment["principalId"])
        role = {v: k for k, v in ENTRA_ROLES.items()}.get(
            assignment["roleDefinitionId"], assignment["roleDefinitionId"]
        )
        self.app_audit(
            "Remove member from role",
            "RoleManagement",
            "Core Directory",
            "Unassign",
            [
                target(
                    "User",
                    assignment["principalId"],
                    None,
                    person.email if person else None,
                    [("Role.DisplayName", role, None)],
                )
            ],
            person,
        )
        self.change(
            request,
            "remove_role_assignment",
            {"role_assignment_id": assignment_id, "role": role, "user": person.email if person else None},
            person=person,
        )
        return Response.empty(204)

    def role_definitions(self, request: Request) -> Response:
        items = [
            {
                "id": template,
                "templateId": template,
                "displayName": name,
                "isBuiltIn": True,
                "isEnabled": True,
                "isPrivileged": name in PRIVILEGED_ENTRA_ROLES,
            }
            for name, template in ENTRA_ROLES.items()
        ]
        return self.page_of(request, items, 100, "roleManagement/directory/roleDefinitions")


_MIME = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "pdf": "application/pdf",
}


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out
