"""Google Workspace: service-account credentials with domain-wide delegation, googleapiclient
services, the read calls the collectors use, the recording write gateway remediation uses, and
the one mapping of ``HttpError`` onto :mod:`providers.errors`.

Config: ``api_endpoint`` (replaces rootUrl+servicePath, so drive gets ``.../drive/v3/``),
``subject`` (the admin impersonated through domain-wide delegation), ``customer_id``; secret
``service_account`` (the key JSON, usually ``file:/path/key.json``). Discovery is the static copy
shipped in the wheel: building a service makes no HTTP call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

import orjson

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
    Throttled,
    TransientError,
    retry_after_seconds,
)
from providers.http import timeout_of
from providers.registry import ProviderSpec, register

if TYPE_CHECKING:
    from providers.registry import ReadContext

NAME = "google"
RATE_REASONS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "dailyLimitExceeded"}
)
WRITE_SCOPES = {
    "directory": (
        "https://www.googleapis.com/auth/admin.directory.user",
        "https://www.googleapis.com/auth/admin.directory.user.security",
        "https://www.googleapis.com/auth/admin.directory.rolemanagement",
    ),
    "drive": ("https://www.googleapis.com/auth/drive",),
    "policies": ("https://www.googleapis.com/auth/cloud-identity.policies",),
}
# Write calls do not know which catalogue action they serve; the action's entry names the permission.
WRITE_PERMISSION = "the scope the remediation action names"


# --------------------------------------------------------------------------------------------
# Client factory
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


@lru_cache(maxsize=32)
def _service_account(info: bytes, scopes: tuple[str, ...]) -> Any:
    """Parsed service-account credentials (parsing the private key costs milliseconds; a stream that
    impersonates every user in turn would pay it per user). `with_subject` copies, never mutates."""
    from google.oauth2 import service_account

    return service_account.Credentials.from_service_account_info(orjson.loads(info), scopes=list(scopes))


def google_credentials(
    connection: Connection, secrets: Secrets, scopes: Sequence[str], *, subject: str | None = None
) -> Any:
    """Service-account credentials impersonating `subject` (default: the configured admin), kept
    between runs per connection (:mod:`providers.client_cache`) so their token is reused until it
    expires; google-auth refreshes it by itself then."""
    who = subject or connection.config.get("subject")
    if not who:
        raise ConnectionConfigError(
            f"connection {connection.name!r}: set 'subject' (an admin e-mail for domain-wide delegation)"
        )

    def build() -> Any:
        info = google_service_account_info(connection, secrets)
        credentials = _service_account(orjson.dumps(info, option=orjson.OPT_SORT_KEYS), tuple(scopes))
        return credentials.with_subject(str(who))

    return CLIENTS.get(connection, secrets, ("google.credentials", tuple(scopes), str(who)), build)


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
    """A googleapiclient service; a 401 refreshes the token (up to three times, then the caller sees it)."""
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
    # The credentials are shared by the connection's streams: a fresh token may be refused because
    # another request found it expired meanwhile, so a 401 may refresh more than once.
    authed = google_auth_httplib2.AuthorizedHttp(credentials, http=transport, max_refresh_attempts=3)
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
        model=_orjson_model(),
    )


@cache
def _orjson_model() -> Any:
    """googleapiclient's JSON model with bodies parsed by orjson (the stdlib parser was a tenth of
    a collection's CPU); the same answers otherwise — a body that is not JSON comes back as text."""
    from googleapiclient.model import JsonModel

    class OrjsonModel(JsonModel):
        def deserialize(self, content: Any) -> Any:
            try:
                return orjson.loads(content)
            except orjson.JSONDecodeError:
                return content.decode("utf-8", "replace") if isinstance(content, bytes) else content

    return OrjsonModel(data_wrapper=False)


# --------------------------------------------------------------------------------------------
# The one error mapping
# --------------------------------------------------------------------------------------------


