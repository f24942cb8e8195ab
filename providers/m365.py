"""Microsoft 365 / Entra: msal app-only tokens, requests sessions for Graph and the Management
Activity API, the read calls the collectors use, the recording write gateway remediation uses,
and the one mapping of Graph error answers onto :mod:`providers.errors`.

Config: ``authority`` (default ``https://login.microsoftonline.com/<tenant>``), ``client_id``,
``graph_base_url``, ``management_base_url``, optional ``ca_bundle`` and ``proxy``; secrets
``client_secret`` or ``certificate_key`` (+ ``certificate`` or ``certificate_thumbprint``).
msal refuses http authorities and, for hosts it does not know, would call Microsoft's instance
discovery: we switch that off for non-Microsoft hosts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlparse

import orjson
import requests

from core.models.connection import Connection
from providers.calls import CallLog, HttpCall
from providers.client_cache import CLIENTS
from providers.credentials import Secrets
from providers.errors import (
    AuthenticationFailed,
    ConnectionConfigError,
    MalformedResponse,
    NotFound,
    PermissionMissing,
    ProviderError,
    RequestRejected,
    StalePageToken,
    Throttled,
    TransientError,
    retry_after_seconds,
)
from providers.http import http_session, require
from providers.registry import ProviderSpec, register

if TYPE_CHECKING:
    from providers.registry import ReadContext

NAME = "m365"
MICROSOFT_AUTHORITY_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoftonline.us",
        "login.chinacloudapi.cn",
        "login.microsoft.com",
        "login.windows.net",
        "sts.windows.net",
    }
)
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
MANAGEMENT_SCOPE = "https://manage.office.com/.default"
DEFAULT_GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_MANAGEMENT_BASE_URL = "https://manage.office.com/api/v1.0"
# Token errors that mean "these credentials are wrong" rather than "try again later".
_FATAL_TOKEN_ERRORS = frozenset(
    {"invalid_client", "unauthorized_client", "invalid_request", "invalid_grant", "invalid_scope"}
)
GRAPH_REQUEST_ID_HEADERS = ("request-id", "client-request-id", "x-ms-request-id")
BATCH_REQUESTS = 20  # Graph's limit of requests in one JSON batch
# Write calls do not know which catalogue action they serve; the action's entry names the permission.
WRITE_PERMISSION = "the permission the remediation action names"


# --------------------------------------------------------------------------------------------
# Client factory: msal + requests sessions for Graph and the Management Activity API
# --------------------------------------------------------------------------------------------


def m365_authority(connection: Connection) -> str:
    authority = connection.config.get("authority") or f"https://login.microsoftonline.com/{connection.tenant}"
    if urlparse(authority).scheme != "https":
        raise ConnectionConfigError(
            f"connection {connection.name!r}: authority {authority!r} must be an https URL (msal refuses http)"
        )
    return str(authority).rstrip("/")


def _client_credential(connection: Connection, secrets: Secrets) -> str | dict[str, str]:
    if "client_secret" in secrets:
        return secrets["client_secret"]
    if "certificate_key" in secrets:
        credential = {"private_key": secrets["certificate_key"]}
        if "certificate" in secrets:
            credential["public_certificate"] = secrets["certificate"]
        thumbprint = connection.config.get("certificate_thumbprint")
        if thumbprint:
            credential["thumbprint"] = thumbprint
        if len(credential) == 1:
            raise ConnectionConfigError(
                f"connection {connection.name!r}: a certificate_key needs a 'certificate' secret or a "
                "'certificate_thumbprint' in config"
            )
        return credential
    raise ConnectionConfigError(
        f"connection {connection.name!r}: configure a 'client_secret' or 'certificate_key' secret reference"
    )


def msal_app(connection: Connection, secrets: Secrets, *, token_cache: Any = None) -> Any:
    """A ConfidentialClientApplication for the connection's app registration.

    A fresh instance has fresh throttle/discovery caches (msal keeps them per instance), which is
    why stream runs share one per connection (`entra_token_sources`).
    """
    import msal

    authority = m365_authority(connection)
    host = urlparse(authority).hostname or ""
    session = http_session(connection, retry_writes=True)  # token POSTs are safe to repeat
    kwargs: dict[str, Any] = {}
    if host not in MICROSOFT_AUTHORITY_HOSTS:
        kwargs["instance_discovery"] = False
    return msal.ConfidentialClientApplication(
        str(require(connection, "client_id")),
        client_credential=_client_credential(connection, secrets),
        authority=authority,
        http_client=session,
        token_cache=token_cache,
        **kwargs,
    )


class EntraTokenSource:
    """App-only tokens for one scope, refreshed on demand (after a 401) and safe across threads."""

    def __init__(
        self,
        app: Any,
        scope: str,
        *,
        connection_name: str = "",
        max_wait: float = 60.0,
        lock: threading.Lock | None = None,
        on_refused: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.scope = scope
        self.connection_name = connection_name
        self.max_wait = max_wait
        self._lock = lock or threading.Lock()  # token sources of one app share its lock
        self._on_refused = on_refused

    def token(self) -> str:
        deadline = time.monotonic() + self.max_wait
        delay = 0.5
        with self._lock:
            while True:
                try:
                    result = self.app.acquire_token_for_client(scopes=[self.scope])
                except (requests.RequestException, ValueError) as exc:
                    result = {"error": "transport", "error_description": f"{type(exc).__name__}: {exc}"}
                if result and "access_token" in result:
                    return str(result["access_token"])
                error = (result or {}).get("error", "no_token")
                description = str((result or {}).get("error_description", "")).splitlines()[:1]
                if error in _FATAL_TOKEN_ERRORS:
                    if self._on_refused is not None:
                        self._on_refused()
                    raise AuthenticationFailed(
                        f"connection {self.connection_name!r}: Entra refused the app's credentials "
                        f"({error}: {' '.join(description)}); check client_id, the secret and its expiry"
                    )
                if time.monotonic() + delay > deadline:
                    raise TransientError(
                        f"connection {self.connection_name!r}: no token for {self.scope} "
                        f"({error}: {' '.join(description)})"
                    )
                # msal replays a throttled answer from its cache until Retry-After has passed.
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def invalidate(self, refused: str | None = None) -> None:
        """Forget cached access tokens so the next call asks Entra for a new one; with `refused`,
        only that token (the app is shared: another request may already hold a newer one)."""
        import msal

        with self._lock:
            cache = self.app.token_cache
            for item in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                if refused is None or item.get("secret") == refused:
                    cache.remove_at(item)


class BearerAuth(requests.auth.AuthBase):
    """Adds the bearer token; on a 401 drops that token, gets a new one and re-sends the request.

    The token is shared by every stream of the connection (:mod:`providers.client_cache`), so the
    fresh token may itself be refused because another request found it expired meanwhile: the
    request is re-sent up to `RESENDS` times, each time with a token newer than the refused one."""

    RESENDS = 3

    def __init__(self, tokens: EntraTokenSource) -> None:
        self.tokens = tokens

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.tokens.token()}"
        request.register_hook("response", self._refresh)
        return request

    def _refresh(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        if response.status_code != 401 or getattr(response.request, "_tg_refreshed", False):
            return response
        for _ in range(self.RESENDS):
            refused = str(response.request.headers.get("Authorization", "")).removeprefix("Bearer ")
            self.tokens.invalidate(refused)
            retry = response.request.copy()
            retry._tg_refreshed = True  # type: ignore[attr-defined]
            retry.headers["Authorization"] = f"Bearer {self.tokens.token()}"
            response.content  # noqa: B018  (drain, so the connection goes back to the pool)
            response.raw.release_conn()
            sent = response.connection.send(retry, **kwargs)
            sent.history.append(response)
            sent.request = retry
            response = sent
            if response.status_code != 401:
                break
        return response


@dataclass(frozen=True)
class M365Clients:
    """Authenticated sessions for Graph and the Management Activity API, plus their base URLs."""

    graph: requests.Session
    management: requests.Session
    graph_base_url: str
    management_feed_url: str
    graph_tokens: EntraTokenSource
    management_tokens: EntraTokenSource


def management_feed_url(connection: Connection) -> str:
    base = str(connection.config.get("management_base_url") or DEFAULT_MANAGEMENT_BASE_URL).rstrip("/")
    if base.endswith("/activity/feed"):
        return base
    return f"{base}/{connection.tenant}/activity/feed"


def api_session(
    connection: Connection, tokens: EntraTokenSource, *, retry_writes: bool = False
) -> requests.Session:
    """A Graph/O365 session: bearer token with one refresh on 401, retries per `http_retry`."""
    session = http_session(connection, retry_writes=retry_writes)
    session.auth = BearerAuth(tokens)
    session.headers["Accept"] = "application/json"
    return session


def entra_token_sources(
    connection: Connection, secrets: Secrets
) -> tuple[EntraTokenSource, EntraTokenSource]:
    """The Graph and Management token sources of the connection's app, kept between runs
    (:mod:`providers.client_cache`): a run whose token is still valid asks Entra for nothing."""

    def build() -> tuple[EntraTokenSource, EntraTokenSource]:
        app = msal_app(connection, secrets)
        lock = threading.Lock()

        def refused() -> None:
            CLIENTS.forget(connection)

        return (
            EntraTokenSource(
                app, GRAPH_SCOPE, connection_name=connection.name, lock=lock, on_refused=refused
            ),
            EntraTokenSource(
                app, MANAGEMENT_SCOPE, connection_name=connection.name, lock=lock, on_refused=refused
            ),
        )

    return CLIENTS.get(connection, secrets, "m365.tokens", build)


def m365_clients(connection: Connection, secrets: Secrets, *, retry_writes: bool = False) -> M365Clients:
    """Sessions are new per call (cheap, and a `requests.Session` is not meant for many threads);
    the app and its tokens are the connection's cached ones."""
    graph_tokens, management_tokens = entra_token_sources(connection, secrets)
    return M365Clients(
        graph=api_session(connection, graph_tokens, retry_writes=retry_writes),
        management=api_session(connection, management_tokens, retry_writes=retry_writes),
        graph_base_url=str(connection.config.get("graph_base_url") or DEFAULT_GRAPH_BASE_URL).rstrip("/"),
        management_feed_url=management_feed_url(connection),
        graph_tokens=graph_tokens,
        management_tokens=management_tokens,
    )


