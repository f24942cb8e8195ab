"""What every Graph handler shares: OData lists, paging, $select/$filter, users, the change log."""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

from simulator.http import Request, Response
from simulator.odata import FilterError, evaluate, parse_filter, time_bounds
from simulator.render.m365 import NONINTERACTIVE_KINDS, audit_extra
from simulator.server import ApiError
from simulator.tenant import Person
from simulator.timestamps import DAY, SECOND, graph_time
from simulator.vendors.graph import schema
from simulator.vendors.graph.delta import SyncStates
from simulator.vendors.paging import decode_cursor, encode_cursor

if TYPE_CHECKING:
    from simulator.server import Simulator

G = r"/graph/(?P<version>v1\.0|beta)"
USER = r"(?P<user>[^/]+)"
APP_NAME = "tenantguard"
EVENT_STREAMS = {
    "signins": ("m365:signins", "createdDateTime", "auditLogs/signIns"),
    "directory_audits": ("m365:directory_audits", "activityDateTime", "auditLogs/directoryAudits"),
    "risk_detections": ("m365:risk_detections", "detectedDateTime", "identityProtection/riskDetections"),
    "security_alerts": ("m365:security_alerts", "lastUpdateDateTime", "security/alerts_v2"),
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
MIME = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "pdf": "application/pdf",
}


class GraphBase:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.world = sim.world
        self.tenant = sim.tenant
        self.state = sim.state
        self._last_signin: dict[int, tuple[int | None, int | None]] = {}
        self.sync_states = SyncStates()

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

    def delta_listing(self, request: Request, what: str, items: list[dict[str, Any]]) -> Response:
        """One page of a delta round over `items` (the collection as it is now): see delta.py."""
        cursor = self.cursor(request)
        if cursor is not None:
            state_id, offset = cursor.get("s"), int(cursor.get("o", 0))
            if self.sync_states.get(state_id) is None:
                raise ApiError(400, "BadRequest", "Invalid $skiptoken; restart the delta query without it.")
        else:
            token = request.arg("$deltatoken")
            since = None
            if token is not None and token != "latest":
                data = decode_cursor(token)
                since = self.sync_states.get(data.get("s")) if data else None
                if since is None:
                    raise ApiError(
                        400, "BadRequest", "Invalid $deltatoken; restart the delta query without it."
                    )
            state_id = self.sync_states.start_round(items, since, latest=token == "latest")
            offset = 0
        state = self.sync_states.get(state_id)
        assert state is not None
        size = self.top(request, self.sim.paging.graph_default)
        chunk = state.pending[offset : offset + size]
        if offset + size < len(state.pending):
            return self.listing(request, what, chunk, {"s": state_id, "o": offset + size})
        self.sync_states.finish_round(state_id)
        link = self.link(
            request, {"$deltatoken": encode_cursor({"s": state_id})}, drop=("$skiptoken", "$filter", "$top")
        )
        return self.listing(request, what, chunk, delta=link)

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
        """The `$select`ed properties only (Graph adds no id unless asked; polymorphic items keep
        their `@odata.type`)."""
        if not fields:
            return item
        keep = {f.lower() for f in fields} | {"@odata.type"}
        return {k: v for k, v in item.items() if k.lower() in keep}

    def entity(self, request: Request, what: str, body: dict[str, Any], status: int = 200) -> Response:
        """A single object as Graph answers it: `@odata.context` ending in `/$entity` first."""
        return Response.json({"@odata.context": self.context(request, f"{what}/$entity"), **body}, status)

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

    def _time_range(self, request: Request, field: str) -> tuple[int, int, Any]:
        node = self.filter(request)
        start, end = time_bounds(node, field) if node is not None else (None, None)
        return start if start is not None else 0, end if end is not None else 1 << 62, node

    def visible_people(self) -> list[Person]:
        removed = self.state.removed_users
        return [p for p in self.tenant.people if p.index not in removed and p.created <= self.sim.now()]

    def user_object(
        self, person: Person, fields: list[str] | None = None, version: str = "v1.0"
    ) -> dict[str, Any]:
        """The user as Graph returns it: default properties, or exactly the `$select`ed ones
        (null or [] for properties the simulator does not model, such as assignedLicenses)."""
        body = self.full_user(
            person, bool(fields) and any(f.lower() == "signinactivity" for f in fields or [])
        )
        if fields:
            return schema.select(schema.USER, body, fields, version)
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
            last = last_ok = self.tenant.dormant_since(person)
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
                if record[2] in NONINTERACTIVE_KINDS:
                    continue
                last = last or record[0]
                if record[2] == "ok":
                    last_ok = record[0]
                    break
            end -= 2 * DAY
        self._last_signin[person.index] = (last, last_ok)
        return last, last_ok


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        out[key] = (
            merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out
