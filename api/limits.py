"""Request body size limits, enforced before the body reaches a handler (413 problem+json).

A declared ``Content-Length`` over the limit is refused at once; a chunked body is counted as it
streams in and refused the moment it crosses the limit, so memory use stays bounded either way.
"""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PayloadTooLarge, problem_response


class BodyLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        upload_paths: frozenset[str] = frozenset(),
        max_upload_bytes: int,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_paths = upload_paths
        self.max_upload_bytes = max_upload_bytes

    def _limit_for(self, scope: Scope) -> int:
        return self.max_upload_bytes if scope.get("path") in self.upload_paths else self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _refuse(scope, receive, send, limit)
                    return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException passes through FastAPI's body reading untouched (-> 413 problem).
                    raise HTTPException(status_code=413, detail=_message(limit))
            return message

        await self.app(scope, counting_receive, send)


def _message(limit: int) -> str:
    return (
        f"the request body is larger than {limit} bytes; send less data (or split it into several requests)"
    )


async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    # Rendered here rather than raised: nothing below has run yet, so no handler would catch it.
    response = problem_response(
        Request(scope, receive),
        status=413,
        slug=PayloadTooLarge.slug,
        title=PayloadTooLarge.title,
        detail=_message(limit),
    )
    await response(scope, receive, send)


# A NUL escape in JSON: "\u0000" preceded by an even number of backslashes (an odd one escapes it).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


class NulByteMiddleware:
    """No input may carry a NUL character: PostgreSQL cannot store one in text (a 500 otherwise) and
    no name, filter or note needs one. Query strings and JSON bodies with one get a 422."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query or "\x00" in scope.get("path", ""):
            await _refuse_nul(scope, receive, send, "the query or path")
            return
        content_type = dict(scope.get("headers", ())).get(b"content-type", b"")
        if scope["method"] in ("GET", "HEAD", "OPTIONS") or b"json" not in content_type:
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        try:
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    break
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
        except HTTPException as exc:  # the body limit, raised outside FastAPI's handlers here
            response = problem_response(
                Request(scope, receive),
                status=exc.status_code,
                slug=PayloadTooLarge.slug,
                title=PayloadTooLarge.title,
                detail=exc.detail,
            )
            await response(scope, receive, send)
            return
        body = b"".join(chunks)
        if b"\x00" in body or _JSON_NUL.search(body):
            await _refuse_nul(scope, receive, send, "the JSON body")
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _refuse_nul(scope: Scope, receive: Receive, send: Send, where: str) -> None:
    response = problem_response(
        Request(scope, receive),
        status=422,
        slug="invalid-input",
        title="Invalid input",
        detail=f"{where} contains a NUL character (\\u0000); remove it",
    )
    await response(scope, receive, send)
