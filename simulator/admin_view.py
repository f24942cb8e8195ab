"""What /_sim/events and the test handle report about a stream: provider ids, count, digest."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from simulator.conversations import CONVERSATION_STREAMS
from simulator.render import event_ids
from simulator.store import EVENT_STREAMS

if TYPE_CHECKING:
    from simulator.server import Simulator


def stream_ids(sim: Simulator, stream: str, visible: bool) -> list[str]:
    """Provider ids of a stream; with `visible`, only those a client could read now (lag, late events)."""
    if stream in CONVERSATION_STREAMS:
        return [m.provider_id for m in sim.world.conversations.all_messages(stream)]
    now = sim.now()
    provider, resource = stream.split(":")
    lag = sim.world.scenario.lag.get(stream, 0)
    late = sim.faults.has_late()
    ids: list[str] = []
    for record in sim.world.store.all_records(stream):
        if (
            visible
            and record[0] + lag + (sim.faults.late_delay(provider, resource, record[1]) if late else 0) > now
        ):
            continue
        ids.extend(event_ids(sim.world.ctx, stream, record))
    return ids


def digest(ids: list[str]) -> dict[str, Any]:
    ordered = sorted(ids)
    return {
        "count": len(ids),
        "distinct": len(set(ids)),
        "sha256": hashlib.sha256("\n".join(ordered).encode()).hexdigest(),
    }


def stream_digest(
    sim: Simulator, stream: str, visible: bool = False, with_ids: bool = False
) -> dict[str, Any]:
    if stream not in EVENT_STREAMS + CONVERSATION_STREAMS:
        raise KeyError(
            f"unknown stream {stream!r}; streams: {', '.join(EVENT_STREAMS + CONVERSATION_STREAMS)}"
        )
    ids = stream_ids(sim, stream, visible)
    body = {"stream": stream, **digest(ids)}
    if with_ids:
        body["ids"] = ids
    return body
