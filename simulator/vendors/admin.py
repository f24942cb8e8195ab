"""/_sim/: introspection and control for tests and demos (not part of any vendor API).

GET  /_sim/info                      the connection info printed by `simulator serve`
GET  /_sim/truth                     ground truth JSON
GET  /_sim/faults    POST /_sim/faults {"spec": "429=0.1,..."}   current spec and counts of faults fired
GET  /_sim/changes                   every write call recorded (remediation)
GET  /_sim/requests?since=N          recent requests (method, path, status, fault)
GET  /_sim/events                    count + sha256 of provider ids for every stream
GET  /_sim/events/{provider}/{stream}?ids=1&visible=1   the same for one stream, optionally with the ids
GET  /_sim/clock     POST /_sim/clock {"advance": seconds}     simulator time (late events, lag, token expiry)
POST /_sim/tokens/expire {"vendor": "m365"|"google"}          expire issued access tokens now
POST /_sim/slack/app, /_sim/slack/interactions                  Slack button clicks (vendors/slack_interactivity.py)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simulator.admin_view import stream_digest
from simulator.conversations import CONVERSATION_STREAMS
from simulator.errors import FaultSpecError
from simulator.http import Request, Response
from simulator.store import EVENT_STREAMS
from simulator.timestamps import SECOND, graph_time

if TYPE_CHECKING:
    from simulator.server import Simulator


def register(sim: Simulator) -> None:
    add = sim.router.add
    add("GET", r"/_sim(?:/info)?", lambda r: Response.json(sim.info()), "sim", "info")
    add("GET", r"/_sim/truth", lambda r: Response.json(sim.world.truth()), "sim", "truth")
    add("GET POST", r"/_sim/faults", lambda r: _faults(sim, r), "sim", "faults")
    add(
        "GET",
        r"/_sim/changes",
        lambda r: Response.json([c.to_json() for c in list(sim.state.changes)]),
        "sim",
        "changes",
    )
    add("GET", r"/_sim/requests", lambda r: _requests(sim, r), "sim", "requests")
    add("GET", r"/_sim/events", lambda r: _all_events(sim, r), "sim", "events")
    add(
        "GET",
        r"/_sim/events/(?P<provider>\w+)/(?P<stream>\w+)",
        lambda r: _stream_events(sim, r),
        "sim",
        "events",
    )
    add("GET POST", r"/_sim/clock", lambda r: _clock(sim, r), "sim", "clock")
    add(
        "POST",
        r"/_sim/tokens/expire",
        lambda r: Response.json({"expired": sim.tokens.expire_all(r.form.get("vendor"))}),
        "sim",
        "tokens",
    )


def _faults(sim: Simulator, request: Request) -> Response:
    if request.method == "POST":
        spec = request.form.get("spec") if request.form else None
        if spec is None:
            spec = request.body.decode().strip()
        try:
            sim.set_faults(str(spec))
        except FaultSpecError as exc:
            return Response.json({"error": str(exc)}, 400)
    return Response.json({"spec": sim.faults.spec.text, "fired": dict(sim.faults.fired)})


def _requests(sim: Simulator, request: Request) -> Response:
    since = int(request.arg("since") or 0)
    items = list(sim.requests)
    return Response.json(items[since:] if since < len(items) else [])


def _all_events(sim: Simulator, request: Request) -> Response:
    visible = request.arg("visible") in ("1", "true")
    return Response.json(
        {"streams": {s: stream_digest(sim, s, visible) for s in EVENT_STREAMS + CONVERSATION_STREAMS}}
    )


def _stream_events(sim: Simulator, request: Request) -> Response:
    stream = f"{request.params['provider']}:{request.params['stream']}"
    if stream not in EVENT_STREAMS + CONVERSATION_STREAMS:
        return Response.json(
            {"error": f"unknown stream {stream}; streams: {', '.join(EVENT_STREAMS + CONVERSATION_STREAMS)}"},
            404,
        )
    return Response.json(
        stream_digest(
            sim, stream, request.arg("visible") in ("1", "true"), request.arg("ids") in ("1", "true")
        )
    )


def _clock(sim: Simulator, request: Request) -> Response:
    if request.method == "POST":
        body = request.form
        seconds = float(body.get("advance", body.get("advance_seconds", 0)))
        sim.clock_offset += int(seconds * SECOND)
    now = sim.now()
    return Response.json(
        {"now": graph_time(now), "now_epoch": now / SECOND, "offset_seconds": sim.clock_offset / SECOND}
    )
