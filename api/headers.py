"""Response headers every API answer carries: no MIME sniffing, no caching of security data, never
framed, no referrer, same-origin only.

HTML (incident reports) additionally gets a Content-Security-Policy that forbids scripts and
remote content, so text that came from a SaaS tenant can never run in an analyst's browser.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_DOCS = ("/docs", "/redoc", "/docs/oauth2-redirect")


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("x-content-type-options", "nosniff")
                headers.setdefault("cache-control", "no-store")
                headers.setdefault("x-frame-options", "DENY")
                headers.setdefault("referrer-policy", "no-referrer")
                headers.setdefault("cross-origin-opener-policy", "same-origin")
                headers.setdefault("cross-origin-resource-policy", "same-origin")
                headers.setdefault("permissions-policy", "camera=(), microphone=(), geolocation=()")
                if headers.get("content-type", "").startswith("text/html") and scope["path"] not in _DOCS:
                    headers.setdefault(
                        "content-security-policy", "default-src 'none'; style-src 'unsafe-inline'"
                    )
            await send(message)

        await self.app(scope, receive, send_with_headers)
