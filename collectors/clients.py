"""Official SaaS clients built from a Connection and its secret references (read and write side).

Everything a client needs besides secrets comes from ``Connection.config``, so the same code talks
to Microsoft, Google and Slack in production and to the simulator in tests (only base URLs
differ). Remediation executors reuse these factories for their write calls.

Microsoft (msal + requests)
    ``authority`` (default ``https://login.microsoftonline.com/<tenant>``), ``client_id``,
    ``graph_base_url``, ``management_base_url``, optional ``ca_bundle`` and ``proxy``; secrets
    ``client_secret`` or ``certificate_key`` (+ ``certificate`` or ``certificate_thumbprint``).
    msal refuses http authorities and, for hosts it does not know, would call Microsoft's
    instance discovery: we switch that off for non-Microsoft hosts. ``REQUESTS_CA_BUNDLE``
    overrides ``Session.verify``, so when a CA bundle is configured the sessions ignore the
    environment (``trust_env=False``) and verify against that bundle.
Google (google-api-python-client + google-auth)
    ``api_endpoint`` (replaces rootUrl+servicePath, so drive gets ``.../drive/v3/``),
    ``subject`` (the admin impersonated through domain-wide delegation), ``customer_id``;
    secret ``service_account`` (the key JSON, usually ``file:/path/key.json``). Discovery is the
    static copy shipped in the wheel: building a service makes no HTTP call.
Slack (slack_sdk)
    ``base_url``, ``audit_base_url``; secrets ``bot_token``, ``admin_token`` (user token for
    admin.* methods), ``audit_token``. Rate-limit retries wait exactly ``Retry-After``.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any
from urllib.error import URLError
from urllib.parse import urlparse

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from collectors.credentials import Secrets
from collectors.errors import AuthenticationFailed, ConnectionConfigError, TransientError
from core.models.connection import Connection

DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 6
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
_RETRY_STATUSES = (429, 500, 502, 503, 504)


def _require(connection: Connection, key: str) -> Any:
    value = connection.config.get(key)
    if value in (None, ""):
        raise ConnectionConfigError(
            f"connection {connection.name!r} ({connection.provider}) has no {key!r} in its config"
        )
    return value


def timeout_of(connection: Connection) -> float:
    return float(connection.config.get("timeout", DEFAULT_TIMEOUT))


# --------------------------------------------------------------------------------------------
# Microsoft: msal + requests sessions for Graph and the Management Activity API
# --------------------------------------------------------------------------------------------


class ExactRetryAfter(Retry):
    """urllib3's Retry treats `Retry-After: 0` as absent and backs off instead; wait exactly what
    the provider asked, zero included."""

    def sleep_for_retry(self, response: Any) -> bool:
        retry_after = self.get_retry_after(response)
        if retry_after is None:
            return False
        if retry_after > 0:
            time.sleep(retry_after)
        return True


def http_retry(*, retries: int = DEFAULT_RETRIES, retry_writes: bool = False) -> Retry:
    """urllib3 retries: 429 waits exactly Retry-After, 5xx/timeouts back off exponentially.

    Writes (POST/PATCH/DELETE) are retried only when the caller says they are idempotent.
    """
    return ExactRetryAfter(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        status_forcelist=_RETRY_STATUSES,
        allowed_methods=None if retry_writes else Retry.DEFAULT_ALLOWED_METHODS,
        respect_retry_after_header=True,
        backoff_factor=0.5,
        backoff_max=30,
        raise_on_status=False,
    )


class TimeoutSession(requests.Session):
    """A requests Session whose calls always carry a timeout (requests has no session default)."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__()
        self.default_timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.default_timeout)
        return super().request(method, url, *args, **kwargs)


