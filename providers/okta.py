"""Okta: a requests session with SSWS or OAuth 2.0 (private_key_jwt) auth, the read calls the
collectors use, the recording write gateway remediation uses, and the one mapping of Okta's
error answers onto :mod:`providers.errors`.

Why plain HTTP rather than the ``okta`` SDK: the SDK is asyncio-only (aiohttp) and brings its own
retry and rate-limit loop, while every reader here is synchronous and runs under the caller's
retry policy; Okta's REST API is small and documented (``Link: rel="next"`` paging, the System
Log's ``since``/``until``/``after``, ``X-Rate-Limit-*`` headers), so requests + PyJWT (for the
client assertion) is the smaller, better-tested path.

Config: ``org_url`` (``https://acme.okta.com``), optional ``client_id`` and ``scopes`` for a
service app, ``ca_bundle``, ``timeout``. Secrets: ``api_token`` (``Authorization: SSWS …``) or
``private_key`` (PEM of the service app's key; the token endpoint is ``{org_url}/oauth2/v1/token``).
A 429 waits until ``X-Rate-Limit-Reset`` (epoch seconds, measured against the answer's ``Date``).
"""

from __future__ import annotations

import email.utils
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from core.models.connection import Connection
from providers.calls import CallLog, HttpCall
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
)
from providers.http import DEFAULT_RETRIES, TimeoutSession, require, timeout_of
from providers.registry import ProviderSpec, register

if TYPE_CHECKING:
    from providers.registry import ReadContext

NAME = "okta"
T = TypeVar("T")
DEFAULT_SCOPES = (
    "okta.logs.read",
    "okta.users.read",
    "okta.groups.read",
    "okta.apps.read",
    "okta.roles.read",
    "okta.policies.read",
    "okta.apiTokens.read",
    "okta.threatInsights.read",
)
WRITE_SCOPES = ("okta.users.manage", "okta.roles.manage", "okta.apiTokens.manage")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
WRITE_PERMISSION = "the scope the remediation action names"


# --------------------------------------------------------------------------------------------
# Client factory
# --------------------------------------------------------------------------------------------


class OktaAuth(requests.auth.AuthBase):
    """``SSWS <api token>``, or a bearer token from the org authorization server got with a
    signed client assertion (RS256, iss = sub = client id, aud = the token URL, a fresh jti)."""

    def __init__(
        self, connection: Connection, secrets: Secrets, session: requests.Session, scopes: tuple[str, ...]
    ) -> None:
        self.connection = connection
        self.secrets = secrets
        self.session = session
        self.scopes = scopes
        self.org_url = str(require(connection, "org_url")).rstrip("/")
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()
        if "api_token" not in secrets and "private_key" not in secrets:
            raise ConnectionConfigError(
                f"connection {connection.name!r}: Okta needs secret api_token or private_key"
            )

    @property
    def uses_api_token(self) -> bool:
        return "api_token" in self.secrets

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.uses_api_token:
            request.headers["Authorization"] = f"SSWS {self.secrets['api_token']}"
        else:
            request.headers["Authorization"] = f"Bearer {self.access_token()}"
        return request

    def forget(self) -> None:
        """After a refused credential: resolve the secret again (it may be rotated), new token."""
        with self._lock:
            self._token = None
        self.secrets.forget("api_token" if self.uses_api_token else "private_key")

    def access_token(self) -> str:
        import jwt

        with self._lock:
            if self._token is not None and self._token[1] > time.time() + 60:
                return self._token[0]
            client_id = str(require(self.connection, "client_id"))
            token_url = f"{self.org_url}/oauth2/v1/token"
            now = int(time.time())
            assertion = jwt.encode(
                {
                    "iss": client_id,
                    "sub": client_id,
                    "aud": token_url,
                    "iat": now,
                    "exp": now + 300,
                    "jti": uuid.uuid4().hex,
                },
                self.secrets["private_key"],
                algorithm="RS256",
                headers={"kid": str(self.connection.config.get("key_id") or "")}
                if self.connection.config.get("key_id")
                else None,
            )
            try:
                response = self.session.post(
                    token_url,
                    data={
                        "grant_type": "client_credentials",
                        "scope": " ".join(self.scopes),
                        "client_assertion_type": ASSERTION_TYPE,
                        "client_assertion": assertion,
                    },
                    headers={"Accept": "application/json"},
                    auth=_unauthenticated,  # not the session's own auth: that is this method
                )
            except requests.RequestException as exc:
                raise TransientError(
                    f"{self.connection.name}: Okta token endpoint: {type(exc).__name__}: {exc}"
                ) from exc
            body = _json(response)
            if response.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
                problem = (
                    body.get("error_description") or body.get("error")
                    if isinstance(body, dict)
                    else response.text[:200]
                )
                if response.status_code >= 500 or response.status_code == 429:
                    raise error_for(
                        response, connection=self.connection.name, where="token endpoint", permission=""
                    )
                if isinstance(body, dict) and body.get("error") == "invalid_scope":
                    raise PermissionMissing(
                        f"{self.connection.name}: the Okta service app is not granted {' '.join(self.scopes)} ({problem})",
                        permission=" ".join(self.scopes),
                    )
                raise AuthenticationFailed(
                    f"{self.connection.name}: Okta refused the client assertion ({problem})"
                )
            self._token = (str(body["access_token"]), time.time() + float(body.get("expires_in", 3600)))
            return self._token[0]


