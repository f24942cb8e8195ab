"""Graph directory: users (+ delta, sessions, account state), authentication methods, groups, roles."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulator.catalog import ENTRA_ROLES, PRIVILEGED_ENTRA_ROLES
from simulator.http import Request, Response
from simulator.odata import evaluate
from simulator.render.m365 import target
from simulator.server import ApiError
from simulator.tenant import Person
from simulator.timestamps import DAY, SECOND, graph_time

if TYPE_CHECKING:
    pass
from simulator.vendors.graph import schema
from simulator.vendors.graph.base import DEFAULT_USER_FIELDS, METHOD_TYPES, GraphBase


class Directory(GraphBase):
    def users(self, request: Request) -> Response:
        fields = self.select(request)
        version = request.params["version"]
        schema.check_select(schema.USER, fields, version)
        node = self.filter(request)
        activity = any(f.lower() == "signinactivity" for f in fields or []) or "signInActivity" in (
            request.arg("$filter") or ""
        )
        everything = [self.full_user(p, activity) for p in self.visible_people()]
        if node is not None:
            everything = [u for u in everything if evaluate(node, u)]
        trimmed = [
            schema.select(schema.USER, u, fields, version)
            if fields
            else {k: u[k] for k in DEFAULT_USER_FIELDS}
            for u in everything
        ]
        size = self.top(request, self.sim.paging.graph_default)
        cursor = self.cursor(request)
        offset = int(cursor.get("o", 0)) if cursor else 0
        next_cursor = {"o": offset + size} if offset + size < len(trimmed) else None
        what = f"users({','.join(fields)})" if fields else "users"
        return self.listing(request, what, trimmed[offset : offset + size], next_cursor)

    def user(self, request: Request) -> Response:
        fields = self.select(request)
        version = request.params["version"]
        schema.check_select(schema.USER, fields, version)
        person = self.person(request.params["user"])
        body = self.user_object(person, fields, version)
        return self.entity(request, f"users({','.join(fields)})" if fields else "users", body)

    def users_delta(self, request: Request) -> Response:
        fields = self.select(request)
        version = request.params["version"]
        schema.check_select(schema.USER, fields, version)
        return self.delta_listing(
            request, "users", [self.user_object(p, fields, version) for p in self.visible_people()]
        )

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

    def groups(self, request: Request) -> Response:
        return self.page_of(request, self._group_items(), 100, "groups")

    def groups_delta(self, request: Request) -> Response:
        fields = self.select(request)
        return self.delta_listing(request, "groups", [self.project(g, fields) for g in self._group_items()])

    def _group_items(self) -> list[dict[str, Any]]:
        return [
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
        version = request.params["version"]
        items = [
            schema.shape(
                schema.ROLE_DEFINITION,
                {
                    "id": template,
                    "templateId": template,
                    "displayName": name,
                    "description": f"Built-in role: {name}.",
                    "isBuiltIn": True,
                    "isEnabled": True,
                    "resourceScopes": ["/"],
                    "rolePermissions": [],
                    "version": "1",
                    "isPrivileged": name in PRIVILEGED_ENTRA_ROLES,  # beta only
                },
                version,
            )
            for name, template in ENTRA_ROLES.items()
        ]
        return self.page_of(request, items, 100, "roleManagement/directory/roleDefinitions")