def http_session(
    connection: Connection, *, retries: int = DEFAULT_RETRIES, retry_writes: bool = False
) -> TimeoutSession:
    """A session for one connection: retries mounted, TLS and proxy from the connection's config."""
    session = TimeoutSession(timeout_of(connection))
    ca_bundle = connection.config.get("ca_bundle")
    if ca_bundle:
        session.trust_env = False  # else REQUESTS_CA_BUNDLE silently overrides `verify`
        session.verify = ca_bundle
    proxy = connection.config.get("proxy")
    if proxy:
        session.proxies = {"http": proxy, "https": proxy}
    adapter = HTTPAdapter(max_retries=http_retry(retries=retries, retry_writes=retry_writes))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


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

    A fresh instance has fresh throttle/discovery caches (msal keeps them per instance).
    """
    import msal

    authority = m365_authority(connection)
    host = urlparse(authority).hostname or ""
    session = http_session(connection, retry_writes=True)  # token POSTs are safe to repeat
    kwargs: dict[str, Any] = {}
    if host not in MICROSOFT_AUTHORITY_HOSTS:
        kwargs["instance_discovery"] = False
    return msal.ConfidentialClientApplication(
        str(_require(connection, "client_id")),
        client_credential=_client_credential(connection, secrets),
        authority=authority,
        http_client=session,
        token_cache=token_cache,
        **kwargs,
    )


class EntraTokenSource:
    """App-only tokens for one scope, refreshed on demand (after a 401) and safe across threads."""

    def __init__(self, app: Any, scope: str, *, connection_name: str = "", max_wait: float = 60.0) -> None:
        self.app = app
        self.scope = scope
        self.connection_name = connection_name
        self.max_wait = max_wait
        self._lock = threading.Lock()

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

    def invalidate(self) -> None:
        """Forget cached access tokens so the next call asks Entra for a new one."""
        import msal

        with self._lock:
            cache = self.app.token_cache
            for item in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                cache.remove_at(item)


class BearerAuth(requests.auth.AuthBase):
    """Adds the bearer token; on a 401 gets a new token and re-sends the request once."""

    def __init__(self, tokens: EntraTokenSource) -> None:
        self.tokens = tokens

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.tokens.token()}"
        request.register_hook("response", self._refresh_once)
        return request

    def _refresh_once(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        if response.status_code != 401 or getattr(response.request, "_tg_refreshed", False):
            return response
        self.tokens.invalidate()
        retry = response.request.copy()
        retry._tg_refreshed = True  # type: ignore[attr-defined]
        retry.headers["Authorization"] = f"Bearer {self.tokens.token()}"
        response.content  # noqa: B018  (drain, so the connection goes back to the pool)
        response.raw.release_conn()
        sent = response.connection.send(retry, **kwargs)
        sent.history.append(response)
        sent.request = retry
        return sent


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


def m365_clients(connection: Connection, secrets: Secrets, *, retry_writes: bool = False) -> M365Clients:
    app = msal_app(connection, secrets)
    graph_tokens = EntraTokenSource(app, GRAPH_SCOPE, connection_name=connection.name)
    management_tokens = EntraTokenSource(app, MANAGEMENT_SCOPE, connection_name=connection.name)
    return M365Clients(
        graph=api_session(connection, graph_tokens, retry_writes=retry_writes),
        management=api_session(connection, management_tokens, retry_writes=retry_writes),
        graph_base_url=str(connection.config.get("graph_base_url") or DEFAULT_GRAPH_BASE_URL).rstrip("/"),
        management_feed_url=management_feed_url(connection),
        graph_tokens=graph_tokens,
        management_tokens=management_tokens,
    )


# --------------------------------------------------------------------------------------------
# Google: service-account credentials with domain-wide delegation, googleapiclient services
# --------------------------------------------------------------------------------------------

GOOGLE_APIS: dict[str, tuple[str, str, str]] = {
    # our name -> (discovery name, version, path under api_endpoint)
    "reports": ("admin", "reports_v1", ""),
    "directory": ("admin", "directory_v1", ""),
    "drive": ("drive", "v3", "drive/v3/"),
    "gmail": ("gmail", "v1", ""),
    "policies": ("cloudidentity", "v1", ""),
}
GOOGLE_SCOPES: dict[str, tuple[str, ...]] = {
    "reports": ("https://www.googleapis.com/auth/admin.reports.audit.readonly",),
    "directory": (
        "https://www.googleapis.com/auth/admin.directory.user.readonly",
        "https://www.googleapis.com/auth/admin.directory.user.security",
        "https://www.googleapis.com/auth/admin.directory.rolemanagement.readonly",
        "https://www.googleapis.com/auth/admin.directory.group.readonly",
    ),
    "drive": ("https://www.googleapis.com/auth/drive.readonly",),
    "gmail": ("https://www.googleapis.com/auth/gmail.readonly",),
    "policies": ("https://www.googleapis.com/auth/cloud-identity.policies.readonly",),
}


def google_service_account_info(connection: Connection, secrets: Secrets) -> dict[str, Any]:
    raw = secrets["service_account"]
    try:
        info = json.loads(raw)
    except ValueError:
        raise ConnectionConfigError(
            f"connection {connection.name!r}: the 'service_account' secret is not a service-account key "
            "JSON; reference the key file as file:/path/key.json"
        ) from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ConnectionConfigError(
            f"connection {connection.name!r}: the 'service_account' secret is not a service-account key "
            '(expected "type": "service_account")'
        )
    return info


def google_credentials(
    connection: Connection, secrets: Secrets, scopes: Sequence[str], *, subject: str | None = None
) -> Any:
    """Service-account credentials impersonating `subject` (default: the configured admin)."""
    from google.oauth2 import service_account

    info = google_service_account_info(connection, secrets)
    credentials = service_account.Credentials.from_service_account_info(info, scopes=list(scopes))
    who = subject or connection.config.get("subject")
    if not who:
        raise ConnectionConfigError(
            f"connection {connection.name!r}: set 'subject' (an admin e-mail for domain-wide delegation)"
        )
    return credentials.with_subject(str(who))


def google_endpoint(connection: Connection, api: str) -> str | None:
    endpoint = connection.config.get("api_endpoint")
    if not endpoint:
        return None
    return str(endpoint).rstrip("/") + "/" + GOOGLE_APIS[api][2]


def google_service(
    connection: Connection,
    secrets: Secrets,
    api: str,
    *,
    scopes: Sequence[str] | None = None,
    subject: str | None = None,
) -> Any:
    """A googleapiclient service; a 401 refreshes the token exactly once (then the caller sees it)."""
    import google_auth_httplib2
    import httplib2
    from googleapiclient.discovery import build

    if api not in GOOGLE_APIS:
        raise ConnectionConfigError(f"unknown Google API {api!r}; expected one of {sorted(GOOGLE_APIS)}")
    name, version, _ = GOOGLE_APIS[api]
    credentials = google_credentials(connection, secrets, scopes or GOOGLE_SCOPES[api], subject=subject)
    transport = httplib2.Http(
        timeout=timeout_of(connection), ca_certs=connection.config.get("ca_bundle") or None
    )
    authed = google_auth_httplib2.AuthorizedHttp(credentials, http=transport, max_refresh_attempts=1)
    options: dict[str, Any] = {}
    endpoint = google_endpoint(connection, api)
    if endpoint:
        options["api_endpoint"] = endpoint
    return build(
        name,
        version,
        http=authed,
        client_options=options or None,
        static_discovery=True,
        cache_discovery=False,
    )


# --------------------------------------------------------------------------------------------
# Slack: WebClient and AuditLogsClient
# --------------------------------------------------------------------------------------------

DEFAULT_SLACK_BASE_URL = "https://slack.com/api/"
DEFAULT_SLACK_AUDIT_BASE_URL = "https://api.slack.com/audit/v1/"


def _slack_retry_handlers(retries: int = DEFAULT_RETRIES) -> list[Any]:
    from slack_sdk.http_retry.builtin_handlers import (
        ConnectionErrorRetryHandler,
        RateLimitErrorRetryHandler,
        ServerErrorRetryHandler,
    )

    class ExactRetryAfterHandler(RateLimitErrorRetryHandler):
        """slack_sdk adds up to a second of jitter to Retry-After; we wait exactly what Slack asks."""

        def prepare_for_next_attempt(
            self, *, state: Any, request: Any, response: Any = None, error: Any = None
        ) -> None:
            if response is None:
                raise error
            state.next_attempt_requested = True
            values = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), None)
            raw = values[0] if isinstance(values, list | tuple) else values
            try:
                duration = max(0.0, float(raw)) if raw is not None else 1.0
            except ValueError:
                duration = 1.0
            time.sleep(duration)
            state.increment_current_attempt()

    class AnyServerErrorRetryHandler(ServerErrorRetryHandler):
        def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
            return response is not None and 500 <= response.status_code < 600

    return [
        ConnectionErrorRetryHandler(
            max_retry_count=retries,
            error_types=[URLError, ConnectionError, TimeoutError, HTTPException],
        ),
        ExactRetryAfterHandler(max_retry_count=retries),
        AnyServerErrorRetryHandler(max_retry_count=retries),
    ]


def _slack_ssl(connection: Connection) -> ssl.SSLContext | None:
    ca_bundle = connection.config.get("ca_bundle")
    return ssl.create_default_context(cafile=ca_bundle) if ca_bundle else None


def slack_web_client(connection: Connection, secrets: Secrets, *, token: str = "bot_token") -> Any:
    """A WebClient with `token` (bot_token, or admin_token for admin.* methods)."""
    from slack_sdk import WebClient

    base_url = str(connection.config.get("base_url") or DEFAULT_SLACK_BASE_URL)
    return WebClient(
        token=secrets[token],
        base_url=base_url.rstrip("/") + "/",
        timeout=int(timeout_of(connection)),
        ssl=_slack_ssl(connection),
        retry_handlers=_slack_retry_handlers(),
    )


def slack_audit_client(connection: Connection, secrets: Secrets) -> Any:
    """An AuditLogsClient; note it never raises on HTTP errors — check `status_code`."""
    from slack_sdk.audit_logs import AuditLogsClient

    base_url = str(connection.config.get("audit_base_url") or DEFAULT_SLACK_AUDIT_BASE_URL)
    return AuditLogsClient(
        token=secrets["audit_token"],
        base_url=base_url.rstrip("/") + "/",
        timeout=int(timeout_of(connection)),
        ssl=_slack_ssl(connection),
        retry_handlers=_slack_retry_handlers(),
    )