def _unauthenticated(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


def okta_session(
    connection: Connection, secrets: Secrets, *, scopes: tuple[str, ...] | None = None
) -> tuple[TimeoutSession, OktaAuth]:
    """A session for one Okta org: connection errors retried by urllib3; 429 and 5xx are left to
    the caller's retry policy (Okta sends no Retry-After: the wait comes from X-Rate-Limit-Reset)."""
    session = TimeoutSession(timeout_of(connection))
    ca_bundle = connection.config.get("ca_bundle")
    if ca_bundle:
        session.trust_env = False
        session.verify = ca_bundle
    proxy = connection.config.get("proxy")
    if proxy:
        session.proxies = {"http": proxy, "https": proxy}
    retry = Retry(
        total=DEFAULT_RETRIES,
        connect=DEFAULT_RETRIES,
        read=2,
        status=0,
        backoff_factor=0.5,
        raise_on_status=False,
    )
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["Accept"] = "application/json"
    chosen = tuple(scopes or connection.config.get("scopes") or DEFAULT_SCOPES)
    auth = OktaAuth(connection, secrets, session, chosen)
    session.auth = auth
    return session, auth


# --------------------------------------------------------------------------------------------
# The one error mapping
# --------------------------------------------------------------------------------------------


def _json(response: requests.Response) -> Any:
    try:
        return response.json() if response.content else {}
    except ValueError:
        return None


def rate_limit_wait(headers: Mapping[str, str], now: float | None = None) -> float:
    """Seconds until X-Rate-Limit-Reset, measured against the answer's Date (clock skew safe)."""
    reset = headers.get("X-Rate-Limit-Reset")
    if reset is None:
        return 1.0
    try:
        reference = now
        if headers.get("Date"):
            parsed = email.utils.parsedate_to_datetime(headers["Date"])
            reference = parsed.timestamp()
        return max(0.0, min(float(reset) - (reference if reference is not None else time.time()), 300.0))
    except (TypeError, ValueError):
        return 1.0


def error_for(response: requests.Response, *, connection: str, where: str, permission: str) -> ProviderError:
    """The typed error for an Okta answer of status >= 400 (body: errorCode, errorSummary, …)."""
    status = response.status_code
    body = _json(response)
    code = str(body.get("errorCode", "")) if isinstance(body, dict) else ""
    summary = str(body.get("errorSummary", "")) if isinstance(body, dict) else ""
    if status == 429:
        return Throttled(
            f"{connection}: {where} rate limited ({code})", retry_after=rate_limit_wait(response.headers)
        )
    if status >= 500:
        return TransientError(f"{connection}: {where}: HTTP {status} {code}".rstrip())
    if body is None:
        return MalformedResponse(
            f"{connection}: {where} answered a body that is not JSON", source=where, body=response.text
        )
    if status == 401:
        return AuthenticationFailed(
            f"{connection}: Okta refused the credential for {where} ({summary or status})"
        )
    if status == 403:
        challenge = response.headers.get("WWW-Authenticate", "")
        needed = challenge.split('scope="', 1)[1].split('"', 1)[0] if 'scope="' in challenge else permission
        return PermissionMissing(
            f"{connection}: {where} refused ({summary or code}); grant {needed}", permission=needed
        )
    kind = NotFound if status == 404 else RequestRejected
    return kind(f"{connection}: {where}: {summary or f'HTTP {status}'}", status=status, code=code)


# --------------------------------------------------------------------------------------------
# Read calls (collectors)
# --------------------------------------------------------------------------------------------


class OktaApi:
    """Okta REST reads with our error classes and the caller's retry policy."""

    def __init__(self, ctx: ReadContext) -> None:
        self.ctx = ctx
        self.name = ctx.connection.name
        self.session, self.auth = okta_session(ctx.connection, ctx.secrets)
        self.org_url = self.auth.org_url

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.org_url}/{path.lstrip('/')}"

    def request(
        self, path: str, params: Mapping[str, Any] | None, *, permission: str, expect: type = list
    ) -> tuple[Any, requests.Response]:
        """One GET under the retry policy; a body not of the `expect`ed shape is malformed (re-read)."""
        url = self.url(path)

        def once() -> tuple[Any, requests.Response]:
            try:
                response = self.session.get(url, params=params)
            except requests.RequestException as exc:
                raise TransientError(f"{self.name}: GET {url}: {type(exc).__name__}: {exc}") from exc
            if response.status_code >= 400:
                raise error_for(
                    response, connection=self.name, where=f"GET {url.split('?')[0]}", permission=permission
                )
            body = _json(response)
            if not isinstance(body, expect):
                what = (
                    "a body that is not JSON"
                    if body is None
                    else f"{type(body).__name__}, not a JSON {expect.__name__}"
                )
                raise MalformedResponse(
                    f"{self.name}: {url.split('?')[0]} answered {what}",
                    source=response.url,
                    body=response.text,
                )
            return body, response

        return self._reauthenticating(once)

    def _reauthenticating(self, call: Callable[[], T]) -> T:
        try:
            return self.ctx.policy.run(call, on_wait=self.ctx.on_wait)
        except AuthenticationFailed:
            self.auth.forget()
            return self.ctx.policy.run(call, on_wait=self.ctx.on_wait)

    def page(
        self, path_or_link: str, params: Mapping[str, Any] | None, *, permission: str
    ) -> tuple[list[Any], str | None, str]:
        """One page: (items, the rel="next" link or None, source)."""
        if params is None and not path_or_link.startswith(self.org_url):
            raise StalePageToken(
                f"{self.name}: stored next link {path_or_link} does not point at {self.org_url}"
            )
        try:
            body, response = self.request(path_or_link, params, permission=permission)
        except RequestRejected as exc:
            if params is None and exc.status in (400, 404):
                raise StalePageToken(f"{self.name}: next link no longer accepted ({exc})") from exc
            raise
        link = (response.links.get("next") or {}).get("url")
        return body, link, response.url.split("?")[0]

    def all(self, path: str, params: Mapping[str, Any] | None, *, permission: str) -> Iterator[Any]:
        items, link, _ = self.page(path, params, permission=permission)
        yield from items
        while link and not self.ctx.probe:
            items, link, _ = self.page(link, None, permission=permission)
            yield from items

    def object(
        self, path: str, params: Mapping[str, Any] | None = None, *, permission: str
    ) -> dict[str, Any]:
        body, _ = self.request(path, params, permission=permission, expect=dict)
        return body


