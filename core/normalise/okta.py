"""Okta System Log events (`GET /api/v1/logs` LogEvent objects)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.normalise.records import (
    EventStream,
    NormalisedEvent,
    NormaliseError,
    required_id,
    required_time,
    strip_port,
    text,
)
from core.paths import dig


def _target(record: Mapping[str, Any]) -> Any:
    targets = dig(record, "target")
    if not isinstance(targets, list):
        return None
    for entry in targets:
        if isinstance(entry, Mapping) and (entry.get("alternateId") not in (None, "", "unknown")):
            return entry.get("alternateId")
    for entry in targets:
        if isinstance(entry, Mapping) and entry.get("displayName"):
            return entry.get("displayName")
    return None


def normalise_okta_log(record: Mapping[str, Any]) -> list[NormalisedEvent]:
    """One LogEvent: `uuid` is the event id, `published` its time; the actor is its alternateId
    (the login), the outcome Okta's `outcome.result` in lower case (success, failure, deny, allow, …)."""
    data = dict(record)
    if not isinstance(data.get("eventType"), str) or not data["eventType"]:
        raise NormaliseError("System Log event has no 'eventType'")
    return [
        NormalisedEvent(
            provider_event_id=required_id(data, "uuid"),
            occurred_at=required_time(data, "published"),
            raw=data,
            actor=text(dig(data, "actor", "alternateId") or dig(data, "actor", "displayName"), 500),
            action=text(data["eventType"], 300),
            target=text(_target(data), 1000),
            ip=strip_port(dig(data, "client", "ipAddress")),
            country=text(dig(data, "client", "geographicalContext", "country"), 8),
            outcome=text(str(dig(data, "outcome", "result") or "").lower(), 50),
        )
    ]


EVENT_STREAMS = {"logs": EventStream(normalise_okta_log, ("uuid",), ("published",))}