def error_for(
    exc: Any, *, connection: str, where: str, permission: str, default_wait: float = 1.0
) -> ProviderError:
    """The typed error for a googleapiclient ``HttpError``."""
    status = int(getattr(exc, "status_code", None) or exc.resp.status)
    reasons = (
        {d.get("reason") for d in (exc.error_details or []) if isinstance(d, dict)}
        if isinstance(exc.error_details, list)
        else set()
    )
    if status == 429 or (status == 403 and reasons & RATE_REASONS):
        retry_after = exc.resp.get("retry-after") if exc.resp is not None else None
        wait = retry_after_seconds(retry_after, default_wait)
        return Throttled(f"{connection}: {where} rate limited ({status})", retry_after=wait)
    if status >= 500:
        return TransientError(f"{connection}: {where}: HTTP {status}")
    if status == 401:
        return AuthenticationFailed(
            f"{connection}: {where} still answered 401 after a token refresh; check the service account and "
            "domain-wide delegation"
        )
    if status == 403:
        return PermissionMissing(
            f"{connection}: {where} refused (403 {exc.reason}); authorise scope {permission} for the service "
            "account's client id (domain-wide delegation) and check the subject is an admin",
            permission=permission,
        )
    kind = NotFound if status == 404 else RequestRejected
    return kind(f"{connection}: {where}: HTTP {status} {exc.reason}", status=status, code=str(status))


# --------------------------------------------------------------------------------------------
# Read calls (collectors)
# --------------------------------------------------------------------------------------------


