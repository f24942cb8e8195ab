"""Office 365 Management Activity API: subscriptions, content blob listings (NextPageUri), blobs.

The unified audit stream is cut into hourly blobs per content type by *availability* time
(event time + lag + any late-arrival delay), so late events land in later blobs, as they do in
the real service; blobs become listable once their hour has passed.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from simulator.activity import Record
from simulator.http import Request, Response
from simulator.render import render
from simulator.render.m365 import record_content_type
from simulator.server import ApiError
from simulator.store import Window
from simulator.timestamps import DAY, HOUR, parse_time, to_datetime, ual_time
from simulator.vendors.paging import decode_cursor, encode_cursor

if TYPE_CHECKING:
    from simulator.server import Simulator

CONTENT_TYPES = (
    "Audit.AzureActiveDirectory",
    "Audit.Exchange",
    "Audit.SharePoint",
    "Audit.General",
    "DLP.All",
)
BUCKET = HOUR
STREAM = "m365:unified_audit"
FIRST_CONTENT = "m365:first_content"  # lag key: delay before a new subscription lists any blob


def register(sim: Simulator) -> None:
    api = ManagementApi(sim)
    base = r"/manage/api/v1\.0/(?P<tenant>[^/]+)/activity/feed"
    add = sim.router.add
    add("POST", base + r"/subscriptions/start", api.start, "m365", "management_subscriptions", "manage")
    add("POST", base + r"/subscriptions/stop", api.stop, "m365", "management_subscriptions", "manage")
    add(
        "GET",
        base + r"/subscriptions/list",
        api.list_subscriptions,
        "m365",
        "management_subscriptions",
        "manage",
    )
    add("GET", base + r"/subscriptions/content", api.content, "m365", "management_content", "manage")
    add("GET", base + r"/audit/(?P<content>[^/]+)", api.blob, "m365", "unified_audit", "manage")


class ManagementApi:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.world = sim.world
        # content type -> simulator time its subscription started; nothing is listed until
        # the scenario's `lag: {m365:first_content: 12h}` has passed since then (0 by default)
        self.started: dict[str, int] = {}
        self.first_content_delay = self.world.scenario.lag.get(FIRST_CONTENT, 0)

    def _tenant(self, request: Request) -> None:
        if request.params["tenant"] not in (self.sim.tenant.tenant_id, self.sim.tenant.domain):
            raise ApiError(
                400, "AF20010", f"The tenant ID {request.params['tenant']} is not valid for this token."
            )

    def _content_type(self, request: Request) -> str:
        value = request.arg("contentType") or ""
        if value not in CONTENT_TYPES:
            raise ApiError(
                400,
                "AF20023",
                f"The specified content type is not valid: '{value}'. Valid: {', '.join(CONTENT_TYPES)}.",
            )
        return value

    def start(self, request: Request) -> Response:
        """Starting an enabled subscription is refused (AF20024) unless the webhook changes, as
        the service does; the start time decides when the first content blobs appear."""
        self._tenant(request)
        content = self._content_type(request)
        body = request.json() if request.body else {}
        webhook = body.get("webhook") if isinstance(body, dict) else None
        state = self.sim.state
        with state.lock:
            current = state.subscriptions.get(content)
            if current is not None and current.get("webhook") == webhook:
                raise ApiError(400, "AF20024", "The subscription is already enabled. No property change.")
            state.subscriptions[content] = {"contentType": content, "status": "enabled", "webhook": webhook}
            if current is None:
                self.started[content] = self.sim.now()
            return Response.json(state.subscriptions[content])

    def stop(self, request: Request) -> Response:
        self._tenant(request)
        content = self._content_type(request)
        with self.sim.state.lock:
            self.sim.state.subscriptions.pop(content, None)
            self.started.pop(content, None)
        return Response.empty(204)

    def list_subscriptions(self, request: Request) -> Response:
        self._tenant(request)
        with self.sim.state.lock:
            return Response.json(list(self.sim.state.subscriptions.values()))

    def content(self, request: Request) -> Response:
        self._tenant(request)
        content = self._content_type(request)
        if content not in self.sim.state.subscriptions:
            raise ApiError(
                400,
                "AF20022",
                f"No subscription found for the specified content type: {content}. Start one first.",
            )
        now = self.sim.now()
        start_text, end_text = request.arg("startTime"), request.arg("endTime")
        if bool(start_text) != bool(end_text):
            raise ApiError(400, "AF20003", "Both startTime and endTime must be given, or neither.")
        try:
            start = parse_time(start_text) if start_text else now - DAY
            end = parse_time(end_text) if end_text else now
        except ValueError:
            raise ApiError(
                400, "AF20003", f"startTime/endTime are not valid date-times: {start_text!r}, {end_text!r}."
            ) from None
        if end <= start or end - start > DAY:
            raise ApiError(
                400,
                "AF20055",
                "startTime and endTime must be no more than 24 hours apart, with startTime before endTime.",
            )
        if start < now - 7 * DAY - HOUR:
            raise ApiError(400, "AF20055", "Start time cannot be more than 7 days in the past.")
        started = self.started.get(content)
        if started is not None and now < started + self.first_content_delay:
            return Response.json([])  # a new subscription: the first blobs are still being prepared
        cursor = decode_cursor(request.arg("nextPage") or "") if request.arg("nextPage") else None
        asof = int(cursor["a"]) if cursor else now
        first_bucket = int(cursor["b"]) if cursor else -(-start // BUCKET) * BUCKET - BUCKET
        blobs: list[dict[str, Any]] = []
        bucket = first_bucket
        size = self.sim.paging.management_blobs
        while bucket < end and len(blobs) < size:
            created = bucket + BUCKET
            if start <= created < end and created <= asof and self._has_records(content, bucket, asof):
                blobs.append(self._blob(request, content, bucket))
            bucket += BUCKET
        headers = {}
        if bucket < end and len(blobs) >= size:
            query = {k: v[0] for k, v in request.query.items() if k != "nextPage"}
            query["nextPage"] = encode_cursor({"b": bucket, "a": asof})
            headers["NextPageUri"] = f"{request.base_url}{request.path}?{urllib.parse.urlencode(query)}"
        return Response.json(blobs, headers=headers)

    def _blob(self, request: Request, content: str, bucket: int) -> dict[str, Any]:
        content_id = self._content_id(content, bucket)
        return {
            "contentType": content,
            "contentId": content_id,
            "contentUri": f"{request.base_url}/manage/api/v1.0/{self.sim.tenant.tenant_id}/activity/feed/audit/{content_id}",
            "contentCreated": ual_time(bucket + BUCKET) + ".000Z",
            "contentExpiration": ual_time(bucket + BUCKET + 7 * DAY) + ".000Z",
        }

    @staticmethod
    def _content_id(content: str, bucket: int) -> str:
        stamp = to_datetime(bucket).strftime("%Y%m%d%H%M%S") + "000000000"
        short = content.replace(".", "_")
        return f"{stamp}${stamp}${short.lower()}${short}$sim{bucket // BUCKET}"

    def _records(self, content: str, bucket: int, asof: int) -> list[dict[str, Any]]:
        """The records whose availability falls in this hour, for one content type."""
        ctx = self.world.ctx
        return [
            render(ctx, STREAM, r)
            for r in self._available(bucket, asof)
            if record_content_type(ctx, r) == content
        ]

    def _has_records(self, content: str, bucket: int, asof: int) -> bool:
        """Whether this hour has a blob of this content type (a listing names only those)."""
        ctx = self.world.ctx
        return any(record_content_type(ctx, r) == content for r in self._available(bucket, asof))

    def _available(self, bucket: int, asof: int) -> Iterator[Record]:
        """The stream's records whose availability falls in this hour (every content type)."""
        lag = self.world.scenario.lag.get(STREAM, 0)
        late = self.sim.faults.has_late()
        max_late = max([int((r.arg or 3600) * 1_000_000) for r in self.sim.faults.spec.rule("late")] or [0])
        window = Window(bucket - lag - max_late, bucket + BUCKET, descending=False)
        for record in self.world.store.iterate(STREAM, window):
            available = (
                record[0]
                + lag
                + (self.sim.faults.late_delay("m365", "unified_audit", record[1]) if late else 0)
            )
            if bucket <= available < bucket + BUCKET and available <= asof:
                yield record

    def blob(self, request: Request) -> Response:
        self._tenant(request)
        content_id = request.params["content"]
        try:
            parts = content_id.split("$")
            content = parts[3].replace("_", ".", 1)
            bucket = int(parts[4].removeprefix("sim")) * BUCKET
        except (IndexError, ValueError):
            raise ApiError(
                404,
                "AF20051",
                f"Content requested with the key {content_id} has already expired or does not exist.",
            ) from None
        if content not in CONTENT_TYPES or bucket + BUCKET > self.sim.now():
            raise ApiError(
                404,
                "AF20051",
                f"Content requested with the key {content_id} has already expired or does not exist.",
            )
        return Response.json(self._records(content, bucket, self.sim.now()))
