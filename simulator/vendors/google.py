"""Google Workspace: OAuth JWT-bearer token endpoint, Admin SDK Reports and Directory, Drive v3,
Gmail and Cloud Identity policies (the settings reads).

Reports lists newest first, pages with `nextPageToken`, and hides events younger than the
application's reporting lag (scenario `lag:`). Admin SDK calls need a token whose subject is an
admin; Gmail calls need the mailbox owner as subject (domain-wide delegation).
"""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING, Any

import jwt

from simulator.auth import TOKEN_LIFETIME, verify_google_assertion
from simulator.catalog import GOOGLE_ROLES
from simulator.http import Request, Response
from simulator.render.google import STREAM_OF_APPLICATION
from simulator.server import ApiError
from simulator.store import Window
from simulator.tenant import Person
from simulator.timestamps import DAY, HOUR, SECOND, google_time, parse_time
from simulator.vendors.paging import decode_cursor, encode_cursor, event_page

if TYPE_CHECKING:
    from simulator.server import Simulator

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
}
SCOPES = {
    "reports": ("https://www.googleapis.com/auth/admin.reports.audit.readonly",),
    "directory_read": (
        "https://www.googleapis.com/auth/admin.directory.user.readonly",
        "https://www.googleapis.com/auth/admin.directory.user",
    ),
    "directory_write": ("https://www.googleapis.com/auth/admin.directory.user",),
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
_FILTER = re.compile(r"^\s*(\w+)\s*(==|<>|<=|>=|<|>)\s*(.*?)\s*$")


def register(sim: Simulator) -> None:
    api = GoogleApi(sim)
    add = sim.router.add
    add("POST", r"/google/token", api.token, "google", "token_endpoint")
    d = r"/admin/directory/v1"
    routes = [
        (
            "GET",
            r"/admin/reports/v1/activity/users/(?P<user>[^/]+)/applications/(?P<app>[^/]+)",
            api.activities,
            "reports",
        ),
        ("GET", d + r"/users", api.users, "users"),
        ("GET", d + r"/users/(?P<user>[^/]+)", api.user, "users"),
        ("PUT PATCH", d + r"/users/(?P<user>[^/]+)", api.update_user, "users"),
        ("POST", d + r"/users/(?P<user>[^/]+)/signOut", api.sign_out, "users"),
        ("GET", d + r"/users/(?P<user>[^/]+)/tokens", api.tokens, "tokens"),
        ("DELETE", d + r"/users/(?P<user>[^/]+)/tokens/(?P<client>[^/]+)", api.delete_token, "tokens"),
        ("GET", d + r"/customer/(?P<customer>[^/]+)/roles", api.roles, "roles"),
        ("GET", d + r"/customer/(?P<customer>[^/]+)/roleassignments", api.role_assignments, "roles"),
        (
            "DELETE",
            d + r"/customer/(?P<customer>[^/]+)/roleassignments/(?P<assignment>[^/]+)",
            api.delete_role_assignment,
            "roles",
        ),
        ("GET", d + r"/groups", api.groups, "groups"),
        ("GET", r"/drive/v3/files", api.files, "drive_files"),
        ("GET", r"/drive/v3/files/(?P<file>[^/]+)", api.file, "drive_files"),
        ("GET", r"/drive/v3/files/(?P<file>[^/]+)/permissions", api.permissions, "drive_permissions"),
        (
            "DELETE",
            r"/drive/v3/files/(?P<file>[^/]+)/permissions/(?P<permission>[^/]+)",
            api.delete_permission,
            "drive_permissions",
        ),
        ("GET", r"/gmail/v1/users/(?P<user>[^/]+)/threads", api.threads, "gmail"),
        ("GET", r"/gmail/v1/users/(?P<user>[^/]+)/threads/(?P<thread>[^/]+)", api.thread, "gmail"),
        ("GET", r"/gmail/v1/users/(?P<user>[^/]+)/messages", api.gmail_messages, "gmail"),
        ("GET", r"/gmail/v1/users/(?P<user>[^/]+)/messages/(?P<message>[^/]+)", api.gmail_message, "gmail"),
        ("GET", r"/v1/policies", api.policies, "policies"),
        ("GET", r"/v1/policies/(?P<policy>[^/]+)", api.policy, "policies"),
        ("PATCH", r"/v1/policies/(?P<policy>[^/]+)", api.patch_policy, "policies"),
    ]
    for method, path, handler, resource in routes:
        add(method, path, handler, "google", resource, "google")


class GoogleApi:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.world = sim.world
        self.tenant = sim.tenant
        self.state = sim.state
        self._last_login: dict[int, int | None] = {}

    # ---------------------------------------------------------------- auth

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

    # ---------------------------------------------------------------- reports

    def activities(self, request: Request) -> Response:
        self.need(request, "reports", admin=True)
        app = request.params["app"]
        if app not in KNOWN_APPLICATIONS:
            raise ApiError(
                400,
                "invalid",
                f"Invalid value '{app}'. Values must match the following regular expression: '{'|'.join(sorted(KNOWN_APPLICATIONS))}'",
            )
        now = self.sim.now()
        start, end = self._time_range(request, now)
        user_key = request.params["user"]
        person = None
        if user_key != "all":
            person = self.tenant.person(user_key)
            if person is None:
                raise ApiError(400, "invalid", f"Bad Request: userKey {user_key}")
        size = self.size(request, "maxResults", self.sim.paging.google_default, 1000)
        cursor = self.page_token(request)
        body: dict[str, Any] = {
            "kind": "admin#reports#activities",
            "etag": f'"{self.tenant.ids.token("reports-etag", app, length=27)}"',
        }
        stream = STREAM_OF_APPLICATION.get(app)
        if stream is None:
            return Response.json(body)
        predicate = self._predicate(request)
        if person is not None and stream == "google:admin":
            # admin records are kept with the person acted upon; userKey filters on the actor
            predicate = _and(
                predicate, lambda activity, email=person.email: activity["actor"].get("email") == email
            )
            person = None
        page = event_page(
            self.sim, stream, Window(start, end, True, person), size, cursor, predicate, request.path
        )
        if page.items:
            body["items"] = page.items
        if page.next:
            body["nextPageToken"] = encode_cursor(page.next)
        return Response.json(body)

    def _time_range(self, request: Request, now: int) -> tuple[int, int]:
        try:
            start = (
                parse_time(request.arg("startTime") or "") if request.arg("startTime") else now - 180 * DAY
            )
            end = parse_time(request.arg("endTime") or "") + 1 if request.arg("endTime") else now + 1
        except ValueError:
            raise ApiError(
                400, "invalid", "Invalid startTime/endTime: use RFC 3339, e.g. 2026-03-02T00:00:00.000Z"
            ) from None
        if start >= end:
            raise ApiError(400, "invalid", "Start time must be less than end time")
        if start > now:
            raise ApiError(400, "invalid", "Start time can not be greater than current time")
        return start, end

    def _predicate(self, request: Request) -> Any:
        event_name = request.arg("eventName")
        actor_ip = request.arg("actorIpAddress")
        filters = [_FILTER.match(f) for f in (request.arg("filters") or "").split(",") if f.strip()]
        if any(f is None for f in filters):
            raise ApiError(
                400, "invalid", f"Invalid filters: {request.arg('filters')}; use name==value[,name<>value]"
            )
        conditions = [(m.group(1), m.group(2), m.group(3)) for m in filters if m]
        if not (event_name or actor_ip or conditions):
            return None

        def keep(activity: dict[str, Any]) -> bool:
            if actor_ip and activity.get("ipAddress") != actor_ip:
                return False
            events = activity.get("events", [])
            if event_name:
                events = [e for e in events if e.get("name") == event_name]
            if not events:
                return False
            return not conditions or any(all(_param_matches(e, *c) for c in conditions) for e in events)

        return keep

    # ---------------------------------------------------------------- directory: users

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
            "changePasswordAtNextLogin": False,
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
            found = options.start - (60 + self.tenant.ids.number("dormant", person.index) % 200) * DAY
        self._last_login[person.index] = found
        return found

    def _people(self) -> list[Person]:
        now = self.sim.now()
        return [p for p in self.tenant.people if p.index not in self.state.removed_users and p.created <= now]

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
            users = [u for u in users if _matches_query(u, query)]
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
        self.state.user(person.index).google_signed_out_at = self.sim.now()
        self.admin_event(admin, [("USER_SETTINGS", "USER_SIGN_OUT", {"USER_EMAIL": person.email})])
        self.change(request, "sign_out", {"user": person.email, "id": person.google_id}, person=person)
        return Response.empty(204)

    # ---------------------------------------------------------------- directory: tokens and roles

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
        self.need(request, "directory_read", admin=True)
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

    # ---------------------------------------------------------------- drive

    def file_object(self, drive_file: Any) -> dict[str, Any]:
        from simulator.tenant import google_mime

        owner = self.tenant.people[drive_file.owner]
        perms = self.state.permissions("google", drive_file.id)
        return {
            "kind": "drive#file",
            "id": drive_file.id,
            "name": drive_file.title,
            "mimeType": google_mime(drive_file.extension),
            "createdTime": google_time(drive_file.created),
            "modifiedTime": google_time(drive_file.created + DAY),
            "owners": [
                {"kind": "drive#user", "displayName": owner.name, "emailAddress": owner.email, "me": False}
            ],
            "shared": len(perms) > 1,
            "size": str(drive_file.size),
            "webViewLink": f"https://docs.google.com/document/d/{drive_file.id}/edit?usp=drivesdk",
            "permissionIds": [p.id for p in perms],
        }

    def files(self, request: Request) -> Response:
        subject = self.need(request, "drive")
        corpora = request.arg("corpora") or "user"
        q = request.arg("q") or ""
        owners = (
            [p for p in self._people()]
            if corpora in ("domain", "allDrives") and subject is not None and self._is_admin(subject)
            else ([subject] if subject is not None else [])
        )
        owner_match = re.search(r"'([^']+)'\s+in\s+owners", q)
        if owner_match:
            key = owner_match.group(1)
            owner = subject if key == "me" else self.tenant.person(key)
            owners = [owner] if owner is not None and owner in owners + ([subject] if subject else []) else []
        files = [f for p in owners for f in self.tenant.files_of(p.index, "google")]
        visibility = re.search(r"visibility\s*=\s*'(\w+)'", q)
        if visibility:
            files = [
                f
                for f in files
                if _drive_visibility(self.state.permissions("google", f.id)) == visibility.group(1)
            ]
        size = self.size(request, "pageSize", 100, 1000)
        cursor = self.page_token(request)
        offset = int(cursor["o"]) if cursor else 0
        body: dict[str, Any] = {
            "kind": "drive#fileList",
            "incompleteSearch": False,
            "files": [self.file_object(f) for f in files[offset : offset + size]],
        }
        if offset + size < len(files):
            body["nextPageToken"] = encode_cursor({"o": offset + size})
        return Response.json(body)

    def _file(self, request: Request) -> Any:
        drive_file = self.tenant.file("google", request.params["file"])
        if drive_file is None:
            raise ApiError(404, "notFound", f"File not found: {request.params['file']}.")
        return drive_file

    def file(self, request: Request) -> Response:
        self.need(request, "drive")
        return Response.json(self.file_object(self._file(request)))

    def permission_object(self, permission: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "drive#permission",
            "id": permission.id,
            "type": permission.type,
            "role": permission.role,
            "deleted": False,
            "pendingOwner": False,
        }
        if permission.type in ("user", "group"):
            person = self.tenant.person(permission.email)
            body.update(
                {
                    "emailAddress": permission.email,
                    "displayName": person.name if person else permission.email.split("@")[0],
                }
            )
        elif permission.type == "domain":
            body.update(
                {
                    "domain": permission.domain,
                    "displayName": permission.domain,
                    "allowFileDiscovery": permission.discoverable,
                }
            )
        else:
            body["allowFileDiscovery"] = permission.discoverable
        return body

    def permissions(self, request: Request) -> Response:
        self.need(request, "drive")
        drive_file = self._file(request)
        return Response.json(
            {
                "kind": "drive#permissionList",
                "permissions": [
                    self.permission_object(p) for p in self.state.permissions("google", drive_file.id)
                ],
            }
        )

    def delete_permission(self, request: Request) -> Response:
        subject = self.need(request, "drive_write")
        drive_file = self._file(request)
        permission_id = request.params["permission"]
        found = next(
            (p for p in self.state.permissions("google", drive_file.id) if p.id == permission_id), None
        )
        if found is None:
            raise ApiError(404, "notFound", f"Permission not found: {permission_id}.")
        if found.role == "owner":
            raise ApiError(403, "cannotRemoveOwner", "The owner of a file cannot be removed.")
        with self.state.lock:
            self.state.removed_permissions.add((drive_file.id, permission_id))
        owner = self.tenant.people[drive_file.owner]
        from simulator.render.google import activity_extra

        actor = subject or owner
        self.world.store.add_dynamic(
            "google:drive",
            self.sim.now(),
            "activity",
            actor,
            activity_extra(
                actor,
                None,
                [
                    (
                        "acl_change",
                        "change_document_visibility" if found.type == "anyone" else "change_user_access",
                        {
                            "doc_id": drive_file.id,
                            "doc_title": drive_file.title,
                            "owner": owner.email,
                            "visibility": "private",
                            "old_value": ["can_view"],
                            "new_value": ["none"],
                            "primary_event": True,
                        },
                    )
                ],
            ),
        )
        self.change(
            request,
            "remove_drive_permission",
            {
                "file_id": drive_file.id,
                "permission_id": permission_id,
                "type": found.type,
                "owner": owner.email,
            },
            person=owner,
        )
        return Response.empty(204)

    # ---------------------------------------------------------------- gmail

    def _mailbox_owner(self, request: Request) -> Person:
        subject = self.need(request, "gmail")
        key = request.params["user"]
        if key == "me":
            if subject is None:
                raise ApiError(400, "failedPrecondition", "Precondition check failed.")
            return subject
        person = self.person(key)
        if subject is None or subject.index != person.index:
            raise ApiError(
                403,
                "forbidden",
                f"Delegation denied for {subject.email if subject else self.sim.credentials.sa_email}",
            )
        return person

    def _mail_window(self, request: Request) -> tuple[int, int]:
        q = request.arg("q") or ""
        now = self.sim.now()
        start, end = 0, 1 << 62
        for kind, amount, unit in re.findall(r"(newer_than|older_than):(\d+)([dhmy])", q):
            span = int(amount) * {"d": DAY, "h": HOUR, "m": 30 * DAY, "y": 365 * DAY}[unit]
            if kind == "newer_than":
                start = max(start, now - span)
            else:
                end = min(end, now - span)
        for kind, value in re.findall(r"(after|before):(\S+)", q):
            us = (
                int(value) * SECOND if value.isdigit() else parse_time(value.replace("/", "-") + "T00:00:00Z")
            )
            if kind == "after":
                start = max(start, us)
            else:
                end = min(end, us)
        return start, end

    def threads(self, request: Request) -> Response:
        owner = self._mailbox_owner(request)
        start, end = self._mail_window(request)
        messages = self.world.conversations.mailbox("google:gmail", owner, start, end)
        threads: dict[str, Any] = {}
        for message in reversed(messages):
            threads.setdefault(message.thread, message)
        items = [
            {"id": tid, "snippet": m.text[:120], "historyId": str(m.ts // 1000)} for tid, m in threads.items()
        ]
        size = self.size(request, "maxResults", 100, 500)
        cursor = self.page_token(request)
        offset = int(cursor["o"]) if cursor else 0
        body: dict[str, Any] = {"resultSizeEstimate": len(items)}
        if items[offset : offset + size]:
            body["threads"] = items[offset : offset + size]
        if offset + size < len(items):
            body["nextPageToken"] = encode_cursor({"o": offset + size})
        return Response.json(body)

    def gmail_message_object(self, message: Any, fmt: str = "full") -> dict[str, Any]:
        headers = [
            {"name": "From", "value": message.sender_email},
            {
                "name": "To",
                "value": ", ".join(r.email if isinstance(r, Person) else r for r in message.recipients),
            },
            {"name": "Subject", "value": message.subject or ""},
            {"name": "Date", "value": google_time(message.ts)},
            {"name": "Message-ID", "value": f"<{message.id}@mail.gmail.com>"},
        ]
        body: dict[str, Any] = {
            "id": message.id,
            "threadId": message.thread,
            "labelIds": ["INBOX"],
            "snippet": message.text[:120],
            "historyId": str(message.ts // 1000),
            "internalDate": str(message.ts // 1000),
            "sizeEstimate": 1200 + len(message.text),
        }
        if fmt != "minimal":
            payload: dict[str, Any] = {
                "partId": "",
                "mimeType": "text/plain",
                "filename": "",
                "headers": headers,
            }
            if fmt != "metadata":
                payload["body"] = {
                    "size": len(message.text),
                    "data": base64.urlsafe_b64encode(message.text.encode()).decode(),
                }
            body["payload"] = payload
        return body

    def thread(self, request: Request) -> Response:
        owner = self._mailbox_owner(request)
        messages = [
            m
            for m in self.world.conversations.mailbox("google:gmail", owner, 0, 1 << 62)
            if m.thread == request.params["thread"]
        ]
        if not messages:
            raise ApiError(404, "notFound", "Requested entity was not found.")
        fmt = request.arg("format") or "full"
        return Response.json(
            {
                "id": request.params["thread"],
                "historyId": str(messages[-1].ts // 1000),
                "messages": [self.gmail_message_object(m, fmt) for m in messages],
            }
        )

    def gmail_messages(self, request: Request) -> Response:
        owner = self._mailbox_owner(request)
        start, end = self._mail_window(request)
        messages = list(reversed(self.world.conversations.mailbox("google:gmail", owner, start, end)))
        size = self.size(request, "maxResults", 100, 500)
        cursor = self.page_token(request)
        offset = int(cursor["o"]) if cursor else 0
        body: dict[str, Any] = {"resultSizeEstimate": len(messages)}
        chunk = messages[offset : offset + size]
        if chunk:
            body["messages"] = [{"id": m.id, "threadId": m.thread} for m in chunk]
        if offset + size < len(messages):
            body["nextPageToken"] = encode_cursor({"o": offset + size})
        return Response.json(body)

    def gmail_message(self, request: Request) -> Response:
        owner = self._mailbox_owner(request)
        message = next(
            (
                m
                for m in self.world.conversations.mailbox("google:gmail", owner, 0, 1 << 62)
                if m.id == request.params["message"]
            ),
            None,
        )
        if message is None:
            raise ApiError(404, "notFound", "Requested entity was not found.")
        return Response.json(self.gmail_message_object(message, request.arg("format") or "full"))

    # ---------------------------------------------------------------- cloud identity policies (settings)

    def policies(self, request: Request) -> Response:
        self.need(request, "policies", admin=True)
        with self.state.lock:
            items = [_copy(p) for p in self.state.google_policies.values()]
        text = request.arg("filter") or ""
        match = re.search(r"setting\.type\.matches\('([^']+)'\)", text)
        if match:
            pattern = re.compile(match.group(1).replace("\\\\", "\\"))
            items = [p for p in items if pattern.search(p["setting"]["type"])]
        size = self.size(request, "pageSize", 50, 100)
        cursor = self.page_token(request)
        offset = int(cursor["o"]) if cursor else 0
        body: dict[str, Any] = {"policies": items[offset : offset + size]}
        if offset + size < len(items):
            body["nextPageToken"] = encode_cursor({"o": offset + size})
        return Response.json(body)

    def _policy_entry(self, request: Request) -> tuple[str, dict[str, Any]]:
        name = f"policies/{request.params['policy']}"
        for setting, policy in self.state.google_policies.items():
            if policy["name"] == name:
                return setting, policy
        raise ApiError(404, "notFound", f"Policy {name} not found.")

    def policy(self, request: Request) -> Response:
        self.need(request, "policies", admin=True)
        with self.state.lock:
            return Response.json(_copy(self._policy_entry(request)[1]))

    def patch_policy(self, request: Request) -> Response:
        admin = self.need(request, "policies_write", admin=True)
        body = request.json()
        with self.state.lock:
            setting, policy = self._policy_entry(request)
            old = dict(policy["setting"]["value"])
            new_value = (body.get("setting") or {}).get("value")
            if not isinstance(new_value, dict):
                raise ApiError(400, "invalid", "Policy.setting.value must be an object.")
            policy["setting"]["value"] = new_value
            result = _copy(policy)
        self.admin_event(
            admin,
            [
                (
                    "APPLICATION_SETTINGS",
                    "CHANGE_APPLICATION_SETTING",
                    {
                        "APPLICATION_NAME": setting.split(".")[0],
                        "SETTING_NAME": setting,
                        "OLD_VALUE": str(old),
                        "NEW_VALUE": str(new_value),
                    },
                )
            ],
        )
        self.change(
            request,
            "patch_google_policy",
            {"setting": setting, "policy": policy["name"], "old": old, "new": new_value},
            200,
        )
        return Response.json(
            {
                "name": f"operations/{self.tenant.ids.hex('op', setting, self.state.version, length=16)}",
                "done": True,
                "response": {
                    "@type": "type.googleapis.com/google.apps.cloudidentity.policies.v1.Policy",
                    **result,
                },
            }
        )


def _and(first: Any, second: Any) -> Any:
    if first is None:
        return second
    return lambda activity: first(activity) and second(activity)


def _copy(policy: dict[str, Any]) -> dict[str, Any]:
    return {
        **policy,
        "policyQuery": dict(policy["policyQuery"]),
        "setting": {"type": policy["setting"]["type"], "value": dict(policy["setting"]["value"])},
    }


def _param_value(event: dict[str, Any], name: str) -> Any:
    for parameter in event.get("parameters", []):
        if parameter["name"] == name:
            for key in ("value", "boolValue", "intValue", "multiValue"):
                if key in parameter:
                    return parameter[key]
    return None


def _param_matches(event: dict[str, Any], name: str, op: str, expected: str) -> bool:
    value = _param_value(event, name)
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


def _matches_query(user: dict[str, Any], query: str) -> bool:
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


def _drive_visibility(perms: list[Any]) -> str:
    kinds = {p.type: p for p in perms}
    if "anyone" in kinds:
        return "anyoneCanFind" if kinds["anyone"].discoverable else "anyoneWithLink"
    if "domain" in kinds:
        return "domainCanFind" if kinds["domain"].discoverable else "domainWithLink"
    return "limited"
