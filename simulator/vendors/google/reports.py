"""Admin SDK Reports: activities.list with time windows, reporting lag, eventName/filters, newest first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulator.http import Request, Response
from simulator.render.google import STREAM_OF_APPLICATION
from simulator.server import ApiError
from simulator.store import Window
from simulator.timestamps import DAY, parse_time
from simulator.vendors.paging import encode_cursor, event_page

if TYPE_CHECKING:
    pass
from simulator.vendors.google.base import (
    KNOWN_APPLICATIONS,
    PARAMETER_FILTER,
    GoogleBase,
    both,
    param_matches,
)


class Reports(GoogleBase):
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
        if app == "gmail":
            self._gmail_range(request)
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
            predicate = both(
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

    def _gmail_range(self, request: Request) -> None:
        """Gmail log events need both startTime and endTime, at most 30 days apart."""
        if not (request.arg("startTime") and request.arg("endTime")):
            raise ApiError(400, "invalid", "For Gmail requests, startTime and endTime must be provided")
        try:
            span = parse_time(request.arg("endTime") or "") - parse_time(request.arg("startTime") or "")
        except ValueError:
            return  # _time_range answers the malformed time
        if span > 30 * DAY:
            raise ApiError(
                400, "invalid", "For Gmail requests, the time range must not be greater than 30 days"
            )

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
        filters = [PARAMETER_FILTER.match(f) for f in (request.arg("filters") or "").split(",") if f.strip()]
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
            return not conditions or any(all(param_matches(e, *c) for c in conditions) for e in events)

        return keep