# --------------------------------------------------------------------------------------------
# The one error mapping
# --------------------------------------------------------------------------------------------


def _error_text(response: requests.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("code", "")), str(error.get("message", ""))[:300]
    if isinstance(error, str):
        return error, str(body.get("error_description", ""))[:300]
    return "", str(body)[:200]


def error_for(response: requests.Response, *, connection: str, where: str, permission: str) -> ProviderError:
    """The typed error for a Graph / Management API answer of status >= 400."""
    status = response.status_code
    code, message = _error_text(response)
    if status == 429:
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        return Throttled(f"{connection}: {where} throttled (429 {code})", retry_after=retry_after)
    if status >= 500:
        return TransientError(f"{connection}: {where}: HTTP {status} {code}")
    if status == 401:
        return AuthenticationFailed(
            f"{connection}: {where} still answered 401 after a fresh token ({code}: {message}); "
            "check the app registration and its secret"
        )
    if status == 403:
        return PermissionMissing(
            f"{connection}: {where} refused (403 {code}: {message}); grant the application permission "
            f"{permission} and admin-consent it",
            permission=permission,
        )
    kind = NotFound if status == 404 else RequestRejected
    return kind(f"{connection}: {where}: HTTP {status} {code}: {message}", status=status, code=code)


# --------------------------------------------------------------------------------------------
# Read calls (collectors)
# --------------------------------------------------------------------------------------------