class GoogleApi:
    """googleapiclient services for one connection, with our error classes and retry policy."""

    def __init__(self, ctx: ReadContext) -> None:
        self.ctx = ctx
        self.name = ctx.connection.name
        self._services: dict[tuple[str, str | None], Any] = {}

    def service(self, api: str, subject: str | None = None) -> Any:
        key = (api, subject)
        if key not in self._services:
            self._services[key] = google_service(self.ctx.connection, self.ctx.secrets, api, subject=subject)
        return self._services[key]

    @property
    def customer(self) -> str:
        return str(self.ctx.setting("customer_id") or "my_customer")

    def execute(
        self,
        build_request: Callable[[], Any],
        *,
        permission: str,
        kind: str | None = None,
        required: tuple[str, ...] = (),
        lists: tuple[str, ...] = (),
    ) -> Any:
        """Run one request under the retry policy. A body that parses but is not the promised
        resource (wrong `kind`, a `required` key missing, a `lists` key that is not a list) is
        malformed: a page cut short must never pass for an empty one."""

        def call() -> Any:
            body, uri = self._once(build_request, permission)
            problems = []
            if kind is not None and body.get("kind") != kind:
                problems.append(f"kind {body.get('kind')!r} is not {kind!r}")
            etag = body.get("etag")
            if isinstance(etag, str) and not (etag.startswith('"') and etag.endswith('"')):
                problems.append("its etag is cut short")
            problems += [f"no {key!r}" for key in required if key not in body]
            problems += [f"{key!r} is not a list" for key in lists if not isinstance(body.get(key, []), list)]
            if problems:
                raise MalformedResponse(
                    f"{self.name}: {_path(uri)} is not a valid page ({'; '.join(problems)})",
                    source=uri,
                    body=str(body)[:100_000],
                )
            return body

        return self.ctx.policy.run(call, on_wait=self.ctx.on_wait)

    def _once(self, build_request: Callable[[], Any], permission: str) -> tuple[Any, str]:
        import httplib2
        from google.auth.exceptions import RefreshError, TransportError
        from googleapiclient.errors import HttpError

        request = build_request()
        try:
            body = request.execute(num_retries=0)
        except HttpError as exc:
            raise error_for(
                exc,
                connection=self.name,
                where=_path(request.uri),
                permission=permission,
                default_wait=self.ctx.policy.backoff(1),
            ) from exc
        except ValueError as exc:  # JSON the model could not decode
            content = getattr(exc, "doc", "") or ""
            raise MalformedResponse(
                f"{self.name}: {_path(request.uri)} returned a body that is not JSON ({exc})",
                source=request.uri,
                body=content,
            ) from None
        except RefreshError as exc:
            if getattr(exc, "retryable", False):
                raise TransientError(f"{self.name}: token refresh failed, retryable ({exc})") from exc
            CLIENTS.forget(self.ctx.connection)
            raise AuthenticationFailed(
                f"{self.name}: Google refused the service account ({exc}); check the key, that domain-wide "
                "delegation is granted for its client id, and the subject"
            ) from exc
        except (TransportError, httplib2.HttpLib2Error, OSError) as exc:
            raise TransientError(f"{self.name}: {_path(request.uri)}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(body, dict):
            raise MalformedResponse(
                f"{self.name}: {_path(request.uri)} is not a JSON object", source=request.uri, body=str(body)
            )
        return body, request.uri


def _path(uri: str) -> str:
    from urllib.parse import urlparse

    return urlparse(uri).path


# --------------------------------------------------------------------------------------------
# Write calls (remediation)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoogleServices:
    """googleapiclient resources for the APIs remediation uses."""

    directory: Any
    drive: Any = None
    policies: Any = None  # Cloud Identity policies (the Workspace settings), to restore one


class GoogleGateway:
    """Google Admin SDK Directory and Drive through googleapiclient request objects."""

    def __init__(
        self, services: GoogleServices, log: CallLog, *, num_retries: int = 3, connection: str = "google"
    ) -> None:
        self.services = services
        self.connection = connection
        self.log = log
        self.num_retries = num_retries

    def get(self, build: Callable[[GoogleServices], Any]) -> dict[str, Any] | None:
        request = build(self.services)
        try:
            result, headers = self._execute(request)
        except ProviderError as exc:
            self.log.add(HttpCall("read", request.method, request.uri, status=_status(exc)))
            if isinstance(exc, NotFound):
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
        except ProviderError as exc:
            self.log.add(HttpCall("write", request.method, request.uri, body, _status(exc)))
            if request.method == "DELETE" and isinstance(exc, NotFound):
                return {}  # gone already (see GraphGateway.write); the read-back decides
            raise
        response_id = _google_id(headers) or (result or {}).get("id")
        self.log.add(HttpCall("write", request.method, request.uri, body, 200, response_id))
        return result or {}

    def _execute(self, request: Any) -> tuple[dict[str, Any] | None, dict[str, str]]:
        import httplib2
        from google.auth.exceptions import TransportError
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
            raise error_for(
                exc,
                connection=self.connection,
                where=f"{request.method} {request.uri}",
                permission=WRITE_PERMISSION,
            ) from None
        except (TransportError, httplib2.HttpLib2Error, OSError) as exc:
            raise TransientError(f"{self.connection}: {request.method} {request.uri}: {exc}") from exc


def _google_id(headers: dict[str, str]) -> str | None:
    for name in ("x-goog-request-id", "x-request-id", "etag"):
        if headers.get(name):
            return headers[name]
    return None


def _status(error: ProviderError) -> int | None:
    return getattr(error, "status", None)


def open_gateway(connection: Connection, secrets: Secrets, log: CallLog) -> GoogleGateway:
    """Write calls through the Directory and Drive APIs with the write scopes."""
    directory = google_service(connection, secrets, "directory", scopes=WRITE_SCOPES["directory"])
    drive = google_service(connection, secrets, "drive", scopes=WRITE_SCOPES["drive"])
    policies = google_service(connection, secrets, "policies", scopes=WRITE_SCOPES["policies"])
    return GoogleGateway(
        GoogleServices(directory=directory, drive=drive, policies=policies), log, connection=connection.name
    )


register(
    ProviderSpec(
        NAME,
        "Google Workspace",
        open_reader=GoogleApi,
        open_gateway=open_gateway,
        required_config=("subject",),
        required_secrets=(("service_account",),),
    )
)
