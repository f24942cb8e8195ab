"""Thin, recording wrappers around the official clients, one per provider, used by the actions.

An action talks to a gateway, never to a client: the gateway records every HTTP call it makes
(method, URL, body, status, the provider's request id) so that execution results name the exact
calls, and in dry-run mode it performs reads but only *records* writes. Reads of a missing object
return ``None``; any other error becomes :class:`ProviderCallFailed`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

import requests

from remediation.errors import ProviderCallFailed

GRAPH_REQUEST_ID_HEADERS = ("request-id", "client-request-id", "x-ms-request-id")


@dataclass(frozen=True)
class HttpCall:
    """One call to a SaaS API, as made (or, in a dry run, as it would be made)."""

    kind: str  # "read" or "write"
    method: str
    url: str
    body: Any = None
    status: int | None = None
    response_id: str | None = None
    sent: bool = True

    def describe(self) -> str:
        text = f"{self.method} {self.url}"
        if self.body not in (None, "", {}):
            body = self.body if isinstance(self.body, str) else json.dumps(self.body, sort_keys=True)
            text += f" {body}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "method": self.method,
            "url": self.url,
            "body": self.body,
            "status": self.status,
            "response_id": self.response_id,
            "sent": self.sent,
        }


@dataclass
class CallLog:
    """The calls one step made, in order."""

    dry_run: bool = False
    calls: list[HttpCall] = field(default_factory=list)

    def add(self, call: HttpCall) -> None:
        self.calls.append(call)

    @property
    def writes(self) -> list[HttpCall]:
        return [c for c in self.calls if c.kind == "write"]

    @property
    def response_ids(self) -> list[str]:
        return [c.response_id for c in self.calls if c.kind == "write" and c.response_id]


class Gateway(Protocol):
    log: CallLog


# --------------------------------------------------------------------------- Microsoft Graph


class GraphGateway:
    """Microsoft Graph over a ``requests.Session`` that already carries auth and retry rules."""

    def __init__(
        self, session: requests.Session, base_url: str, log: CallLog, *, timeout: float = 30
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.log = log
        self.timeout = timeout

    def url(self, path: str, params: dict[str, str] | None = None) -> str:
        url = f"{self.base_url}/{path.lstrip('/')}"
        return f"{url}?{urlencode(params)}" if params else url

    def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any] | None:
        url = self.url(path, params)
        response = self.session.get(url, timeout=self.timeout)
        self.log.add(
            HttpCall("read", "GET", url, status=response.status_code, response_id=_graph_id(response))
        )
        if response.status_code == 404:
            return None
        _raise_for_graph(response, "GET", url)
        return response.json() if response.content else {}

    def list(self, path: str, params: dict[str, str] | None = None) -> list[dict[str, Any]] | None:
        """Every item of a collection, following ``@odata.nextLink``; None when the parent is missing."""
        page = self.get(path, params)
        if page is None:
            return None
        items = list(page.get("value", []))
        while page.get("@odata.nextLink"):
            url = page["@odata.nextLink"]
            response = self.session.get(url, timeout=self.timeout)
            self.log.add(HttpCall("read", "GET", url, status=response.status_code))
            _raise_for_graph(response, "GET", url)
            page = response.json()
            items.extend(page.get("value", []))
        return items

    def write(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        url = self.url(path)
        if self.log.dry_run:
            self.log.add(HttpCall("write", method, url, body, sent=False))
            return {}
        response = self.session.request(method, url, json=body, timeout=self.timeout)
        self.log.add(HttpCall("write", method, url, body, response.status_code, _graph_id(response)))
        if method == "DELETE" and response.status_code == 404:
            # The target was there when inspected: a 404 now means an earlier (retried) attempt
            # removed it. The read-back decides.
            return {}
        _raise_for_graph(response, method, url)
        try:
            return response.json() if response.content else {}
        except ValueError:
            return {}


def _graph_id(response: requests.Response) -> str | None:
    for name in GRAPH_REQUEST_ID_HEADERS:
        if response.headers.get(name):
            return response.headers[name]
    return None


def _raise_for_graph(response: requests.Response, method: str, url: str) -> None:
    if response.status_code < 400:
        return
    code = message = ""
    try:
        error = response.json().get("error", {})
        code, message = error.get("code", ""), error.get("message", "")
    except ValueError:
        message = response.text[:200]
    raise ProviderCallFailed(
        f"{method} {url} failed: HTTP {response.status_code} {code} {message}".strip(),
        status=response.status_code,
        code=code or None,
    )


# --------------------------------------------------------------------------- Google Workspace


@dataclass(frozen=True)
class GoogleServices:
    """googleapiclient resources for the APIs remediation uses."""

    directory: Any
    drive: Any = None


class GoogleGateway:
    """Google Admin SDK Directory and Drive through googleapiclient request objects."""

    def __init__(self, services: GoogleServices, log: CallLog, *, num_retries: int = 3) -> None:
        self.services = services
        self.log = log
        self.num_retries = num_retries

    def get(self, build: Callable[[GoogleServices], Any]) -> dict[str, Any] | None:
        request = build(self.services)
        try:
            result, headers = self._execute(request)
        except ProviderCallFailed as exc:
            self.log.add(HttpCall("read", request.method, request.uri, status=exc.status))
            if exc.status == 404:
                return None
            raise
        self.log.add(
            HttpCall("read", request.method, request.uri, status=200, response_id=_google_id(headers))
        )
        return result or {}

    def write(self, build: Callable[[GoogleServices], Any]) -> dict[str, Any]:
        request = build(self.services)
        body = json.loads(request.body) if request.body else None
        if self.log.dry_run:
            self.log.add(HttpCall("write", request.method, request.uri, body, sent=False))
            return {}
        try:
            result, headers = self._execute(request)
        except ProviderCallFailed as exc:
            self.log.add(HttpCall("write", request.method, request.uri, body, exc.status))
            if request.method == "DELETE" and exc.status == 404:
                return {}  # gone already (see GraphGateway.write); the read-back decides
            raise
        response_id = _google_id(headers) or (result or {}).get("id")
        self.log.add(HttpCall("write", request.method, request.uri, body, 200, response_id))
        return result or {}

    def _execute(self, request: Any) -> tuple[dict[str, Any] | None, dict[str, str]]:
        from googleapiclient.errors import HttpError

        captured: dict[str, str] = {}
        original = request.postproc

        def keep_headers(resp: Any, content: Any) -> Any:
            captured.update({k.lower(): v for k, v in dict(resp).items()})
            return original(resp, content)

        request.postproc = keep_headers
        try:
            return request.execute(num_retries=self.num_retries), captured
        except HttpError as exc:
            raise ProviderCallFailed(
                f"{request.method} {request.uri} failed: HTTP {exc.status_code} {exc.reason}",
                status=exc.status_code,
                code=str(exc.reason),
            ) from None


def _google_id(headers: dict[str, str]) -> str | None:
    for name in ("x-goog-request-id", "x-request-id", "etag"):
        if headers.get(name):
            return headers[name]
    return None


# --------------------------------------------------------------------------- Slack

SLACK_MISSING = frozenset(
    {"user_not_found", "users_not_found", "file_not_found", "file_deleted", "not_found"}
)


class SlackGateway:
    """Slack Web API methods through slack_sdk ``WebClient`` objects, one per kind of token."""

    def __init__(self, clients: dict[str, Any], log: CallLog, *, team_id: str | None = None) -> None:
        self.clients = clients
        self.log = log
        self.team_id = team_id

    def _client(self, token: str) -> Any:
        try:
            return self.clients[token]
        except KeyError:
            raise ProviderCallFailed(
                f"the Slack connection has no {token} token; add one to the connection to run this action"
            ) from None

    def read(self, method: str, *, token: str = "admin", **params: Any) -> dict[str, Any] | None:
        client = self._client(token)
        url = f"{client.base_url}{method}"
        response, error = self._call(client, method, params)
        if error in SLACK_MISSING:
            self.log.add(HttpCall("read", "POST", url, params, 200))
            return None
        self.log.add(HttpCall("read", "POST", url, params, response.status_code if response else None))
        if error:
            raise ProviderCallFailed(f"Slack {method} failed: {error}", code=error)
        return dict(response.data)

    def write(self, method: str, *, token: str = "admin", **params: Any) -> dict[str, Any]:
        client = self._client(token)
        url = f"{client.base_url}{method}"
        if self.log.dry_run:
            self.log.add(HttpCall("write", "POST", url, params, sent=False))
            return {}
        response, error = self._call(client, method, params)
        status = response.status_code if response is not None else None
        response_id = response.headers.get("x-slack-req-id") if response is not None else None
        self.log.add(HttpCall("write", "POST", url, params, status, response_id))
        if error:
            raise ProviderCallFailed(f"Slack {method} failed: {error}", code=error)
        return dict(response.data)

    def read_all(self, method: str, key: str, *, token: str = "bot", **params: Any) -> list[dict[str, Any]]:
        """Every item of a cursor-paged method (e.g. users.list -> members)."""
        items: list[dict[str, Any]] = []
        cursor = ""
        while True:
            page = self.read(method, token=token, **params, **({"cursor": cursor} if cursor else {})) or {}
            items.extend(page.get(key, []))
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or ""
            if not cursor:
                return items

    def audit_logs(self, **params: Any) -> list[dict[str, Any]]:
        """Entries of the Audit Logs API (never raises on HTTP errors itself: we check the status)."""
        client = self._client("audit")
        response = client.logs(**params)
        url = f"{client.base_url}logs"
        self.log.add(HttpCall("read", "GET", url, params, response.status_code))
        if response.status_code != 200:
            raise ProviderCallFailed(
                f"Slack audit logs answered HTTP {response.status_code}", status=response.status_code
            )
        return list((response.body or {}).get("entries", []))

    @staticmethod
    def _call(client: Any, method: str, params: dict[str, Any]) -> tuple[Any, str | None]:
        from slack_sdk.errors import SlackApiError

        try:
            return client.api_call(method, params=params), None
        except SlackApiError as exc:
            return exc.response, str(exc.response.get("error", "unknown_error"))