class M365Api:
    """Graph and Management Activity API reads with our error classes and retry policy."""

    def __init__(self, ctx: ReadContext, clients: M365Clients | None = None) -> None:
        self.ctx = ctx
        self.clients = clients or m365_clients(ctx.connection, ctx.secrets)
        self.name = ctx.connection.name

    # -- one request ----------------------------------------------------------------------------
    def _once(
        self,
        session: requests.Session,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        permission: str,
        json: Any = None,
    ) -> tuple[Any, requests.Response]:
        try:
            response = session.request(method, url, params=params, json=json)
        except (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise TransientError(f"{self.name}: {method} {url_path(url)}: {type(exc).__name__}") from exc
        except requests.exceptions.RetryError as exc:
            raise TransientError(f"{self.name}: {method} {url_path(url)}: retries exhausted ({exc})") from exc
        status = response.status_code
        if status < 300:
            if not response.content:
                return None, response
            try:
                return orjson.loads(response.content), response
            except ValueError:
                raise MalformedResponse(
                    f"{self.name}: {url_path(url)} returned a body that is not JSON (HTTP {status}, "
                    f"{len(response.content)} bytes)",
                    source=response.url,
                    body=response.text,
                ) from None
        raise error_for(response, connection=self.name, where=url_path(url), permission=permission)

    def request(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        permission: str,
        management: bool = False,
        method: str = "GET",
        expect: type | None = None,
        key: str | None = None,
        check: Any = None,
        json: Any = None,
    ) -> tuple[Any, requests.Response]:
        """One call under the retry policy (`json`: the body of a POST that only reads, such as a
        Graph batch); a body that is not the `expect`ed shape (with a list under `key`) counts as
        malformed, so it is re-read like unparseable JSON."""
        session = self.clients.management if management else self.clients.graph

        def call() -> tuple[Any, requests.Response]:
            body, response = self._once(session, method, url, params, permission, json)
            if expect is not None and not isinstance(body, expect):
                raise MalformedResponse(
                    f"{self.name}: {url_path(url)} answered {type(body).__name__}, not a JSON {expect.__name__}",
                    source=response.url,
                    body=response.text,
                )
            if key is not None and not isinstance(body.get(key), list):
                raise MalformedResponse(
                    f"{self.name}: {url_path(url)} page has no {key!r} list",
                    source=response.url,
                    body=response.text,
                )
            problem = check(body) if check is not None else None
            if problem:
                raise MalformedResponse(
                    f"{self.name}: {url_path(url)}: {problem}", source=response.url, body=response.text
                )
            return body, response

        return self.ctx.policy.run(call, on_wait=self.ctx.on_wait)

    def graph_url(self, path: str) -> str:
        return f"{self.clients.graph_base_url}/{path.lstrip('/')}"

    # -- Graph collections -----------------------------------------------------------------------
    def graph_page(
        self, path_or_link: str, params: Mapping[str, Any] | None, permission: str
    ) -> tuple[list[Any], str | None, str]:
        """One page of a Graph collection: (items, nextLink, source)."""
        url = (
            path_or_link if path_or_link.startswith(("http://", "https://")) else self.graph_url(path_or_link)
        )
        if params is None and not same_origin(url, self.clients.graph_base_url):
            raise StalePageToken(
                f"{self.name}: stored next link {url} does not point at {self.clients.graph_base_url}"
            )
        try:
            body, response = self.request(url, params=params, permission=permission, expect=dict, key="value")
        except RequestRejected as exc:
            if params is None and exc.status in (400, 404, 410):
                raise StalePageToken(f"{self.name}: next link no longer accepted ({exc})") from exc
            raise
        return body["value"], body.get("@odata.nextLink"), response.url

    def graph_all(self, path: str, params: Mapping[str, Any] | None, permission: str) -> Iterator[Any]:
        items, link, _ = self.graph_page(path, params, permission)
        yield from items
        yield from self._pages_after(link, permission)

    def _pages_after(self, link: str | None, permission: str) -> Iterator[Any]:
        """The items of the pages from `link` (an ``@odata.nextLink``) on."""
        while link:
            items, link, _ = self.graph_page(link, None, permission)
            yield from items

    def graph_collections(
        self, paths: Sequence[str], permission: str
    ) -> Iterator[tuple[str, list[Any] | None]]:
        """Every item of each path's collection, in the order of `paths`; None for a path the
        service answers 404 (no mailbox, no drive). The first pages of up to `BATCH_REQUESTS`
        paths go in one Graph JSON batch (``POST $batch``, saas-apis.md): one request instead of
        twenty. Further pages (``@odata.nextLink``), and every path the batch did not answer with
        a page or 404 (throttled 429, a 5xx, a malformed page, a refused batch), are asked
        alone, under the retry policy and error classes of a request of its own, so a batch
        never loses or repeats an item."""
        for start in range(0, len(paths), BATCH_REQUESTS):
            chunk = list(paths[start : start + BATCH_REQUESTS])
            answers = self._batch(chunk, permission)
            for index, path in enumerate(chunk):
                yield path, self._collection(path, answers.get(str(index)), permission)

    def _batch(self, paths: list[str], permission: str) -> dict[str, Any]:
        requests_ = [{"id": str(i), "method": "GET", "url": "/" + p.lstrip("/")} for i, p in enumerate(paths)]
        try:
            body, _ = self.request(
                self.graph_url("$batch"),
                method="POST",
                json={"requests": requests_},
                permission=permission,
                expect=dict,
                key="responses",
            )
        except (RequestRejected, MalformedResponse):  # no batching here: each path alone
            return {}
        return {str(a.get("id")): a for a in body["responses"] if isinstance(a, dict)}

    def _collection(self, path: str, answer: Mapping[str, Any] | None, permission: str) -> list[Any] | None:
        status = answer.get("status") if answer is not None else None
        page = answer.get("body") if answer is not None else None
        if status == 404:
            return None
        if status == 200 and isinstance(page, dict) and isinstance(page.get("value"), list):
            link = page.get("@odata.nextLink")
            return [*page["value"], *self._pages_after(str(link) if link else None, permission)]
        try:
            return list(self.graph_all(path, {}, permission))
        except NotFound:
            return None

    def graph_object(self, path: str, permission: str) -> Any:
        body, response = self.request(self.graph_url(path), permission=permission)
        if not isinstance(body, dict):
            raise MalformedResponse(
                f"{self.name}: {path} is not a JSON object", source=response.url, body=response.text
            )
        return body


def url_path(url: str) -> str:
    return urlparse(url).path


def same_origin(url: str, base: str) -> bool:
    a, b = urlparse(url), urlparse(base)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


# --------------------------------------------------------------------------------------------
# Write calls (remediation)
# --------------------------------------------------------------------------------------------


class GraphGateway:
    """Microsoft Graph over a ``requests.Session`` that already carries auth and retry rules."""

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        log: CallLog,
        *,
        timeout: float = 30,
        connection: str = "graph",
    ) -> None:
        self.session = session
        self.connection = connection
        self.base_url = base_url.rstrip("/")
        self.log = log
        self.timeout = timeout

    def url(self, path: str, params: dict[str, str] | None = None) -> str:
        url = f"{self.base_url}/{path.lstrip('/')}"
        return f"{url}?{urlencode(params)}" if params else url

    def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any] | None:
        url = self.url(path, params)
        response = self._send("GET", url)
        self.log.add(
            HttpCall("read", "GET", url, status=response.status_code, response_id=_graph_id(response))
        )
        if response.status_code == 404:
            return None
        self._raise_for(response, "GET", url)
        return response.json() if response.content else {}

    def list(self, path: str, params: dict[str, str] | None = None) -> list[dict[str, Any]] | None:
        """Every item of a collection, following ``@odata.nextLink``; None when the parent is missing."""
        page = self.get(path, params)
        if page is None:
            return None
        items = list(page.get("value", []))
        while page.get("@odata.nextLink"):
            url = page["@odata.nextLink"]
            response = self._send("GET", url)
            self.log.add(HttpCall("read", "GET", url, status=response.status_code))
            self._raise_for(response, "GET", url)
            page = response.json()
            items.extend(page.get("value", []))
        return items

    def write(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        url = self.url(path)
        if self.log.dry_run:
            self.log.add(HttpCall("write", method, url, body, sent=False))
            return {}
        response = self._send(method, url, json=body)
        self.log.add(HttpCall("write", method, url, body, response.status_code, _graph_id(response)))
        if method == "DELETE" and response.status_code == 404:
            # The target was there when inspected: a 404 now means an earlier (retried) attempt
            # removed it. The read-back decides.
            return {}
        self._raise_for(response, method, url)
        try:
            return response.json() if response.content else {}
        except ValueError:
            return {}

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:  # retries exhausted, connection refused, timeout
            raise TransientError(f"{self.connection}: {method} {url}: {type(exc).__name__}: {exc}") from exc

    def _raise_for(self, response: requests.Response, method: str, url: str) -> None:
        if response.status_code >= 400:
            raise error_for(
                response, connection=self.connection, where=f"{method} {url}", permission=WRITE_PERMISSION
            )


def open_gateway(connection: Connection, secrets: Secrets, log: CallLog) -> GraphGateway:
    """Write calls: same auth, TLS, timeouts and retries as the reads; writes retried because every
    catalogue action is idempotent."""
    clients = m365_clients(connection, secrets, retry_writes=True)
    return GraphGateway(clients.graph, clients.graph_base_url, log, connection=connection.name)


def _graph_id(response: requests.Response) -> str | None:
    for name in GRAPH_REQUEST_ID_HEADERS:
        if response.headers.get(name):
            return response.headers[name]
    return None


register(
    ProviderSpec(
        NAME,
        "Microsoft 365 / Entra ID",
        open_reader=M365Api,
        open_gateway=open_gateway,
        required_config=("client_id",),
        required_secrets=(("client_secret", "certificate_key"),),
    )
)
