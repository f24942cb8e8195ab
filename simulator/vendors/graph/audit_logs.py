"""Graph audit log streams: sign-ins, directory audits, risk detections and security alerts
(`security/alerts_v2`, by lastUpdateDateTime), time-windowed and cursor paged.

Sign-ins answer interactive ones only unless the filter names `signInEventTypes` (as the service
does); the filter is checked against what the reporting service supports, `$select` against the
resource's properties, and every item carries only the properties its version has.
"""

from __future__ import annotations

from collections.abc import Callable

from simulator.activity import Record
from simulator.http import Request, Response
from simulator.odata import AnyOf, Bool, equals_value, evaluate, time_bounds
from simulator.render.m365 import NONINTERACTIVE_KINDS
from simulator.store import Window
from simulator.vendors.graph.base import EVENT_STREAMS, GraphBase
from simulator.vendors.graph.schema import (
    DIRECTORY_AUDIT,
    RISK_DETECTION,
    SECURITY_ALERT,
    SIGN_IN,
    EntityType,
    check_filter,
    check_select,
    select,
    shape,
)
from simulator.vendors.paging import event_page

ENTITIES: dict[str, EntityType] = {
    "signins": SIGN_IN,
    "directory_audits": DIRECTORY_AUDIT,
    "risk_detections": RISK_DETECTION,
    "security_alerts": SECURITY_ALERT,
}


def _names_event_types(node: object) -> bool:
    """Whether the filter constrains signInEventTypes anywhere (then it decides the kinds)."""
    if isinstance(node, AnyOf):
        return node.path.lower() == "signineventtypes" or _names_event_types(node.body)
    if isinstance(node, Bool):
        return any(_names_event_types(n) for n in node.items)
    return False


def _interactive(record: Record) -> bool:
    return record[2] not in NONINTERACTIVE_KINDS


class AuditLogs(GraphBase):
    def events_handler(self, name: str) -> Callable[[Request], Response]:
        stream, time_field, what = EVENT_STREAMS[name]
        entity = ENTITIES[name]

        def handle(request: Request) -> Response:
            version = request.params["version"]
            node = self.filter(request)
            check_filter(entity, node, request.arg("$filter") or "")
            fields = self.select(request)
            check_select(entity, fields, version)
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
            keep = _interactive if name == "signins" and not _names_event_types(node) else None
            page = event_page(self.sim, stream, window, size, cursor, predicate, request.path, keep)
            items = [shape(entity, i, version) for i in page.items]
            if fields:
                items = [select(entity, i, fields, version) for i in items]
            return self.listing(request, what + (f"({','.join(fields)})" if fields else ""), items, page.next)

        return handle
