"""Slack Audit Logs API entry shapes."""

from __future__ import annotations

from typing import Any

from simulator.activity import Record
from simulator.render.context import RenderContext
from simulator.tenant import Person

DESKTOP_AGENT = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Slack/4.38.125 Chrome/124.0.6367.91 Electron/30.0.1 Safari/537.36 Sonic"
MOBILE_AGENT = "com.tinyspeck.chatlyio/24.04.10 (iPhone; iOS 17.4.1; Scale/3.00)"


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
        return _entry(ctx, uid, ts, extra)
    agent = MOBILE_AGENT if session.network == "mobile" else DESKTOP_AGENT
    session_id = str(ctx.ids.fast("slack-session", person.index, session.local_day, session.number) % 10**12)
    if kind in ("user_login", "user_login_failed", "user_logout"):
        entity = {"type": "user", "user": slack_user(ctx, person)}
    else:
        entity = {"type": "file", "file": slack_file(ctx, extra)}
    spec = audit_extra(kind, person, entity, session.ip, agent, session_id)
    return _entry(ctx, uid, ts, spec)


def _entry(ctx: RenderContext, uid: int, ts: int, spec: dict[str, Any]) -> dict[str, Any]:
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
