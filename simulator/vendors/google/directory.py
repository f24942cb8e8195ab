"""Admin SDK Directory: users (suspend, sign out), OAuth tokens, roles and role assignments, groups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulator.catalog import GOOGLE_ROLES
from simulator.http import Request, Response
from simulator.server import ApiError
from simulator.tenant import Person
from simulator.timestamps import DAY, google_time
from simulator.vendors.paging import encode_cursor

if TYPE_CHECKING:
    pass
from simulator.vendors.google.base import GoogleBase, matches_query


class Directory(GoogleBase):
    def user_object(self, person: Person) -> dict[str, Any]:
        state = self.state.user(person.index)
        enforced = (
            "enforcedFrom"
            in self.state.google_policies["security.two_step_verification_enforcement"]["setting"]["value"]
        )
        last = self._last_login_time(person)
        with self.state.lock:
            delegated = any(
                a["assignedTo"] == person.google_id and a["roleId"] != GOOGLE_ROLES["_SEED_ADMIN_ROLE"][0]
                for a in self.state.google_role_assignments.values()
            )
        body = {
            "kind": "admin#directory#user",
            "id": person.google_id,
            "etag": f'"{self.tenant.ids.token("user-etag", person.index, state.version, length=27)}"',
            "primaryEmail": person.email,
            "name": {"givenName": person.given, "familyName": person.family, "fullName": person.name},
            "isAdmin": state.google_admin,
            "isDelegatedAdmin": delegated,
            "lastLoginTime": google_time(last) if last else "1970-01-01T00:00:00.000Z",
            "creationTime": google_time(person.created - person.created % 1000),
            "agreedToTerms": True,
            "suspended": state.google_suspended,
            "archived": False,
            "changePasswordAtNextLogin": state.google_change_password,
            "ipWhitelisted": False,
            "emails": [{"address": person.email, "primary": True}],
            "languages": [{"languageCode": "en", "preference": "preferred"}],
            "customerId": self.tenant.customer_id,
            "orgUnitPath": f"/{person.department}",
            "isMailboxSetup": True,
            "isEnrolledIn2Sv": person.two_sv,
            "isEnforcedIn2Sv": enforced,
            "includeInGlobalAddressList": True,
        }
        if state.google_suspended:
            body["suspensionReason"] = "ADMIN"
        return body

    def _last_login_time(self, person: Person) -> int | None:
        if person.index in self._last_login:
            return self._last_login[person.index]
        options = self.tenant.options
        end, found = options.end, None
        while end > options.start and found is None:
            records = self.world.store.person_records(
                "google:login", person, max(options.start, end - 2 * DAY), end
            )
            found = next((r[0] for r in reversed(records) if r[2] in ("login_success", "activity")), None)
            end -= 2 * DAY
        if found is None and person.dormant:
            found = self.tenant.dormant_since(person)
        self._last_login[person.index] = found
        return found

    def users(self, request: Request) -> Response:
        self.need(request, "directory_read", admin=True)
        customer, domain = request.arg("customer"), request.arg("domain")
        if not customer and not domain:
            raise ApiError(400, "badRequest", "Bad Request: provide customer or domain")
        if customer not in (None, "my_customer", self.tenant.customer_id) or domain not in (
            None,
            self.tenant.domain,
        ):
            raise ApiError(400, "badRequest", f"Bad Request: unknown customer/domain {customer or domain}")
        users = [self.user_object(p) for p in self._people()]
        query = request.arg("query")
        if query:
            users = [u for u in users if matches_query(u, query)]
        if request.arg("orderBy") == "email":
            users.sort(key=lambda u: u["primaryEmail"], reverse=request.arg("sortOrder") == "DESCENDING")
        size = self.size(request, "maxResults", 100, 500)
        cursor = self.page_token(request)
        offset = int(cursor["o"]) if cursor else 0
        body: dict[str, Any] = {
            "kind": "admin#directory#users",
            "etag": f'"{self.tenant.ids.token("users-etag", self.state.version, length=27)}"',
            "users": users[offset : offset + size],
        }
        if offset + size < len(users):
            body["nextPageToken"] = encode_cursor({"o": offset + size})
        return Response.json(body)

    def user(self, request: Request) -> Response:
        self.need(request, "directory_read", admin=True)
        return Response.json(self.user_object(self.person(request.params["user"])))

    def update_user(self, request: Request) -> Response:
        admin = self.need(request, "directory_write", admin=True)
        person = self.person(request.params["user"])
        body = request.json()
        state = self.state.user(person.index)
        if "suspended" in body:
            before = state.google_suspended
            state.google_suspended = bool(body["suspended"])
            if before != state.google_suspended:
                name = "SUSPEND_USER" if state.google_suspended else "UNSUSPEND_USER"
                self.admin_event(admin, [("USER_SETTINGS", name, {"USER_EMAIL": person.email})])
        if "changePasswordAtNextLogin" in body:
            before_flag = state.google_change_password
            state.google_change_password = bool(body["changePasswordAtNextLogin"])
            if before_flag != state.google_change_password:
                self.admin_event(
                    admin,
                    [
                        (
                            "USER_SETTINGS",
                            "CHANGE_PASSWORD_ON_NEXT_LOGIN",
                            {
                                "USER_EMAIL": person.email,
                                "NEW_VALUE": str(state.google_change_password).lower(),
                            },
                        )
                    ],
                )
        self.change(
            request,
            "suspend_user"
            if body.get("suspended") is True
            else "unsuspend_user"
            if body.get("suspended") is False
            else "update_user",
            {"user": person.email, "id": person.google_id, "changes": body},
            200,
            person,
        )
        return Response.json(self.user_object(person))

    def sign_out(self, request: Request) -> Response:
        admin = self.need(request, "security", admin=True)
        person = self.person(request.params["user"])
        self.admin_event(admin, [("USER_SETTINGS", "USER_SIGN_OUT", {"USER_EMAIL": person.email})])
        self.change(request, "sign_out", {"user": person.email, "id": person.google_id}, person=person)
        return Response.empty(204)

    def token_object(self, person: Person, token: Any) -> dict[str, Any]:
        return {
            "kind": "admin#directory#token",
            "etag": f'"{self.tenant.ids.token("token-etag", token.client_id, length=27)}"',
            "clientId": token.client_id,
            "displayText": token.display_text,
            "anonymous": token.anonymous,
            "nativeApp": token.native_app,
            "userKey": person.google_id,
            "scopes": list(token.scopes),
        }

    def tokens(self, request: Request) -> Response:
        self.need(request, "security", admin=True)
        person = self.person(request.params["user"])
        items = [self.token_object(person, t) for t in self.state.google_tokens(person)]
        body: dict[str, Any] = {
            "kind": "admin#directory#tokenList",
            "etag": f'"{self.tenant.ids.token("tokens-etag", person.index, length=27)}"',
        }
        if items:
            body["items"] = items
        return Response.json(body)

    def delete_token(self, request: Request) -> Response:
        admin = self.need(request, "security", admin=True)
        person = self.person(request.params["user"])
        client = request.params["client"]
        token = next((t for t in self.state.google_tokens(person) if t.client_id == client), None)
        if token is None:
            raise ApiError(404, "notFound", "Resource Not Found: clientId")
        with self.state.lock:
            self.state.google_tokens_removed.add((person.index, client))
        from simulator.render.google import activity_extra

        self.world.store.add_dynamic(
            "google:token",
            self.sim.now(),
            "activity",
            person,
            activity_extra(
                person, None, [("auth", "revoke", {"client_id": client, "app_name": token.display_text})]
            ),
        )
        del admin
        self.change(
            request,
            "delete_google_token",
            {"user": person.email, "client_id": client, "app": token.display_text},
            person=person,
        )
        return Response.empty(204)

    def _customer(self, request: Request) -> None:
        if request.params["customer"] not in ("my_customer", self.tenant.customer_id):
            raise ApiError(400, "badRequest", "Bad Request: customer")

    def roles(self, request: Request) -> Response:
        self.need(request, "roles", admin=True)
        self._customer(request)
        items = [
            {
                "kind": "admin#directory#role",
                "etag": f'"{self.tenant.ids.token("role-etag", name, length=27)}"',
                "roleId": role_id,
                "roleName": name,
                "roleDescription": description,
                "isSystemRole": True,
                "isSuperAdminRole": superadmin,
                "rolePrivileges": [
                    {
                        "privilegeName": "SUPER_ADMIN" if superadmin else "USERS_RETRIEVE",
                        "serviceId": "00haapch16h1ysv",
                    }
                ],
            }
            for name, (role_id, description, superadmin) in GOOGLE_ROLES.items()
        ]
        return Response.json({"kind": "admin#directory#roles", "etag": '"roles"', "items": items})

    def role_assignments(self, request: Request) -> Response:
        self.need(request, "roles", admin=True)
        self._customer(request)
        with self.state.lock:
            items = [dict(a) for a in self.state.google_role_assignments.values()]
        user_key = request.arg("userKey")
        if user_key:
            person = self.person(user_key)
            items = [a for a in items if a["assignedTo"] == person.google_id]
        if request.arg("roleId"):
            items = [a for a in items if a["roleId"] == request.arg("roleId")]
        size = self.size(request, "maxResults", 100, 200)
        cursor = self.page_token(request)
        offset = int(cursor["o"]) if cursor else 0
        body: dict[str, Any] = {
            "kind": "admin#directory#roleAssignments",
            "etag": '"assignments"',
            "items": items[offset : offset + size],
        }
        if offset + size < len(items):
            body["nextPageToken"] = encode_cursor({"o": offset + size})
        return Response.json(body)

    def delete_role_assignment(self, request: Request) -> Response:
        admin = self.need(request, "roles_write", admin=True)
        self._customer(request)
        assignment_id = request.params["assignment"]
        with self.state.lock:
            assignment = self.state.google_role_assignments.pop(assignment_id, None)
        if assignment is None:
            raise ApiError(404, "notFound", "Resource Not Found: roleAssignmentId")
        person = self.tenant.person(assignment["assignedTo"])
        role = next(
            (n for n, (rid, _, _) in GOOGLE_ROLES.items() if rid == assignment["roleId"]),
            assignment["roleId"],
        )
        if person is not None and role == "_SEED_ADMIN_ROLE":
            with self.state.lock:
                still_super = any(
                    a["assignedTo"] == person.google_id and a["roleId"] == assignment["roleId"]
                    for a in self.state.google_role_assignments.values()
                )
                self.state.user(person.index).google_admin = still_super
        self.admin_event(
            admin,
            [
                (
                    "DELEGATED_ADMIN_SETTINGS",
                    "UNASSIGN_ROLE",
                    {"ROLE_NAME": role, "USER_EMAIL": person.email if person else ""},
                )
            ],
        )
        self.change(
            request,
            "remove_google_role",
            {"role_assignment_id": assignment_id, "role": role, "user": person.email if person else None},
            person=person,
        )
        return Response.empty(204)

    def groups(self, request: Request) -> Response:
        self.need(request, "groups", admin=True)
        items = [
            {
                "kind": "admin#directory#group",
                "id": g.google_id,
                "email": g.email,
                "name": g.name,
                "directMembersCount": str(len(g.members)),
                "adminCreated": True,
            }
            for g in self.tenant.groups
        ]
        return Response.json({"kind": "admin#directory#groups", "groups": items})