# --------------------------------------------------------------------------------------------
# Write calls (remediation)
# --------------------------------------------------------------------------------------------


class OktaGateway:
    """Okta REST calls for remediation, each recorded in the call log (writes only recorded in a dry run)."""

    def __init__(
        self,
        session: requests.Session,
        org_url: str,
        log: CallLog,
        *,
        connection: str = "okta",
        retries: int = 4,
    ) -> None:
        self.session = session
        self.org_url = org_url.rstrip("/")
        self.log = log
        self.connection = connection
        self.retries = retries

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One call; 429 waits until the rate-limit reset and 5xx backs off, a few times."""
        for attempt in range(self.retries + 1):
            try:
                response = self.session.request(method, url, **kwargs)
            except requests.RequestException as exc:
                raise TransientError(
                    f"{self.connection}: {method} {url}: {type(exc).__name__}: {exc}"
                ) from exc
            if attempt < self.retries and (response.status_code == 429 or response.status_code >= 500):
                time.sleep(
                    rate_limit_wait(response.headers) if response.status_code == 429 else 0.5 * 2**attempt
                )
                continue
            return response
        return response

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """The JSON at `path`; None when Okta answers 404; links followed for lists."""
        url = f"{self.org_url}/{path.lstrip('/')}"
        response = self._send("GET", url, params=params)
        self.log.add(
            HttpCall(
                "read",
                "GET",
                response.url,
                status=response.status_code,
                response_id=response.headers.get("X-Okta-Request-Id"),
            )
        )
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise error_for(
                response, connection=self.connection, where=f"GET {url}", permission=WRITE_PERMISSION
            )
        body = _json(response)
        if isinstance(body, list):
            link = (response.links.get("next") or {}).get("url")
            while link:
                page = self._send("GET", link)
                self.log.add(HttpCall("read", "GET", link, status=page.status_code))
                if page.status_code >= 400:
                    raise error_for(
                        page, connection=self.connection, where=f"GET {link}", permission=WRITE_PERMISSION
                    )
                body.extend(_json(page) or [])
                link = (page.links.get("next") or {}).get("url")
        return body

    def write(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        url = f"{self.org_url}/{path.lstrip('/')}"
        if self.log.dry_run:
            self.log.add(HttpCall("write", method, url, params, sent=False))
            return {}
        response = self._send(method, url, params=params)
        self.log.add(
            HttpCall(
                "write", method, url, params, response.status_code, response.headers.get("X-Okta-Request-Id")
            )
        )
        if method == "DELETE" and response.status_code == 404:
            return {}  # removed by an earlier (retried) attempt; the read-back decides
        if response.status_code >= 400:
            raise error_for(
                response, connection=self.connection, where=f"{method} {url}", permission=WRITE_PERMISSION
            )
        return _json(response) or {}


def open_gateway(connection: Connection, secrets: Secrets, log: CallLog) -> OktaGateway:
    scopes = tuple(connection.config.get("scopes") or DEFAULT_SCOPES) + WRITE_SCOPES
    session, auth = okta_session(connection, secrets, scopes=tuple(dict.fromkeys(scopes)))
    return OktaGateway(session, auth.org_url, log, connection=connection.name)


register(
    ProviderSpec(
        NAME,
        "Okta",
        open_reader=OktaApi,
        open_gateway=open_gateway,
        required_config=("org_url",),
        required_secrets=(("api_token", "private_key"),),
    )
)
