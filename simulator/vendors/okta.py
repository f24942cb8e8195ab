"""Okta: the System Log API (`/api/v1/logs`, `since`/`until`/`after`, `Link: rel="next"` paging),
Users, Factors, Admin roles, Groups, Apps, Policies, API tokens and ThreatInsight, the write
endpoints remediation needs, and the org authorization server's token endpoint for OAuth 2.0
service apps (`client_credentials` with a `private_key_jwt` client assertion, scoped tokens).

Requests authenticate with `Authorization: SSWS <api token>` (every scope) or with a bearer token
from `/oauth2/v1/token` (only the scopes it was granted). Every answer carries Okta's
`X-Rate-Limit-*` headers.
"""

from __future__ import annotations

import time
import urllib.parse
from typing import TYPE_CHECKING, Any

import jwt

from simulator.auth import verify_okta_assertion
from simulator.http import Request, Response
from simulator.okta_directory import BASE_APPS, BASE_GROUPS
from simulator.render.okta import log_extra, okta_user_id, user_target
from simulator.server import ApiError
from simulator.store import Window
from simulator.tenant import Person
from simulator.timestamps import SECOND, google_time, parse_time
from simulator.vendors.paging import decode_cursor, encode_cursor, event_page

if TYPE_CHECKING:
    from simulator.server import Simulator

SCOPES = frozenset(
    {
        "okta.logs.read",
        "okta.users.read",
        "okta.users.manage",
        "okta.groups.read",
        "okta.apps.read",
        "okta.roles.read",
        "okta.roles.manage",
        "okta.policies.read",
        "okta.apiTokens.read",
        "okta.apiTokens.manage",
        "okta.threatInsights.read",
    }
)
RATE_LIMIT = 600
TOKEN_LIFETIME = 3600


def register(sim: Simulator) -> None:
    api = OktaApi(sim)
    add = sim.router.add
    u = r"/api/v1/users/(?P<user>[^/]+)"
    add("POST", r"/oauth2/v1/token", api.token, "okta", "token_endpoint")
    for methods, pattern, handler, resource, scope in (
        ("GET", r"/api/v1/logs", api.logs, "logs", "okta.logs.read"),
        ("GET", r"/api/v1/users", api.users, "users", "okta.users.read"),
        ("GET", u, api.user, "users", "okta.users.read"),
        ("GET", u + r"/factors", api.factors, "factors", "okta.users.read"),
        ("GET", u + r"/roles", api.roles, "roles", "okta.roles.read"),
        ("DELETE", u + r"/roles/(?P<role>[^/]+)", api.remove_role, "roles", "okta.roles.manage"),
        ("POST", u + r"/lifecycle/suspend", api.suspend, "users", "okta.users.manage"),
        ("POST", u + r"/lifecycle/unsuspend", api.unsuspend, "users", "okta.users.manage"),
        ("POST", u + r"/lifecycle/reset_factors", api.reset_factors, "factors", "okta.users.manage"),
        ("DELETE", u + r"/sessions", api.clear_sessions, "sessions", "okta.users.manage"),
        ("GET", r"/api/v1/groups", api.groups, "groups", "okta.groups.read"),
        ("GET", r"/api/v1/apps", api.apps, "apps", "okta.apps.read"),
        ("GET", r"/api/v1/apps/(?P<app>[^/]+)/users", api.app_users, "apps", "okta.apps.read"),
        ("GET", r"/api/v1/policies", api.policies, "policies", "okta.policies.read"),
        ("GET", r"/api/v1/api-tokens", api.api_tokens, "api_tokens", "okta.apiTokens.read"),
        (
            "DELETE",
            r"/api/v1/api-tokens/(?P<token>[^/]+)",
            api.revoke_api_token,
            "api_tokens",
            "okta.apiTokens.manage",
        ),
        ("GET", r"/api/v1/threats/configuration", api.threat_insight, "threats", "okta.threatInsights.read"),
    ):
        add(methods, pattern, api.scoped(handler, scope), "okta", resource, "okta")


def okta_error(status: int, code: str, summary: str, headers: dict[str, str] | None = None) -> Response:
    """Okta's error object (errorCode E0000…, errorSummary, errorLink, errorId, errorCauses)."""
    return Response.json(
        {
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": "oae" + str(int(time.time() * 1000) % 10**12),
            "errorCauses": [],
        },
        status,
        headers,
    )


