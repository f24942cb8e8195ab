"""Request time limits: a request that has not started its answer within the limit gets a 503.

Handlers run in worker threads that cannot be interrupted, so the request is raced against the
clock in its own task: when the limit passes first the caller is answered at once and whatever
the handler still sends is dropped. A response that has started (a streamed export) is left to
finish. The work itself is bounded where it happens (parsers' node budgets, the connection
check's own deadline); this limit guarantees the caller an answer, and `serve` stops on SIGTERM
after its grace period whatever is still running (`cli.commands.serve`).
"""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem_response

log = logging.getLogger("tenantguard.api")

TIME_LIMIT_SLUG = "time-limit"


class TimeLimitMiddleware:
    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.seconds <= 0:
            await self.app(scope, receive, send)
            return
        started = answered = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:
                return  # the caller already has the time-limit answer
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        try:
            done, _ = await asyncio.wait({task}, timeout=self.seconds)
        except asyncio.CancelledError:  # the server is stopping and its grace period is over
            task.cancel()
            if not started:
                answered = True
                await _unavailable(scope, receive, send, "the server is stopping; retry in a moment")
            raise
        if task in done or started:
            await task
            return
        answered = True
        task.add_done_callback(_log_late_failure)
        log.warning(
            "%s %s: no answer within %s s; answered 503, the handler's late result is dropped",
            scope["method"],
            scope["path"],
            self.seconds,
        )
        await _unavailable(
            scope,
            receive,
            send,
            f"the request did not finish within {self.seconds:g} s "
            "(TENANTGUARD_API_REQUEST_TIME_LIMIT_SECONDS); try a narrower request or retry later",
        )


async def _unavailable(scope: Scope, receive: Receive, send: Send, detail: str) -> None:
    response = problem_response(
        Request(scope, receive),
        status=503,
        slug=TIME_LIMIT_SLUG,
        title="Request not finished",
        detail=detail,
        headers={"Retry-After": "30"},
    )
    await response(scope, receive, send)


def _log_late_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("a request answered after its time limit failed later: %r", task.exception())
