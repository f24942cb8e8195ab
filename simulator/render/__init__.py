"""Vendor JSON shapes: turn compact records into the objects Microsoft, Google, Slack and Okta return.

Each stream has one renderer ``(ctx, record) -> dict``; background and story records share them,
so an attack step looks exactly like the benign event it imitates except for its values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simulator.activity import Record
from simulator.render.context import RenderContext
from simulator.render.google import GOOGLE_RENDERERS
from simulator.render.m365 import M365_RENDERERS
from simulator.render.okta import OKTA_RENDERERS
from simulator.render.slack import SLACK_RENDERERS

Renderer = Callable[[RenderContext, Record], dict[str, Any]]

RENDERERS: dict[str, Renderer] = {**M365_RENDERERS, **GOOGLE_RENDERERS, **SLACK_RENDERERS, **OKTA_RENDERERS}


def render(ctx: RenderContext, stream: str, record: Record) -> dict[str, Any]:
    if record[2] == "raw":
        return dict(record[5])
    return RENDERERS[stream](ctx, record)


def event_ids(ctx: RenderContext, stream: str, record: Record) -> list[str]:
    """Provider event ids as the brief defines them (one per Google `events[]` entry)."""
    body = render(ctx, stream, record)
    if stream.startswith("google:"):
        key = f"{body['id']['time']}/{body['id']['uniqueQualifier']}"
        return [f"{key}/{i}" for i in range(len(body.get("events", [])))]
    if stream == "okta:logs":
        return [body["uuid"]]
    if stream == "m365:unified_audit":
        return [body["Id"]]
    return [body["id"]]
