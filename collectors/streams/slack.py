"""Slack streams: Audit Logs API events, users/apps/settings inventory, selected channels' messages.

The calls and their error mapping are :mod:`providers.slack`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import suppress
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
            "limit": ctx.page_size_up_to(9999),
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


# Where Slack keeps the workspace security settings: no method reads them (admin.teams.settings.info
# returns the team's name, domains, icon and default channels only), but each change is an Audit Logs
# `workspace_or_org` event with `details.new_value`, and the org's audit log is kept for its lifetime,
# so the newest event of each action is the setting in force. Action names are Slack's (Audit Logs
# actions reference); Slack does not document the values, these are the ones the simulator emits.
PREF_SETTINGS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "pref.two_factor_auth_changed": ("two_factor_auth_required", lambda v: v == "required"),
    "pref.sso_setting_changed": ("sso_required", lambda v: v == "required"),
    "pref.session_duration_changed": ("session_duration_hours", int),
    "pref.disallow_public_file_urls": ("public_file_links_allowed", lambda v: str(v).lower() != "true"),
    "pref.app_whitelist_enabled": ("app_approval_required", lambda v: str(v).lower() == "true"),
    "pref.who_can_manage_guests": ("guest_invites_by", str),
    "pref.who_can_manage_ext_shared_channels": (
        "shared_channel_approval_required",
        lambda v: v in ("admins", "owners"),
    ),
}


def _settings_from_audit(api: SlackApi) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settings in force (newest `pref.*` event of each action) and, per setting, the event it
    comes from. A setting never changed since the audit log began is left out (unknown)."""
    settings: dict[str, Any] = {}
    sources: dict[str, Any] = {}
    for action, (key, parse) in PREF_SETTINGS.items():
        entries = api.audit_logs(action=action, limit=1).get("entries") or []  # newest first
        entry = entries[0] if entries and isinstance(entries[0], dict) else None
        value = (entry or {}).get("details", {}).get("new_value")
        if entry is None or value is None:
            continue
        try:
            settings[key] = parse(value)
        except (TypeError, ValueError):
            continue  # a value this reader does not know: unknown, not a guess
        sources[key] = {
            "action": action,
            "date_create": entry.get("date_create"),
            "actor": ((entry.get("actor") or {}).get("user") or {}).get("email"),
            "new_value": value,
        }
    return settings, sources


def read_settings(ctx: StreamContext) -> Iterator[Page]:
    """Workspace security settings: team.info and admin.teams.settings.info (the team as Slack
    returns it), team.preferences.list, and the settings in force from the Audit Logs `pref.*`
    events (`settings`: None when the audit log cannot be read: no audit token, not Enterprise Grid)."""
    api: SlackApi = ctx.api
    token = _token_for(ctx, "admin_token", "bot_token")
    info = api.call("team.info", token=token, permission="team:read").get("team", {})
    team_id = ctx.setting("team_id") or info.get("id")
    snapshot: dict[str, Any] = {"team": info, "admin": None, "preferences": None, "settings": None}
    with suppress(RequestRejected):  # not an Enterprise Grid org, or a token without admin.teams:read
        snapshot["admin"] = api.call(
            "admin.teams.settings.info", token=token, permission="admin.teams:read", team_id=team_id
        ).get("team")
    with suppress(RequestRejected):
        preferences = api.call("team.preferences.list", token=token, permission="team.preferences:read")
        snapshot["preferences"] = {
            k: v for k, v in preferences.items() if k not in ("ok", "response_metadata")
        }
    if "audit_token" in ctx.secrets:
        with suppress(RequestRejected):  # the audit log is Enterprise Grid only: no settings to check
            snapshot["settings"], snapshot["settings_sources"] = _settings_from_audit(api)
    yield Page(
        object_type="tenant_settings", objects={str(team_id or "workspace"): snapshot}, source="team settings"
    )


# ---- conversations ----------------------------------------------------------------------------


def _channel_ids(ctx: StreamContext) -> list[tuple[str, str | None]]:
    """Selected channels as (id, name): by id (C…/G…) or by name, looked up once with
    conversations.list; a channel named by id alone gets its name from the same list (or None
    when the bot cannot see it), so stored messages carry ``meta.channel_name`` and timelines
    say #finance, not C0F1N4NC3."""
    api: SlackApi = ctx.api
    wanted = [str(c).lstrip("#") for c in ctx.setting("slack_channels") or []]
    if not wanted:
        return []

    def listed() -> dict[str, str]:
        return {
            str(ch["id"]): str(ch.get("name") or "")
            for ch in api.paged(
                "conversations.list",
                "channels",
                permission="channels:read groups:read",
                types="public_channel,private_channel",
                limit=1000,
            )
            if isinstance(ch, dict) and ch.get("id")
        }

    known = listed()
    if wanted == ["*"]:
        return [(cid, name or None) for cid, name in known.items()]
    by_name = {name: cid for cid, name in known.items() if name}
    names = [c for c in wanted if not (c[:1] in ("C", "G", "D") and c.upper() == c)]
    missing = [n for n in names if n not in by_name]
    if missing:
        raise RequestRejected(
            f"{api.name}: no channel named {', '.join(missing)} is visible to the bot", status=404
        )
    ids = [(c, known.get(c) or None) for c in wanted if c not in names]
    return ids + [(by_name[n], n) for n in names]


def read_messages(ctx: StreamContext) -> Iterator[Page]:
    """History and thread replies of the selected channels, by time window."""
    api: SlackApi = ctx.api
    permission = "channels:history groups:history"
    for channel, name in _channel_ids(ctx):

        def fetch(
            start: datetime, end: datetime, token: Any, channel: str = channel, name: str | None = name
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
            out = _convert(messages, channel, name)
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
                        [r for r in replies if isinstance(r, dict) and r.get("ts") != parent["ts"]],
                        channel,
                        name,
                    )
            cursor = (body.get("response_metadata") or {}).get("next_cursor") or None
            return (
                out,
                cursor if body.get("has_more", bool(cursor)) else None,
                f"conversations.history/{channel}",
            )

        yield from event_pages(ctx, WindowPlan.for_context(ctx), fetch, key=f"channel:{channel}")


def _convert(messages: list[Any], channel: str, name: str | None = None) -> list[Any]:
    out = []
    for message in messages:
        try:
            normalised = normalise_slack_message(message, channel)
        except NormaliseError:
            continue
        if name:
            normalised.meta["channel_name"] = name
        out.append(normalised)
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
        "team:read admin.teams:read team.preferences:read auditlogs:read",
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