def rate_limit_headers(remaining: int = RATE_LIMIT - 1, reset_in: int = 60) -> dict[str, str]:
    """Okta's per-endpoint rate-limit headers: the reset is epoch seconds (wall clock, as Okta's)."""
    return {
        "X-Rate-Limit-Limit": str(RATE_LIMIT),
        "X-Rate-Limit-Remaining": str(max(0, remaining)),
        "X-Rate-Limit-Reset": str(int(time.time()) + reset_in),
        "Date": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()),
    }


class OktaApi:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.world = sim.world
        self.tenant = sim.tenant
        self.state = sim.state
        self.okta = sim.state.okta
        self.ids = sim.tenant.ids
        self._by_okta_id = {okta_user_id(self.ids, p): p for p in self.tenant.people}

    # ---------------------------------------------------------------- auth

    def scoped(self, handler: Any, scope: str) -> Any:
        """An SSWS token may do everything; an OAuth token only what its scopes grant."""

        def run(request: Request) -> Response:
            if request.params.get("_token_audience") == "okta_oauth":
                token = self.sim.tokens.get(request.bearer)
                if token is None or scope not in token.scopes:
                    return okta_error(
                        403,
                        "E0000006",
                        "You do not have permission to perform the requested action",
                        {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
                    )
            response = handler(request)
            response.headers = {**rate_limit_headers(), **response.headers}
            return response

        return run

    def token(self, request: Request) -> Response:
        form = request.form
        if form.get("grant_type") != "client_credentials":
            return Response.json(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "The authorization grant type is not supported by the authorization server.",
                },
                400,
            )
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return Response.json(
                {"error": "invalid_client", "error_description": "The client_assertion_type is invalid."}, 401
            )
        try:
            verify_okta_assertion(
                str(form.get("client_assertion", "")), self.sim.credentials, request.url.split("?")[0]
            )
        except jwt.PyJWTError as exc:
            return Response.json(
                {
                    "error": "invalid_client",
                    "error_description": f"The client_assertion signature is invalid. ({exc})",
                },
                401,
            )
        scopes = tuple(str(form.get("scope", "")).split())
        unknown = [s for s in scopes if s not in SCOPES]
        if not scopes or unknown:
            return Response.json(
                {
                    "error": "invalid_scope",
                    "error_description": f"The following scopes are not allowed: {' '.join(unknown) or '(none)'}",
                },
                400,
            )
        token = self.sim.tokens.issue(
            "okta", "okta_oauth", None, scopes, self.sim.now() / SECOND, TOKEN_LIFETIME
        )
        return Response.json(
            {
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME,
                "access_token": token.value,
                "scope": " ".join(scopes),
            }
        )

    # ---------------------------------------------------------------- helpers

    def person(self, request: Request) -> Person:
        key = urllib.parse.unquote(request.params.get("user", ""))
        person = self._by_okta_id.get(key) or self.tenant.person(key)
        if person is None or person.index in self.state.removed_users:
            raise ApiError(404, "E0000007", f"Not found: Resource not found: {key} (User)")
        return person

    def limit(self, request: Request, default: int = 200, maximum: int = 200) -> int:
        raw = request.arg("limit")
        try:
            value = int(raw) if raw else default
        except ValueError:
            raise ApiError(400, "E0000001", "Api validation failed: limit") from None
        return max(1, min(value, maximum))

    def link_page(
        self, request: Request, items: list[Any], default: int = 200, maximum: int = 200
    ) -> Response:
        """Offset paging behind an opaque `after`, with `Link: <…>; rel="self"` and rel="next"."""
        size = self.limit(request, default, maximum)
        raw = request.arg("after")
        cursor = decode_cursor(raw) if raw else {"o": 0}
        if cursor is None:
            raise ApiError(400, "E0000001", "Api validation failed: after")
        offset = int(cursor.get("o", 0))
        chunk = items[offset : offset + size]
        links = [f'<{request.url}>; rel="self"']
        if offset + size < len(items):
            links.append(
                f'<{self._with(request, after=encode_cursor({"o": offset + size}), limit=str(size))}>; rel="next"'
            )
        return Response.json(chunk, headers={"Link": ", ".join(links)})

    @staticmethod
    def _with(request: Request, **values: str) -> str:
        query = dict(urllib.parse.parse_qsl(request.raw_query, keep_blank_values=True))
        query.update(values)
        return f"{request.base_url}{request.path}?{urllib.parse.urlencode(query)}"

    def log_event(self, event_type: str, subject: Person, **details: Any) -> None:
        admin = next((p for p in self.tenant.people if "Global Administrator" in p.entra_roles), None)
        extra = log_extra(
            event_type,
            admin,
            targets=[user_target(self.world.ctx, subject)],
            ua="tenantguard/1.0",
            debug={k: str(v) for k, v in details.items()},
        )
        self.world.store.add_dynamic("okta:logs", self.sim.now(), "entry", subject, extra)

    def change(
        self, request: Request, action: str, target: dict[str, Any], person: Person | None = None
    ) -> None:
        self.state.bump(person)
        self.state.record_change(
            "okta",
            action,
            target,
            {"method": request.method, "path": request.path, "body": request.form or None},
            200,
        )

    # ---------------------------------------------------------------- System Log

    def logs(self, request: Request) -> Response:
        now = self.sim.now()
        try:
            since_text, until_text = request.arg("since"), request.arg("until")
            since = parse_time(since_text) if since_text else now - 7 * 86400 * SECOND
            until = parse_time(until_text) if until_text else None
        except ValueError:
            raise ApiError(
                400, "E0000030", "Invalid date. 'since' and 'until' must be ISO 8601 dates."
            ) from None
        if now - since > 90 * 86400 * SECOND:
            raise ApiError(400, "E0000001", "Api validation failed: since. The System Log keeps 90 days.")
        order = (request.arg("sortOrder") or "ASCENDING").upper()
        size = self.limit(request, 100, 1000)
        raw = request.arg("after")
        cursor = decode_cursor(raw) if raw else None
        if raw and cursor is None:
            raise ApiError(400, "E0000001", "Api validation failed: after")
        wanted = _filter_event_type(request.arg("filter"))
        predicate = (lambda body: body["eventType"] in wanted) if wanted else None
        high = (until + 1000) if until is not None else now + SECOND
        page = event_page(
            self.sim,
            "okta:logs",
            Window(since, high, order == "DESCENDING"),
            size,
            cursor,
            predicate,
            request.path,
        )
        links = [f'<{request.url}>; rel="self"']
        if page.next:
            links.append(
                f'<{self._with(request, after=encode_cursor(page.next), limit=str(size))}>; rel="next"'
            )
        return Response.json(page.items, headers={"Link": ", ".join(links)})

    # ---------------------------------------------------------------- directory

    def user_object(self, person: Person) -> dict[str, Any]:
        user = self.okta.users[person.index]
        return {
            "id": okta_user_id(self.ids, person),
            "status": user.status,
            "created": google_time(person.created),
            "activated": google_time(person.created),
            "statusChanged": google_time(user.status_changed),
            "lastLogin": None if person.dormant else google_time(self.sim.now() - 3600 * SECOND),
            "lastUpdated": google_time(user.status_changed),
            "type": {"id": "oty" + self.ids.token("okta-user-type", length=17)},
            "profile": {
                "login": person.email,
                "email": person.email,
                "firstName": person.given,
                "lastName": person.family,
                "displayName": person.name,
                "department": person.department,
                "title": person.title,
            },
            "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}},
        }

    def _people(self) -> list[Person]:
        return [p for p in self.tenant.people if p.index not in self.state.removed_users]

    def users(self, request: Request) -> Response:
        return self.link_page(request, [self.user_object(p) for p in self._people()])

    def user(self, request: Request) -> Response:
        return Response.json(self.user_object(self.person(request)))

    def factors(self, request: Request) -> Response:
        person = self.person(request)
        return Response.json(
            [dict(f) for f in self.okta.users[person.index].factors if f["factorType"] != "password"]
        )

    def roles(self, request: Request) -> Response:
        person = self.person(request)
        return Response.json([dict(r) for r in self.okta.users[person.index].roles])

    def groups(self, request: Request) -> Response:
        groups = []
        for name in BASE_GROUPS:
            members = [
                p
                for p in self._people()
                if name == "Everyone"
                or p.department == name
                or (name == "Okta Administrators" and self.okta.users[p.index].roles)
            ]
            groups.append(
                {
                    "id": "00g" + self.ids.token("okta-group", name, length=17),
                    "type": "BUILT_IN" if name == "Everyone" else "OKTA_GROUP",
                    "profile": {"name": name, "description": f"{name} ({len(members)} members)"},
                    "_embedded": {"stats": {"usersCount": len(members)}},
                    "members": [okta_user_id(self.ids, p) for p in members],
                }
            )
        return self.link_page(request, groups)

    def _apps(self) -> list[dict[str, Any]]:
        return [
            {
                "id": "0oa" + self.ids.token("okta-app", label, length=17),
                "name": key,
                "label": label,
                "status": "ACTIVE",
                "signOnMode": "SAML_2_0",
                "created": google_time(self.tenant.options.start - 300 * 86400 * SECOND),
            }
            for key, label in BASE_APPS
        ]

    def apps(self, request: Request) -> Response:
        return self.link_page(request, self._apps())

    def app_users(self, request: Request) -> Response:
        app = next((a for a in self._apps() if a["id"] == request.params["app"]), None)
        if app is None:
            raise ApiError(
                404, "E0000007", f"Not found: Resource not found: {request.params['app']} (AppInstance)"
            )
        items = [
            {
                "id": okta_user_id(self.ids, p),
                "scope": "GROUP",
                "status": "PROVISIONED",
                "credentials": {"userName": p.email},
                "_links": {"app": {"href": f"{self.sim.base_url}/api/v1/apps/{app['id']}"}},
            }
            for p in self._people()
        ]
        return self.link_page(request, items, 200, 500)

    def policies(self, request: Request) -> Response:
        ptype = request.arg("type")
        if not ptype:
            raise ApiError(400, "E0000001", "Api validation failed: type. Policy type is required.")
        return Response.json([dict(p) for p in self.okta.policies.values() if p["type"] == ptype])

    def api_tokens(self, request: Request) -> Response:
        return self.link_page(request, [dict(t) for t in self.okta.api_tokens.values()])

    def threat_insight(self, request: Request) -> Response:
        return Response.json({**self.okta.threat_insight, "created": google_time(self.tenant.options.start)})

    # ---------------------------------------------------------------- writes (remediation)

    def _lifecycle(
        self, request: Request, status: str, wanted_from: str, event: str, action: str
    ) -> Response:
        person = self.person(request)
        user = self.okta.users[person.index]
        if user.status != wanted_from:
            raise ApiError(
                400, "E0000001", f"Api validation failed: the user is {user.status}, not {wanted_from}"
            )
        user.status = status
        user.status_changed = self.sim.now()
        self.log_event(event, person)
        self.change(
            request, action, {"user": person.email, "user_id": okta_user_id(self.ids, person)}, person
        )
        return Response.json({})

    def suspend(self, request: Request) -> Response:
        return self._lifecycle(request, "SUSPENDED", "ACTIVE", "user.lifecycle.suspend", "suspend_user")

    def unsuspend(self, request: Request) -> Response:
        return self._lifecycle(request, "ACTIVE", "SUSPENDED", "user.lifecycle.unsuspend", "unsuspend_user")

    def clear_sessions(self, request: Request) -> Response:
        person = self.person(request)
        self.log_event("user.session.clear", person, oauthTokens=request.arg("oauthTokens") or "false")
        self.change(
            request,
            "clear_sessions",
            {"user": person.email, "user_id": okta_user_id(self.ids, person)},
            person,
        )
        return Response.empty(204)

    def reset_factors(self, request: Request) -> Response:
        person = self.person(request)
        user = self.okta.users[person.index]
        user.factors = [f for f in user.factors if f["factorType"] == "password"]
        self.log_event("user.mfa.factor.reset_all", person)
        self.change(
            request,
            "reset_factors",
            {"user": person.email, "user_id": okta_user_id(self.ids, person)},
            person,
        )
        return Response.json({})

    def remove_role(self, request: Request) -> Response:
        person = self.person(request)
        user = self.okta.users[person.index]
        role = next((r for r in user.roles if r["id"] == request.params["role"]), None)
        if role is None:
            raise ApiError(404, "E0000007", f"Not found: Resource not found: {request.params['role']} (Role)")
        user.roles.remove(role)
        self.log_event("user.account.privilege.revoke", person, privilegeRevoked=role["label"])
        self.change(
            request,
            "remove_admin_role",
            {"user": person.email, "role_id": role["id"], "role": role["type"]},
            person,
        )
        return Response.empty(204)

    def revoke_api_token(self, request: Request) -> Response:
        token = self.okta.api_tokens.pop(request.params["token"], None)
        if token is None:
            raise ApiError(
                404, "E0000007", f"Not found: Resource not found: {request.params['token']} (ApiToken)"
            )
        self.change(request, "revoke_api_token", {"token_id": token["id"], "name": token["name"]})
        return Response.empty(204)


def _filter_event_type(text: str | None) -> set[str]:
    """`eventType eq "a" or eventType eq "b"` — the filter the System Log documents most."""
    if not text:
        return set()
    out = set()
    for part in text.split(" or "):
        field, _, value = part.strip().strip("()").partition(" eq ")
        if field.strip() != "eventType":
            raise ApiError(400, "E0000031", f"Invalid search criteria: {text}")
        out.add(value.strip().strip('"'))
    return out
