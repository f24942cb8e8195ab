"""Graph audit log streams: sign-ins, directory audits, risk detections (time-windowed, cursor paged)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from simulator.http import Request, Response
from simulator.odata import equals_value, evaluate, time_bounds
from simulator.render.m365 import BETA_SIGNIN_FIELDS
from simulator.store import Window
from simulator.vendors.paging import event_page

if TYPE_CHECKING:
    pass
from simulator.vendors.graph.base import EVENT_STREAMS, GraphBase


class AuditLogs(GraphBase):
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
