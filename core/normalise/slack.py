"""Slack Audit Logs entries and Web API messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.normalise.records import (
    EventStream,
    NormalisedEvent,
    NormalisedMessage,
    NormaliseError,
    checked_id,
    required_id,
    strip_port,
    text,
    to_datetime,
)
from core.paths import dig


def _entity_name(entry: Mapping[str, Any]) -> Any:
    kind = dig(entry, "entity", "type")
    node = dig(entry, "entity", str(kind)) if kind else None
    if not isinstance(node, Mapping):
        return None
    return dig(node, "email") or dig(node, "name") or dig(node, "domain") or dig(node, "id")


def normalise_slack_audit(record: Mapping[str, Any]) -> list[NormalisedEvent]:
    """An Audit Logs API entry; `date_create` may be epoch seconds as a number or as text."""
    data = dict(record)
    created = dig(data, "date_create")
    if created in (None, ""):
        raise NormaliseError("entry has no 'date_create' (the event time)")
    actor = dig(data, "actor", "user", "email") or dig(data, "actor", "user", "id")
    if actor is None and isinstance(dig(data, "actor", "type"), str):
        kind = dig(data, "actor", "type")
        actor = dig(data, "actor", kind, "name") or dig(data, "actor", kind, "id")
    return [
        NormalisedEvent(
            provider_event_id=required_id(data, "id"),
            occurred_at=to_datetime(created, "date_create"),
            raw=data,
            actor=text(actor, 500),
            action=text(dig(data, "action"), 300),
            target=text(_entity_name(data), 1000),
            ip=strip_port(dig(data, "context", "ip_address")),
        )
    ]


def normalise_slack_message(message: Mapping[str, Any], channel: str) -> NormalisedMessage:
    """A `conversations.history`/`replies` message; its id is `channel:ts` (ts is unique per channel)."""
    ts = dig(message, "ts")
    if ts in (None, ""):
        raise NormaliseError("Slack message has no 'ts'")
    return NormalisedMessage(
        provider_message_id=checked_id(f"{channel}:{checked_id(ts, 'ts')}", "message id"),
        sent_at=to_datetime(str(ts), "ts"),
        text=str(dig(message, "text") or ""),
        channel=text(channel, 300),
        thread_id=text(dig(message, "thread_ts") or ts, 300),
        author=text(dig(message, "user") or dig(message, "bot_id") or dig(message, "username"), 320),
        meta={
            "subtype": dig(message, "subtype"),
            "reply_count": dig(message, "reply_count"),
            "files": [f.get("name") for f in (dig(message, "files") or []) if isinstance(f, Mapping)],
        },
    )


EVENT_STREAMS = {"audit": EventStream(normalise_slack_audit, ("id",), ("date_create",))}
