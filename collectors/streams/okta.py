"""Okta streams: System Log events; users (with their factors and admin roles), groups, app
assignments, policies, API tokens and ThreatInsight as inventory.

The calls and their error mapping are :mod:`providers.okta`'s. The System Log is read in the
windows of :mod:`collectors.streams.windows` as bounded requests (`since` and `until` both set,
`sortOrder=ASCENDING`): Okta then omits `rel="next"` once the window is read, and the stored
page token is the `next` link itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from collectors.streams.base import ChangeWatch, Page, StreamContext, StreamKind, StreamSpec, register
from collectors.streams.windows import WindowPlan, event_pages
from core.clock import isoformat
from providers.okta import OktaApi

PROVIDER = "okta"
POLICY_TYPES = ("OKTA_SIGN_ON", "MFA_ENROLL", "PASSWORD", "ACCESS_POLICY")


def _okta_time(value: datetime) -> str:
    return isoformat(value)


def read_logs(ctx: StreamContext) -> Iterator[Page]:
    api: OktaApi = ctx.api

    def fetch(start: datetime, end: datetime, token: Any) -> tuple[list[Any], Any, str]:
        if token:
            return api.page(str(token), None, permission="okta.logs.read")
        params = {
            "since": _okta_time(start),
            "until": _okta_time(end),
            "limit": ctx.page_size_up_to(1000),
            "sortOrder": "ASCENDING",
        }
        return api.page("/api/v1/logs", params, permission="okta.logs.read")

    # Okta keeps 90 days of System Log
    yield from event_pages(ctx, WindowPlan.for_context(ctx, max_age=timedelta(days=90)), fetch)


def read_users(ctx: StreamContext) -> Iterator[Page]:
    """Every user, each with its enrolled factors (`_factors`) and admin roles (`_roles`)."""
    api: OktaApi = ctx.api
    objects: dict[str, Any] = {}
    for user in api.all("/api/v1/users", {"limit": min(ctx.page_size, 200)}, permission="okta.users.read"):
        if not isinstance(user, dict) or not user.get("id"):
            continue
        uid = str(user["id"])
        factors, _ = api.request(f"/api/v1/users/{uid}/factors", None, permission="okta.users.read")
        roles, _ = api.request(f"/api/v1/users/{uid}/roles", None, permission="okta.roles.read")
        objects[uid] = {**user, "_factors": factors, "_roles": roles}
        if ctx.probe:
            break
    yield Page(object_type="user", objects=objects, source="/api/v1/users")


def read_groups(ctx: StreamContext) -> Iterator[Page]:
    api: OktaApi = ctx.api
    objects = {
        str(g["id"]): g
        for g in api.all("/api/v1/groups", {"limit": min(ctx.page_size, 200)}, permission="okta.groups.read")
        if isinstance(g, dict) and g.get("id")
    }
    yield Page(object_type="group", objects=objects, source="/api/v1/groups")


def read_apps(ctx: StreamContext) -> Iterator[Page]:
    """Apps with the users assigned to them (`_assigned`: user ids)."""
    api: OktaApi = ctx.api
    objects: dict[str, Any] = {}
    for app in api.all("/api/v1/apps", {"limit": min(ctx.page_size, 200)}, permission="okta.apps.read"):
        if not isinstance(app, dict) or not app.get("id"):
            continue
        assigned = [
            str(a.get("id"))
            for a in api.all(f"/api/v1/apps/{app['id']}/users", {"limit": 500}, permission="okta.apps.read")
            if isinstance(a, dict)
        ]
        objects[str(app["id"])] = {**app, "_assigned": assigned}
    yield Page(object_type="app", objects=objects, source="/api/v1/apps")


def read_policies(ctx: StreamContext) -> Iterator[Page]:
    api: OktaApi = ctx.api
    objects: dict[str, Any] = {}
    for policy_type in POLICY_TYPES:
        body, _ = api.request("/api/v1/policies", {"type": policy_type}, permission="okta.policies.read")
        for policy in body:
            if isinstance(policy, dict) and policy.get("id"):
                objects[str(policy["id"])] = policy
    yield Page(object_type="policy", objects=objects, source="/api/v1/policies")


def read_settings(ctx: StreamContext) -> Iterator[Page]:
    """Org-wide settings: API tokens and ThreatInsight, as one tenant_settings object."""
    api: OktaApi = ctx.api
    tokens = list(api.all("/api/v1/api-tokens", {"limit": 200}, permission="okta.apiTokens.read"))
    threat = api.object("/api/v1/threats/configuration", permission="okta.threatInsights.read")
    objects = {"org": {"id": "org", "api_tokens": tokens, "threat_insight": threat}}
    yield Page(object_type="tenant_settings", objects=objects, source="org settings")


_LOGS = ("logs",)
register(
    StreamSpec(
        PROVIDER,
        "logs",
        StreamKind.EVENTS,
        read_logs,
        "okta.logs.read",
        300,
        needs_secret=("api_token", "private_key"),
    )
)
register(
    StreamSpec(
        PROVIDER,
        "users",
        StreamKind.SNAPSHOT,
        read_users,
        "okta.users.read okta.roles.read",
        3600,
        ("user",),
        needs_secret=("api_token", "private_key"),
        watch=ChangeWatch(_LOGS, ("user.lifecycle", "user.mfa.factor", "privilege", "user.account")),
    )
)
register(
    StreamSpec(
        PROVIDER,
        "groups",
        StreamKind.SNAPSHOT,
        read_groups,
        "okta.groups.read",
        3600,
        ("group",),
        needs_secret=("api_token", "private_key"),
        watch=ChangeWatch(_LOGS, ("group.",)),
    )
)
register(
    StreamSpec(
        PROVIDER,
        "apps",
        StreamKind.SNAPSHOT,
        read_apps,
        "okta.apps.read",
        3600,
        ("app",),
        needs_secret=("api_token", "private_key"),
        watch=ChangeWatch(_LOGS, ("application.",)),
    )
)
register(
    StreamSpec(
        PROVIDER,
        "policies",
        StreamKind.SNAPSHOT,
        read_policies,
        "okta.policies.read",
        3600,
        ("policy",),
        needs_secret=("api_token", "private_key"),
        watch=ChangeWatch(_LOGS, ("policy.",)),
    )
)
register(
    StreamSpec(
        PROVIDER,
        "settings",
        StreamKind.SNAPSHOT,
        read_settings,
        "okta.apiTokens.read okta.threatInsights.read",
        3600,
        ("tenant_settings",),
        needs_secret=("api_token", "private_key"),
        watch=ChangeWatch(_LOGS, ("api_token", "threat")),
    )
)
