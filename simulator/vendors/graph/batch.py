"""JSON batching: ``POST /graph/{version}/$batch`` with up to 20 requests, each answered as if sent alone.

The body is ``{"requests": [{"id", "method", "url", "headers"?, "body"?}, ...]}`` with `url`
relative to the version root (``/users/{id}/mailFolders/inbox/messageRules`` or without the
leading slash); the answer is ``{"responses": [{"id", "status", "headers", "body"}, ...]}``. Each
request goes through the simulator's own dispatch with the batch's token, so it is authenticated,
logged and subject to faults (a throttled one answers 429 with Retry-After inside a 200 batch)
like a request of its own. Ids are case-insensitive and unique within a batch; more than 20
requests, a duplicate id or a request without id/method/url refuse the whole batch with 400, as
Graph does.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from simulator.http import Request, Response

if TYPE_CHECKING:
    from simulator.server import Simulator

MAX_REQUESTS = 20
# the headers a batch response carries over from each answer
KEPT_HEADERS = ("content-type", "retry-after", "location")


def batch_handler(sim: Simulator) -> Callable[[Request], Response]:
    from simulator.server import ApiError

    def refuse(message: str) -> ApiError:
        return ApiError(400, "BadRequest", message)

    def handle(request: Request) -> Response:
        try:
            payload = orjson.loads(request.body or b"{}")
        except orjson.JSONDecodeError:
            raise refuse("Invalid batch payload format.") from None
        items = payload.get("requests") if isinstance(payload, dict) else None
        if not isinstance(items, list) or not items:
            raise refuse("Invalid batch payload format: 'requests' must be a non-empty array.")
        if len(items) > MAX_REQUESTS:
            raise refuse(f"Number of batch requests exceeds the limit of {MAX_REQUESTS}.")
        seen: set[str] = set()
        for item in items:
            if not isinstance(item, dict) or not all(
                isinstance(item.get(k), str) for k in ("id", "method", "url")
            ):
                raise refuse("Invalid batch payload format: every request needs a string id, method and url.")
            if item["id"].lower() in seen:
                raise refuse(f"Batch request id {item['id']!r} is not unique.")
            seen.add(item["id"].lower())
        version = request.params["version"]
        token = {k: v for k, v in request.headers.items() if k == "authorization"}
        request.batch = request.batch or sim.request_id()
        return Response.json({"responses": [_answer(sim, request, version, token, item) for item in items]})

    return handle


def _answer(
    sim: Simulator, batch: Request, version: str, token: dict[str, str], item: dict[str, Any]
) -> dict[str, Any]:
    parsed = urllib.parse.urlsplit(item["url"])
    headers = {**token, **{str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}}
    body = orjson.dumps(item["body"]) if "body" in item else b""
    answer = sim(
        Request(
            method=item["method"].upper(),
            path=f"/graph/{version}/{parsed.path.lstrip('/')}",
            query=urllib.parse.parse_qs(parsed.query, keep_blank_values=True),
            headers=headers,
            body=body,
            base_url=batch.base_url,
            raw_query=parsed.query,
            batch=batch.batch,
        )
    )
    kept = {k: v for k, v in answer.headers.items() if k.lower() in KEPT_HEADERS}
    content: Any = None
    if answer.body:
        try:  # a JSON answer as JSON; anything else (or a body a fault cut short) as text
            content = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            content = answer.body.decode("utf-8", "replace")
    return {"id": item["id"], "status": answer.status, "headers": kept, "body": content}
