"""Cursor paging over event streams: opaque cursors, frozen `asof`, lag, late events, duplicates."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from simulator.render import render
from simulator.store import Window

if TYPE_CHECKING:
    from simulator.server import Simulator


def encode_cursor(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


def decode_cursor(text: str) -> dict[str, Any] | None:
    """The cursor's data, or None when it is not one of ours (the caller answers 400)."""
    try:
        value = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, TypeError):
        return None
    return value if isinstance(value, dict) else None


@dataclass
class Page:
    items: list[dict[str, Any]]
    next: dict[str, Any] | None  # cursor data for the next page, None at the end


def event_page(
    sim: Simulator,
    stream: str,
    window: Window,
    size: int,
    cursor: dict[str, Any] | None,
    predicate: Callable[[dict[str, Any]], bool] | None = None,
    path: str = "",
    keep: Callable[[Any], bool] | None = None,
) -> Page:
    """One page of a stream: items visible as of the cursor's frozen time, strictly after its position."""
    asof = int(cursor["a"]) if cursor else sim.now()
    after = (int(cursor["t"]), int(cursor["u"])) if cursor else None
    provider, resource = stream.split(":")
    lag = sim.world.scenario.lag.get(stream, 0)
    late = sim.faults.has_late()
    ctx = sim.world.ctx
    items: list[dict[str, Any]] = []
    last: tuple[int, int] | None = None
    if cursor and cursor.get("d") and sim.faults.duplicate(provider, resource, path, f"{stream}:{after}"):
        repeated = _record_at(sim, stream, window, after)
        if repeated is not None:
            items.append(render(ctx, stream, repeated))
    for record in sim.world.store.iterate(stream, window, after=after):
        visible_at = record[0] + lag + (sim.faults.late_delay(provider, resource, record[1]) if late else 0)
        if visible_at > asof or (keep is not None and not keep(record)):
            continue
        if predicate is None:  # this record is on the next page: no need to render it to know
            if len(items) >= size and last is not None:
                return Page(items, {"t": last[0], "u": last[1], "a": asof, "d": 1})
            body = render(ctx, stream, record)
        else:
            body = render(ctx, stream, record)
            if not predicate(body):
                continue
            if len(items) >= size and last is not None:
                return Page(items, {"t": last[0], "u": last[1], "a": asof, "d": 1})
        items.append(body)
        last = (record[0], record[1])
    return Page(items, None)


def _record_at(sim: Simulator, stream: str, window: Window, position: tuple[int, int] | None) -> Any:
    if position is None:
        return None
    ts, uid = position
    probe = Window(ts, ts + 1, window.descending, window.person)
    return next((r for r in sim.world.store.iterate(stream, probe) if r[1] == uid), None)
