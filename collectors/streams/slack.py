"""Slack streams: Audit Logs API events, users/apps/settings inventory, selected channels' messages.

`AuditLogsClient` never raises on HTTP errors, so every response's status is checked here;
`WebClient` raises `SlackApiError`, whose `error` names a missing scope in `needed`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

from collectors.clients import slack_audit_client, slack_web_client
from collectors.errors import (
    AuthenticationFailed,
    MalformedResponse,
    PermissionMissing,
    RequestRejected,
    StalePageToken,
    Throttled,
    TransientError,
)
from collectors.normalise.records import NormaliseError
from collectors.normalise.slack import normalise_slack_message
from collectors.streams.base import (
    ChangeWatch,
    Page,
    StreamContext,
    StreamKind,
    StreamSpec,
    register,
    register_api,
)
from collectors.streams.windows import WindowPlan, event_pages

PROVIDER = "slack"
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
_NON_JSON = "Received a response in a non-JSON format"


def _header(headers: Any, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value[0] if isinstance(value, list | tuple) else value
    return None


def _retry_after(headers: Any) -> float:
    value = _header(headers, "Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else 1.0
    except ValueError:
        return 1.0


class SlackApi:
    def __init__(self, ctx: StreamContext) -> None:
        self.ctx = ctx
        self.name = ctx.connection.name
        self._web: dict[str, Any] = {}
        self._audit: Any = None

    def web(self, token: str = "bot_token") -> Any:
        if token not in self._web:
            self._web[token] = slack_web_client(self.ctx.connection, self.ctx.secrets, token=token)
        return self._web[token]

    @property
    def audit(self) -> Any:
        if self._audit is None:
            self._audit = slack_audit_client(self.ctx.connection, self.ctx.secrets)
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
            raise self._classify(method, exc.response, permission) from exc
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

    def _classify(self, method: str, response: Any, permission: str) -> Exception:
        status = int(getattr(response, "status_code", 0) or 0)
        data = response.data if isinstance(getattr(response, "data", None), dict) else {}
        error = str(data.get("error", ""))
        if status == 429 or error == "ratelimited":
            return Throttled(
                f"{self.name}: {method} rate limited", retry_after=_retry_after(response.headers)
            )
        if status >= 500:
            return TransientError(f"{self.name}: {method}: HTTP {status}")
        if error.startswith(_NON_JSON) or (status == 200 and "ok" not in data):
            return MalformedResponse(
                f"{self.name}: {method} returned a body that is not JSON", source=method, body=error
            )
        if error in AUTH_ERRORS or status == 401:
            return AuthenticationFailed(
                f"{self.name}: Slack refused the token for {method} ({error}); issue a new token"
            )
        if error in PERMISSION_ERRORS or status == 403:
            needed = data.get("needed") or permission
            return PermissionMissing(
                f"{self.name}: {method} refused ({error}); the token needs scope {needed}",
                permission=str(needed),
            )
        return RequestRejected(
            f"{self.name}: {method}: {error or f'HTTP {status}'}", status=status or 400, code=error
        )

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
        status = response.status_code
        body = response.body
        if status == 429:
            raise Throttled(
                f"{self.name}: audit logs rate limited", retry_after=_retry_after(response.headers)
            )
        if status >= 500:
            raise TransientError(f"{self.name}: audit logs: HTTP {status}")
        error = str((body or {}).get("error", ""))
        if status == 401 or error in AUTH_ERRORS:
            raise AuthenticationFailed(
                f"{self.name}: Slack refused the audit token ({error or status}); issue a new org-owner token"
            )
        if status == 403 or error in PERMISSION_ERRORS:
            raise PermissionMissing(
                f"{self.name}: audit logs refused ({error or status}); the token needs scope auditlogs:read "
                "(an Enterprise Grid org owner's user token)",
                permission="auditlogs:read",
            )
        if status >= 400:
            raise RequestRejected(
                f"{self.name}: audit logs: HTTP {status} {error}", status=status, code=error
            )
        if not isinstance(body, dict) or not isinstance(body.get("entries"), list):
            raise MalformedResponse(
                f"{self.name}: audit logs page has no 'entries' list",
                source="audit/v1/logs",
                body=response.raw_body or "",
            )
        return body


def open_slack(ctx: StreamContext) -> SlackApi:
    return SlackApi(ctx)


register_api(PROVIDER, open_slack)


# ---- events -----------------------------------------------------------------------------------


def read_audit(ctx: StreamContext) -> Iterator[Page]:
    api: SlackApi = ctx.api

    def fetch(start: datetime, end: datetime, token: Any) -> tuple[list[Any], Any, str]:
        params: dict[str, Any] = {
            "oldest": int(start.timestamp()),
            "latest": int(end.timestamp()),
            "limit": min(ctx.page_size, 9999),
        }
        if token:
            params["cursor"] = token
        try:
            body = api.audit_logs(**params)
        except RequestRejected as exc:
            if token and exc.status == 400:
                raise StalePageToken(f"{api.name}: audit cursor refused ({exc})") from exc
            raise
        cursor = (body.get("response_metadata") or {}).get("next_cursor") or None
        return body.get("entries", []), cursor, "audit/v1/logs"

    yield from event_pages(ctx, WindowPlan.for_context(ctx), fetch)


# ---- snapshots --------------------------------------------------------------------------------


def _token_for(ctx: StreamContext, *preferred: str) -> str:
    for name in preferred:
        if name in ctx.secrets:
            return name
    return preferred[0]


def read_users(ctx: StreamContext) -> Iterator[Page]:
    api: SlackApi = ctx.api
    token = _token_for(ctx, "bot_token", "admin_token")
    objects = {
        str(u["id"]): u
        for u in api.paged(
            "users.list",
            "members",
            token=token,
            permission="users:read users:read.email",
            limit=min(ctx.page_size, 1000),
        )
        if isinstance(u, dict) and u.get("id")
    }
    yield Page(object_type="user", objects=objects, source="users.list")


def read_apps(ctx: StreamContext) -> Iterator[Page]:
    """Apps approved for the workspace/org, with the scopes they hold."""
    api: SlackApi = ctx.api
    token = _token_for(ctx, "admin_token", "bot_token")
    params: dict[str, Any] = {"limit": min(ctx.page_size, 1000)}
    if ctx.setting("team_id"):
        params["team_id"] = ctx.setting("team_id")
    objects: dict[str, Any] = {}
    for entry in api.paged(
        "admin.apps.approved.list", "approved_apps", token=token, permission="admin.apps:read", **params
    ):
        app = entry.get("app") if isinstance(entry, dict) else None
        if isinstance(app, dict) and app.get("id"):
            objects[str(app["id"])] = entry
    yield Page(object_type="app", objects=objects, source="admin.apps.approved.list")


def read_settings(ctx: StreamContext) -> Iterator[Page]:
    """Workspace security settings the API exposes (team.info + admin.teams.settings.info)."""
    api: SlackApi = ctx.api
    token = _token_for(ctx, "admin_token", "bot_token")
    info = api.call("team.info", token=token, permission="team:read").get("team", {})
    team_id = ctx.setting("team_id") or info.get("id")
    settings: dict[str, Any] = {"team": info}
    try:
        settings["settings"] = api.call(
            "admin.teams.settings.info", token=token, permission="admin.teams:read", team_id=team_id
        ).get("team", {})
    except RequestRejected:
        settings["settings"] = None  # not an Enterprise Grid org: team.info is all there is
    yield Page(
        object_type="tenant_settings", objects={str(team_id or "workspace"): settings}, source="team settings"
    )


# ---- conversations ----------------------------------------------------------------------------


def _channel_ids(ctx: StreamContext) -> list[str]:
    """Selected channels by id (C…/G…) or by name (looked up once with conversations.list)."""
    api: SlackApi = ctx.api
    wanted = [str(c).lstrip("#") for c in ctx.setting("slack_channels") or []]
    if wanted == ["*"]:
        return [
            str(ch["id"])
            for ch in api.paged(
                "conversations.list",
                "channels",
                permission="channels:read groups:read",
                types="public_channel,private_channel",
                limit=1000,
            )
            if isinstance(ch, dict) and ch.get("id")
        ]
    names = [c for c in wanted if not (c[:1] in ("C", "G", "D") and c.upper() == c)]
    ids = [c for c in wanted if c not in names]
    if names:
        found = {
            ch.get("name"): ch.get("id")
            for ch in api.paged(
                "conversations.list",
                "channels",
                permission="channels:read groups:read",
                types="public_channel,private_channel",
                limit=1000,
            )
            if isinstance(ch, dict)
        }
        missing = [n for n in names if n not in found]
        if missing:
            raise RequestRejected(
                f"{api.name}: no channel named {', '.join(missing)} is visible to the bot", status=404
            )
        ids += [str(found[n]) for n in names]
    return ids


def read_messages(ctx: StreamContext) -> Iterator[Page]:
    """History and thread replies of the selected channels, by time window."""
    api: SlackApi = ctx.api
    permission = "channels:history groups:history"
    for channel in _channel_ids(ctx):

        def fetch(
            start: datetime, end: datetime, token: Any, channel: str = channel
        ) -> tuple[list[Any], Any, str]:
            params: dict[str, Any] = {
                "channel": channel,
                "oldest": f"{start.timestamp():.6f}",
                "latest": f"{end.timestamp():.6f}",
                "inclusive": True,
                "limit": min(ctx.page_size, 999),
            }
            if token:
                params["cursor"] = token
            body = api.call("conversations.history", permission=permission, lists=("messages",), **params)
            messages = body["messages"]
            out = _convert(messages, channel)
            for parent in messages:
                if isinstance(parent, dict) and parent.get("reply_count") and parent.get("ts"):
                    replies = api.paged(
                        "conversations.replies",
                        "messages",
                        permission=permission,
                        channel=channel,
                        ts=parent["ts"],
                        limit=200,
                    )
                    out += _convert(
                        [r for r in replies if isinstance(r, dict) and r.get("ts") != parent["ts"]], channel
                    )
            cursor = (body.get("response_metadata") or {}).get("next_cursor") or None
            return (
                out,
                cursor if body.get("has_more", bool(cursor)) else None,
                f"conversations.history/{channel}",
            )

        yield from event_pages(ctx, WindowPlan.for_context(ctx), fetch, key=f"channel:{channel}")


def _convert(messages: list[Any], channel: str) -> list[Any]:
    out = []
    for message in messages:
        try:
            out.append(normalise_slack_message(message, channel))
        except NormaliseError:
            continue
    return out


_AUDIT = ("audit",)
register(
    StreamSpec(
        PROVIDER, "audit", StreamKind.EVENTS, read_audit, "auditlogs:read", 300, needs_secret=("audit_token",)
    )
)
register(
    StreamSpec(
        PROVIDER,
        "users",
        StreamKind.SNAPSHOT,
        read_users,
        "users:read users:read.email",
        3600,
        ("user",),
        needs_secret=("bot_token", "admin_token"),
        watch=ChangeWatch(_AUDIT, ("user", "role_change", "guest", "owner")),
    )
)
register(
    StreamSpec(
        PROVIDER,
        "apps",
        StreamKind.SNAPSHOT,
        read_apps,
        "admin.apps:read",
        3600,
        ("app",),
        needs_secret=("admin_token",),
        watch=ChangeWatch(_AUDIT, ("app", "bot", "scope")),
    )
)
register(
    StreamSpec(
        PROVIDER,
        "settings",
        StreamKind.SNAPSHOT,
        read_settings,
        "team:read admin.teams:read",
        3600,
        ("tenant_settings",),
        needs_secret=("admin_token", "bot_token"),
        watch=ChangeWatch(_AUDIT, ("pref", "setting", "policy", "sso", "2fa", "retention")),
    )
)
register(
    StreamSpec(
        PROVIDER,
        "messages",
        StreamKind.CONVERSATION,
        read_messages,
        "channels:history groups:history",
        300,
        needs_config=("slack_channels",),
        needs_secret=("bot_token",),
    )
)
