"""Graph audit log streams: sign-ins, directory audits, risk detections and security alerts
(`security/alerts_v2`, by lastUpdateDateTime), time-windowed and cursor paged.

Sign-ins answer interactive ones only unless the filter names `signInEventTypes` (as the service
does); the filter is checked against what the reporting service supports, `$select` against the
resource's properties, and every item carries only the properties its version has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simulator.activity import Record
from simulator.http import Request, Response
from simulator.odata import AnyOf, Bool, Compare, equals_value, evaluate, time_bounds
from simulator.render import render
from simulator.render.context import RenderContext
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


_WINDOW_OPS = frozenset({"ge", "gt", "lt", "le", "eq"})
# what a sign-in record decides without being rendered: its time (the store's window) and kind
_RECORD_DECIDED = frozenset({"createdDateTime", "signInEventTypes"})


def _time_clause(node: object, time_field: str) -> bool:
    """A comparison `time_bounds` turned into the store's window (so every record read meets it)."""
    if not isinstance(node, Compare) or node.path.lower() != time_field.lower() or node.op not in _WINDOW_OPS:
        return False
    return time_bounds(node, time_field) != (None, None)


def _event_types_clause(node: object) -> bool:
    return isinstance(node, AnyOf) and node.path.lower() == "signineventtypes"


def _renders_itself(record: Record) -> bool:
    """A raw record, or a story's overrides of what the record would decide: render to know."""
    if record[2] == "raw":
        return True
    extra = record[5]
    return len(extra) > 5 and bool(extra[5]) and not _RECORD_DECIDED.isdisjoint(extra[5])


def signin_filters(
    ctx: RenderContext, node: Any
) -> tuple[Callable[[Record], bool] | None, Callable[[dict[str, Any]], bool] | None]:
    """(keep, predicate) for a sign-ins `$filter`: what `keep` decides on the record (its kind;
    its time is the store's window) is not rendered, nor evaluated again on the rendered item;
    `predicate` tests the rest on the item. Same answers as evaluating the whole filter on every
    rendered item: a record whose item could say otherwise (raw, or a story overriding its time or
    kinds) is rendered and the whole filter evaluated."""
    if node is None:
        return _interactive, None
    items = node.items if isinstance(node, Bool) and node.op == "and" else (node,)
    kinds = [n for n in items if _event_types_clause(n)]
    rest = [n for n in items if not _event_types_clause(n) and not _time_clause(n, "createdDateTime")]
    if len(rest) == len(items):  # nothing decided on the record: as before
        return (_interactive if not _names_event_types(node) else None), lambda body: evaluate(node, body)
    named = _names_event_types(node)
    # a record's signInEventTypes is one of two values: the kinds clauses' answer for each
    accepts = {
        interactive: all(
            evaluate(n, {"signInEventTypes": ["interactiveUser" if interactive else "nonInteractiveUser"]})
            for n in kinds
        )
        for interactive in (True, False)
    }

    def keep(record: Record) -> bool:
        if _renders_itself(record):
            return (named or _interactive(record)) and evaluate(node, render(ctx, "m365:signins", record))
        return accepts[_interactive(record)] if named else _interactive(record)

    rest_node = rest[0] if len(rest) == 1 else Bool("and", tuple(rest))
    return keep, (lambda body: evaluate(rest_node, body)) if rest else None


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
            if name == "signins":
                keep, predicate = signin_filters(self.sim.world.ctx, node)
            else:
                predicate = (lambda body: evaluate(node, body)) if node is not None else None
                keep = None
            page = event_page(self.sim, stream, window, size, cursor, predicate, request.path, keep)
            items = [shape(entity, i, version) for i in page.items]
            if fields:
                items = [select(entity, i, fields, version) for i in items]
            return self.listing(request, what + (f"({','.join(fields)})" if fields else ""), items, page.next)

        return handle
