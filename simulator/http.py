"""HTTP plumbing: request/response values, a regex router, and threaded HTTP + HTTPS listeners.

The stdlib ThreadingHTTPServer with HTTP/1.1 keep-alive is enough: responses are JSON rendered by
orjson, and each connection gets its own thread. The TLS listener wraps sockets in the worker
thread so a slow handshake never blocks accept().
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    base_url: str  # scheme://host:port of this listener
    raw_query: str = ""
    batch: str | None = None  # the request id of the JSON batch this request came in (Graph $batch)
    route: Any = None
    params: dict[str, str] = field(default_factory=dict)
    _form: dict[str, Any] | None = None

    def arg(self, name: str, default: str | None = None) -> str | None:
        """A query-string or body argument (Slack sends either)."""
        values = self.query.get(name)
        if values:
            return values[0]
        value = self.form.get(name)
        return default if value is None else str(value) if not isinstance(value, str) else value

    @property
    def form(self) -> dict[str, Any]:
        """The body as a dict: JSON or form-urlencoded, whichever it is."""
        if self._form is None:
            self._form = parse_body(self.headers.get("content-type", ""), self.body)
        return self._form

    def json(self) -> Any:
        if not self.body:
            return {}
        return json.loads(self.body)

    @property
    def bearer(self) -> str | None:
        value = self.headers.get("authorization", "")
        if value[:7].lower() == "bearer ":
            return value[7:].strip()
        return None

    @property
    def url(self) -> str:
        return f"{self.base_url}{self.path}" + (f"?{self.raw_query}" if self.raw_query else "")


def parse_body(content_type: str, body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    if "json" in content_type:
        try:
            value = json.loads(body)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}
    return {
        k: v[0] if len(v) == 1 else v
        for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()
    }


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return cls(
            status,
            orjson.dumps(value),
            {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
        )

    @classmethod
    def empty(cls, status: int = 204, headers: dict[str, str] | None = None) -> Response:
        return cls(status, b"", dict(headers or {}))

    @classmethod
    def text(cls, value: str, status: int = 200) -> Response:
        return cls(status, value.encode(), {"Content-Type": "text/plain; charset=utf-8"})


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    methods: frozenset[str]
    pattern: re.Pattern[str]
    handler: Handler
    provider: str  # m365 | google | slack | sim
    resource: str  # a stream name or a resource name, used to scope faults
    auth: str  # which token kind the route needs ("" = none)


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(
        self, methods: str, pattern: str, handler: Handler, provider: str, resource: str, auth: str = ""
    ) -> None:
        self.routes.append(
            Route(frozenset(methods.split()), re.compile(pattern + r"/?$"), handler, provider, resource, auth)
        )

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, path params, whether the path exists with another method)."""
        other_method = False
        for route in self.routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            if method in route.methods:
                return route, {k: urllib.parse.unquote(v) for k, v in found.groupdict().items()}, False
            other_method = True
        return None, {}, other_method


class ServingStats:
    """What a listener spent answering vendor requests (``/_sim/`` excluded): requests, bytes sent,
    CPU time of the serving threads and their wall time from request to last byte written.
    Read through ``GET /_sim/stats`` (bench/e2e.py compares it with the collector's rate)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.bytes = 0
        self.cpu_seconds = 0.0
        self.busy_seconds = 0.0

    def add(self, sent: int, cpu: float, busy: float) -> None:
        with self._lock:
            self.requests += 1
            self.bytes += sent
            self.cpu_seconds += cpu
            self.busy_seconds += busy

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "bytes": self.bytes,
                "cpu_seconds": self.cpu_seconds,
                "busy_seconds": self.busy_seconds,
            }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], app: Callable[[Request], Response], tls: ssl.SSLContext | None
    ) -> None:
        self.app = app
        self.tls = tls
        self.stats = ServingStats()
        super().__init__(address, _RequestHandler)
        host, port = str(self.server_address[0]), int(self.server_address[1])
        self.base_url = f"{'https' if tls else 'http'}://{host}:{port}"

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls on small answers
    server: _Server
    _headers_buffer: list[bytes]  # BaseHTTPRequestHandler's (not in its stubs): _handle writes it once

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return

    def _handle(self) -> None:
        started, cpu_started = time.perf_counter(), time.thread_time()
        parsed = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=parsed.path,
            query=urllib.parse.parse_qs(parsed.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            base_url=self.server.base_url,
            raw_query=parsed.query,
        )
        response = self.server.app(request)
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            # headers and body in one write: one segment for small answers, no second wake-up
            self._headers_buffer.append(b"\r\n")  # what end_headers() adds before flushing
            if self.command != "HEAD":
                self._headers_buffer.append(response.body)
            self.flush_headers()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        if not request.path.startswith("/_sim"):
            self.server.stats.add(
                len(response.body), time.thread_time() - cpu_started, time.perf_counter() - started
            )

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class Listener:
    """One bound socket served by a background thread."""

    def __init__(
        self, app: Callable[[Request], Response], host: str, port: int, tls: ssl.SSLContext | None = None
    ) -> None:
        self.server = _Server((host, port), app, tls)
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"simulator-{'https' if tls else 'http'}",
        )

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def stats(self) -> ServingStats:
        return self.server.stats

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
