"""Slack Audit Logs API entry shapes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simulator.activity import Record
from simulator.render.context import RenderContext
from simulator.tenant import Person

DESKTOP_AGENT = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Slack/4.38.125 Chrome/124.0.6367.91 Electron/30.0.1 Safari/537.36 Sonic"
MOBILE_AGENT = "com.tinyspeck.chatlyio/24.04.10 (iPhone; iOS 17.4.1; Scale/3.00)"


def _flag(on: str, off: str) -> Callable[[Any], str]:
    return lambda value: on if value else off


# Where Slack records the workspace/org security settings: admin.teams.settings.info returns only
# the team (name, domains, icon, default channels) and no method reads them, but every change is an
# Audit Logs `workspace_or_org` event whose `details` hold `new_value` and `previous_value` (action
# names from Slack's Audit Logs actions reference and slack_sdk's Details model). Slack documents the
# actions but not their value vocabulary, so the values below are the simulator's; the settings
# collector (collectors/streams/slack.py) reads them back. The simulator's setting keys (state and
# scenario `tenant.settings.slack`) map onto them; `export_access` and `guest_expiration_required`
# have no audit event or method at all and are not served.
SLACK_PREFS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "two_factor_auth_required": ("pref.two_factor_auth_changed", _flag("required", "optional")),
    "sso_required": ("pref.sso_setting_changed", _flag("required", "optional")),
    "session_duration_hours": ("pref.session_duration_changed", lambda hours: str(int(hours))),
    "public_file_links_allowed": ("pref.disallow_public_file_urls", _flag("false", "true")),
    "app_approval_required": ("pref.app_whitelist_enabled", _flag("true", "false")),
    "guest_invites_by": ("pref.who_can_manage_guests", str),
    "shared_channel_approval_required": (
        "pref.who_can_manage_ext_shared_channels",
        _flag("admins", "members"),
    ),
}
# What a new Slack workspace starts with (the previous_value of the first change of each)
SLACK_PREF_DEFAULTS: dict[str, Any] = {
    "two_factor_auth_required": False,
    "sso_required": False,
    "session_duration_hours": 336,
    "public_file_links_allowed": True,
    "app_approval_required": False,
    "guest_invites_by": "members",
    "shared_channel_approval_required": False,
}


# The simulated tenant's settings before a scenario's own `tenant.settings.slack`
SLACK_TENANT_SETTINGS: dict[str, Any] = {
    "two_factor_auth_required": True,
    "public_file_links_allowed": True,
    "session_duration_hours": 720,
    "app_approval_required": True,
    "sso_required": True,
    "shared_channel_approval_required": True,
    "guest_invites_by": "admins",
}


def pref_change(setting: str, value: Any, previous: Any) -> tuple[str, dict[str, Any]]:
    """The audit action and details recording `setting` changed from `previous` to `value`."""
    action, encode = SLACK_PREFS[setting]
    return action, {"new_value": encode(value), "previous_value": encode(previous)}


def workspace_entity(ctx: RenderContext) -> dict[str, Any]:
    tenant = ctx.tenant
    return {
        "type": "workspace",
        "workspace": {
            "id": tenant.slack_team_id,
            "name": tenant.scenario.tenant.name,
            "domain": tenant.domain.split(".")[0],
        },
    }


def slack_user(ctx: RenderContext, person: Person, with_team: bool = True) -> dict[str, Any]:
    user = {"id": person.slack_id, "name": person.name, "email": person.email}
    if with_team:
        user["team"] = ctx.tenant.slack_team_id
    return user


def slack_file_id(ctx: RenderContext, owner: int, k: int) -> str:
    return ctx.ids.slack_id("F", "slack-file", owner, k, length=10)


def slack_file(ctx: RenderContext, ref: tuple[int, int]) -> dict[str, Any]:
    owner, k = ref
    files = ctx.tenant.files_of(owner, "m365")
    drive_file = files[k % len(files)]
    return {
        "id": slack_file_id(ctx, owner, k),
        "name": drive_file.name,
        "filetype": drive_file.extension,
        "title": drive_file.title,
    }


def location(ctx: RenderContext) -> dict[str, Any]:
    tenant = ctx.tenant
    return {
        "type": "workspace",
        "id": tenant.slack_team_id,
        "name": tenant.scenario.tenant.name,
        "domain": tenant.domain.split(".")[0],
    }


def audit_extra(
    action: str,
    actor: Person | dict[str, Any] | None,  # a dict: a user from outside the tenant (a guest)
    entity: dict[str, Any],
    ip: str | None,
    ua: str | None,
    session_id: str | None,
    details: dict[str, Any] | None = None,
    app: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The extra of a generic audit record (stories and write-time events)."""
    return {
        "action": action,
        "actor": actor,
        "entity": entity,
        "ip": ip,
        "ua": ua,
        "session_id": session_id,
        "details": details,
        "app": app,
    }


def render_audit(ctx: RenderContext, record: Record) -> dict[str, Any]:
    ts, uid, kind, person, session, extra = record
    if kind == "entry":
        return render_entry(ctx, uid, ts, extra)
    agent = MOBILE_AGENT if session.network == "mobile" else DESKTOP_AGENT
    session_id = str(ctx.ids.fast("slack-session", person.index, session.local_day, session.number) % 10**12)
    if kind in ("user_login", "user_login_failed", "user_logout"):
        entity = {"type": "user", "user": slack_user(ctx, person)}
    else:
        entity = {"type": "file", "file": slack_file(ctx, extra)}
    spec = audit_extra(kind, person, entity, session.ip, agent, session_id)
    return render_entry(ctx, uid, ts, spec)


def render_entry(ctx: RenderContext, uid: int, ts: int, spec: dict[str, Any]) -> dict[str, Any]:
    actor = spec["actor"]
    body: dict[str, Any] = {
        "id": ctx.guid("slack:audit", uid),
        "date_create": ts // 1_000_000,
        "action": spec["action"],
        "actor": {"type": "user", "user": actor if isinstance(actor, dict) else slack_user(ctx, actor)}
        if actor is not None
        else {"type": "app", "app": spec.get("app") or {}},
        "entity": spec["entity"],
        "context": {"location": location(ctx)},
    }
    context = body["context"]
    if spec.get("ua"):
        context["ua"] = spec["ua"]
    if spec.get("ip"):
        context["ip_address"] = spec["ip"]
    if spec.get("session_id"):
        context["session_id"] = spec["session_id"]
    if spec.get("app"):
        context["app"] = spec["app"]
    if spec.get("details"):
        body["details"] = spec["details"]
    return body


SLACK_RENDERERS = {"slack:audit": render_audit}
