"""Slack: slack_sdk WebClient and AuditLogsClient, the read calls the collectors use, the recording
write gateway remediation uses, and the one mapping of Slack error answers onto
:mod:`providers.errors`.

Config: ``base_url``, ``audit_base_url``, optional ``ca_bundle``; secrets ``bot_token``,
``admin_token`` (user token for admin.* methods), ``audit_token``. Rate-limit retries wait exactly
``Retry-After``.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable, Iterator
from http.client import HTTPException
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.error import URLError

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
from providers.http import DEFAULT_RETRIES, timeout_of
from providers.registry import ProviderSpec, register

if TYPE_CHECKING:
    from providers.registry import ReadContext

NAME = "slack"
T = TypeVar("T")
AUTH_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "invalid_authentication",
    }
)
PERMISSION_ERRORS = frozenset(
    {
        "missing_scope",
        "not_allowed_token_type",
        "no_permission",
        "access_denied",
        "feature_not_enabled",
        "not_an_enterprise",
        "team_not_authorized",
        "ekm_access_denied",
        "restricted_action",
        "paid_only",
    }
)
NOT_FOUND_ERRORS = frozenset(
    {"user_not_found", "users_not_found", "file_not_found", "file_deleted", "not_found"}
)
_NON_JSON = "Received a response in a non-JSON format"
# Our token kinds for write calls -> the connection's secret names, first one configured wins.
GATEWAY_TOKENS = {"bot": ("bot_token",), "admin": ("admin_token",), "user": ("user_token", "admin_token")}
# Write calls do not know which catalogue action they serve; the action's entry names the scope.
WRITE_PERMISSION = "the scope the remediation action names"


# --------------------------------------------------------------------------------------------
# Client factory
# --------------------------------------------------------------------------------------------

DEFAULT_SLACK_BASE_URL = "https://slack.com/api/"
DEFAULT_SLACK_AUDIT_BASE_URL = "https://api.slack.com/audit/v1/"


def _retry_handlers(retries: int = DEFAULT_RETRIES) -> list[Any]:
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


def _ssl_context(connection: Connection) -> ssl.SSLContext | None:
    ca_bundle = connection.config.get("ca_bundle")
    return ssl.create_default_context(cafile=ca_bundle) if ca_bundle else None


def slack_web_client(
    connection: Connection, secrets: Secrets | None = None, *, token: str = "bot_token"
) -> Any:
    """A WebClient with `token` (bot_token, or admin_token for admin.* methods); the connection's
    secret references are resolved here unless resolved `secrets` are given. Public: notifications,
    approvals and paging channels post through it."""
    from slack_sdk import WebClient

    secrets = secrets if secrets is not None else Secrets(connection.secret_refs or {})
    base_url = str(connection.config.get("base_url") or DEFAULT_SLACK_BASE_URL)
    return WebClient(
        token=secrets[token],
        base_url=base_url.rstrip("/") + "/",
        timeout=int(timeout_of(connection)),
        ssl=_ssl_context(connection),
        retry_handlers=_retry_handlers(),
    )


def slack_audit_client(connection: Connection, secrets: Secrets) -> Any:
    """An AuditLogsClient; note it never raises on HTTP errors — check `status_code`."""
    from slack_sdk.audit_logs import AuditLogsClient

    base_url = str(connection.config.get("audit_base_url") or DEFAULT_SLACK_AUDIT_BASE_URL)
    return AuditLogsClient(
        token=secrets["audit_token"],
        base_url=base_url.rstrip("/") + "/",
        timeout=int(timeout_of(connection)),
        ssl=_ssl_context(connection),
        retry_handlers=_retry_handlers(),
    )


# --------------------------------------------------------------------------------------------
# The one error mapping
# --------------------------------------------------------------------------------------------


def _header(headers: Any, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value[0] if isinstance(value, list | tuple) else value
    return None


def error_for(response: Any, *, connection: str, where: str, permission: str) -> ProviderError:
    """The typed error for a Web API answer with ``ok: false`` (slack_sdk's ``SlackApiError.response``)
    or an Audit Logs API answer of status >= 400."""
    status = int(getattr(response, "status_code", 0) or 0)
    data = next(
        (
            d
            for d in (getattr(response, "data", None), getattr(response, "body", None))
            if isinstance(d, dict)
        ),
        {},
    )
    error = str(data.get("error", ""))
    if status == 429 or error == "ratelimited":
        retry_after = retry_after_seconds(_header(response.headers, "Retry-After"))
        return Throttled(f"{connection}: {where} rate limited", retry_after=retry_after)
    if status >= 500:
        return TransientError(f"{connection}: {where}: HTTP {status}")
    if error.startswith(_NON_JSON) or (status == 200 and "ok" not in data):
        return MalformedResponse(
            f"{connection}: {where} returned a body that is not JSON", source=where, body=error
        )
    if error in AUTH_ERRORS or status == 401:
        return AuthenticationFailed(
            f"{connection}: Slack refused the token for {where} ({error or status}); issue a new token"
        )
    if error in PERMISSION_ERRORS or status == 403:
        needed = str(data.get("needed") or permission)
        return PermissionMissing(
            f"{connection}: {where} refused ({error or status}); the token needs scope {needed}",
            permission=needed,
        )
    kind = NotFound if error in NOT_FOUND_ERRORS or status == 404 else RequestRejected
    return kind(f"{connection}: {where}: {error or f'HTTP {status}'}", status=status or 400, code=error)


# --------------------------------------------------------------------------------------------
# Read calls (collectors)
# --------------------------------------------------------------------------------------------


class SlackApi:
    """Web API and Audit Logs API reads with our error classes and retry policy."""

    def __init__(self, ctx: ReadContext) -> None:
        self.ctx = ctx
        self.name = ctx.connection.name
        self._web: dict[str, Any] = {}
        self._audit: Any = None

    def web(self, token: str = "bot_token") -> Any:
        """The connection's WebClient for `token`, shared between runs (:mod:`providers.client_cache`)."""
        if token not in self._web:
            connection, secrets = self.ctx.connection, self.ctx.secrets
            self._web[token] = CLIENTS.get(
                connection,
                secrets,
                ("slack.web", token),
                lambda: slack_web_client(connection, secrets, token=token),
            )
        return self._web[token]

    @property
    def audit(self) -> Any:
        if self._audit is None:
            connection, secrets = self.ctx.connection, self.ctx.secrets
            self._audit = CLIENTS.get(
                connection, secrets, "slack.audit", lambda: slack_audit_client(connection, secrets)
            )
        return self._audit

    # -- Web API --------------------------------------------------------------------------------
    def call(
        self,
        method: str,
        *,
        token: str = "bot_token",
        permission: str,
        lists: tuple[str, ...] = (),
        **params: Any,
    ) -> dict[str, Any]:
        """One Web API call under the retry policy; an answer whose `lists` keys are not lists is
        malformed (re-read, then quarantined), never taken for an empty page."""

        def once() -> dict[str, Any]:
            data = self._call_once(method, token, permission, params)
            missing = [key for key in lists if not isinstance(data.get(key), list)]
            if missing:
                raise MalformedResponse(
                    f"{self.name}: {method} answer has no {', '.join(missing)} list",
                    source=method,
                    body=str(data)[:100_000],
                )
            return data

        return self._reauthenticating(token, once)

    def _call_once(self, method: str, token: str, permission: str, params: dict[str, Any]) -> dict[str, Any]:
        from slack_sdk.errors import SlackApiError, SlackRequestError

        try:
            response = self.web(token).api_call(method, params=params)
        except SlackApiError as exc:
            raise error_for(exc.response, connection=self.name, where=method, permission=permission) from exc
        except json.JSONDecodeError as exc:
            raise MalformedResponse(
                f"{self.name}: {method} returned a body that is not JSON ({exc})", source=method, body=exc.doc
            ) from None
        except (SlackRequestError, OSError) as exc:
            raise TransientError(f"{self.name}: {method}: {type(exc).__name__}: {exc}") from exc
        data = response.data
        if not isinstance(data, dict):
            raise MalformedResponse(
                f"{self.name}: {method} is not a JSON object", source=method, body=str(data)[:10000]
            )
        return data

    def paged(
        self, method: str, key: str, *, token: str = "bot_token", permission: str, **params: Any
    ) -> Iterator[Any]:
        cursor = None
        while True:
            body = self.call(
                method,
                token=token,
                permission=permission,
                lists=(key,),
                **params,
                **({"cursor": cursor} if cursor else {}),
            )
            yield from body[key]
            cursor = (body.get("response_metadata") or {}).get("next_cursor")
            if not cursor or self.ctx.probe:
                return

    # -- Audit Logs API -------------------------------------------------------------------------
    def audit_logs(self, **params: Any) -> dict[str, Any]:
        return self._reauthenticating("audit_token", lambda: self._audit_once(params))

    def _reauthenticating(self, token: str, call: Callable[[], T]) -> T:
        """Slack tokens do not refresh themselves: on a rejected token, resolve the secret reference
        again (it may have been rotated) and retry once; a second rejection is final."""
        try:
            return self.ctx.policy.run(call, on_wait=self.ctx.on_wait)
        except AuthenticationFailed:
            self.ctx.secrets.forget(token)
            CLIENTS.forget(self.ctx.connection)
            self._web.pop(token, None)
            if token == "audit_token":
                self._audit = None
            return self.ctx.policy.run(call, on_wait=self.ctx.on_wait)

    def _audit_once(self, params: dict[str, Any]) -> dict[str, Any]:
        from slack_sdk.errors import SlackRequestError

        try:
            response = self.audit.logs(**params)
        except json.JSONDecodeError as exc:
            raise MalformedResponse(
                f"{self.name}: audit logs page is not JSON ({exc})", source="audit/v1/logs", body=exc.doc
            ) from None
        except (SlackRequestError, OSError) as exc:
            raise TransientError(f"{self.name}: audit logs: {type(exc).__name__}: {exc}") from exc
        body = response.body
        if response.status_code >= 400 or (isinstance(body, dict) and body.get("ok") is False):
            raise error_for(response, connection=self.name, where="audit logs", permission="auditlogs:read")
        if not isinstance(body, dict) or not isinstance(body.get("entries"), list):
            raise MalformedResponse(
                f"{self.name}: audit logs page has no 'entries' list",
                source="audit/v1/logs",
                body=response.raw_body or "",
            )
        return body


# --------------------------------------------------------------------------------------------
# Write calls (remediation)
# --------------------------------------------------------------------------------------------


class SlackGateway:
    """Slack Web API methods through slack_sdk ``WebClient`` objects, one per kind of token."""

    def __init__(
        self, clients: dict[str, Any], log: CallLog, *, team_id: str | None = None, connection: str = "slack"
    ) -> None:
        self.clients = clients
        self.log = log
        self.team_id = team_id
        self.connection = connection

    def _client(self, token: str) -> Any:
        try:
            return self.clients[token]
        except KeyError:
            raise ConnectionConfigError(
                f"the Slack connection {self.connection!r} has no {token} token; add one to the connection "
                "to run this action"
            ) from None

    def read(self, method: str, *, token: str = "admin", **params: Any) -> dict[str, Any] | None:
        client = self._client(token)
        url = f"{client.base_url}{method}"
        response, error = self._call(client, method, params)
        self.log.add(
            HttpCall("read", "POST", url, params, response.status_code if response is not None else None)
        )
        if isinstance(error, NotFound):
            return None
        if error is not None:
            raise error
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
        if error is not None:
            raise error
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
            raise error_for(
                response, connection=self.connection, where="audit logs", permission="auditlogs:read"
            )
        return list((response.body or {}).get("entries", []))

    def _call(self, client: Any, method: str, params: dict[str, Any]) -> tuple[Any, ProviderError | None]:
        from slack_sdk.errors import SlackApiError, SlackRequestError

        try:
            return client.api_call(method, params=params), None
        except SlackApiError as exc:
            return exc.response, error_for(
                exc.response, connection=self.connection, where=method, permission=WRITE_PERMISSION
            )
        except (SlackRequestError, OSError) as exc:
            return None, TransientError(f"{self.connection}: {method}: {type(exc).__name__}: {exc}")


def open_gateway(connection: Connection, secrets: Secrets, log: CallLog) -> SlackGateway:
    """One WebClient per kind of token the connection has (bot, admin, user) plus the audit client."""
    clients: dict[str, Any] = {}
    for kind, names in GATEWAY_TOKENS.items():
        name = next((n for n in names if n in secrets), None)
        if name is not None:
            clients[kind] = slack_web_client(connection, secrets, token=name)
    if "audit_token" in secrets:
        clients["audit"] = slack_audit_client(connection, secrets)
    team_id = connection.config.get("team_id") or connection.tenant or None
    return SlackGateway(clients, log, team_id=team_id, connection=connection.name)


register(
    ProviderSpec(
        NAME,
        "Slack",
        open_reader=SlackApi,
        open_gateway=open_gateway,
        required_secrets=(("bot_token", "admin_token", "audit_token"),),
    )
)
