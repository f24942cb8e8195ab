"""Slack streams: Audit Logs API events, users/apps/settings inventory, selected channels' messages.

The calls and their error mapping are :mod:`providers.slack`'s.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from collectors.streams.base import (
    ChangeWatch,
    Page,
    StreamContext,
    StreamKind,
    StreamSpec,
    register,
)
from collectors.streams.windows import WindowPlan, event_pages
from core.normalise.records import NormaliseError
from core.normalise.slack import normalise_slack_message
from providers.errors import (
    RequestRejected,
    StalePageToken,
)
from providers.slack import SlackApi

PROVIDER = "slack"


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
