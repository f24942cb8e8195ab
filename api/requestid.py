"""Request ids: taken from a well-formed ``X-Request-ID`` header or made up, echoed on every response.

The id is stored in the ASGI scope (so error handlers outside the middleware stack still see it)
and in a context variable (so log records and audit records can carry it).
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
_SCOPE_KEY = "tenantguard.request_id"
# Accept a caller's id only when it is short and plain, so it cannot smuggle anything into logs.
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
current_request_id: ContextVar[str | None] = ContextVar("tenantguard_request_id", default=None)


def request_id_of(scope: Scope | dict[str, Any]) -> str | None:
    return scope.get(_SCOPE_KEY)


def _choose(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _ACCEPTABLE.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _choose(scope)
        scope[_SCOPE_KEY] = request_id
        token = current_request_id.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current_request_id.reset(token)
