"""Pure functions from a provider's raw record to the fields we store (no I/O, no clock).

One normaliser per (provider, stream), and only this one: collection, `tenantguard ingest` and
the rule pack's test events (`tenantguard rules test`) all pass through it, so a record read from
the API, the same record loaded from an export and a rule's test event reach the detectors in
the one shape production stores. A record that cannot be used raises :class:`NormaliseError`
naming what is missing; callers quarantine it. Google activities fan out into one event per
entry of ``events[]``; Azure Monitor exports are unwrapped to the Graph object.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from core.clock import isoformat
from core.normalise.google import normalise_google
from core.normalise.m365 import (
    normalise_directory_audit,
    normalise_risk_detection,
    normalise_signin,
    normalise_unified_audit,
)
from core.normalise.records import NormalisedEvent, NormalisedMessage, NormaliseError
from core.normalise.slack import normalise_slack_audit
from core.paths import get_path

Normaliser = Callable[[Mapping[str, Any]], list[NormalisedEvent]]

EVENT_NORMALISERS: dict[tuple[str, str], Normaliser] = {
    ("m365", "signins"): normalise_signin,
    ("m365", "directory_audits"): normalise_directory_audit,
    ("m365", "unified_audit"): normalise_unified_audit,
    ("m365", "risk_detections"): normalise_risk_detection,
    **{
        ("google", app): normalise_google
        for app in ("login", "admin", "drive", "token", "saml", "user_accounts")
    },
    ("slack", "audit"): normalise_slack_audit,
}


# Where each stream's records carry the provider's event id and the event time: any of these
# paths (the first is the one filled in by `with_event_identity`).
_GOOGLE_IDENTITY = (("id.uniqueQualifier",), ("id.time",))
EVENT_IDENTITY: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {
    ("m365", "signins"): (("id", "properties.id"), ("createdDateTime", "time", "properties.createdDateTime")),
    ("m365", "directory_audits"): (
        ("id", "properties.id"),
        ("activityDateTime", "time", "properties.activityDateTime"),
    ),
    ("m365", "unified_audit"): (("Id",), ("CreationTime",)),
    ("m365", "risk_detections"): (("id",), ("detectedDateTime", "activityDateTime")),
    **{
        ("google", app): _GOOGLE_IDENTITY
        for app in ("login", "admin", "drive", "token", "saml", "user_accounts")
    },
    ("slack", "audit"): (("id",), ("date_create",)),
}


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    head, _, rest = path.partition(".")
    if not rest:
        data[head] = value
        return
    inner = data.get(head)
    data[head] = child = dict(inner) if isinstance(inner, Mapping) else {}
    _set_path(child, rest, value)


def with_event_identity(
    provider: str, stream: str, record: Mapping[str, Any], *, event_id: str, at: datetime
) -> dict[str, Any]:
    """`record` with the provider's event id and time filled in where it has none.

    For events written by hand (a rule's test events), which leave out what the provider always
    sends; everything else about the record goes through :func:`normalise` unchanged.
    """
    if (provider, stream) not in EVENT_IDENTITY:
        normaliser_for(provider, stream)  # names the known streams
    id_paths, time_paths = EVENT_IDENTITY[(provider, stream)]
    data = dict(record)
    for paths, value in ((id_paths, event_id), (time_paths, isoformat(at))):
        if all(get_path(data, path) in (None, "") for path in paths):
            _set_path(data, paths[0], value)
    return data


def _by_provider(keys: list[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for provider, stream in keys:
        out.setdefault(provider, []).append(stream)
    return {provider: tuple(streams) for provider, streams in out.items()}


# The one list of event stream names, per provider: what collection stores, what a rule's
# logsource may name, what the anomaly models read from.
EVENT_STREAMS: dict[str, tuple[str, ...]] = _by_provider(list(EVENT_NORMALISERS))


def normaliser_for(provider: str, stream: str) -> Normaliser:
    try:
        return EVENT_NORMALISERS[(provider, stream)]
    except KeyError:
        known = ", ".join(f"{p}/{s}" for p, s in sorted(EVENT_NORMALISERS))
        raise NormaliseError(f"no event normaliser for {provider}/{stream}; known streams: {known}") from None


def normalise(provider: str, stream: str, record: Mapping[str, Any]) -> list[NormalisedEvent]:
    """The events one raw record stands for (Google activities give one per entry of events[])."""
    if not isinstance(record, Mapping):
        raise NormaliseError(f"expected a JSON object, got {type(record).__name__}")
    return normaliser_for(provider, stream)(record)


__all__ = [
    "EVENT_IDENTITY",
    "EVENT_NORMALISERS",
    "EVENT_STREAMS",
    "NormaliseError",
    "NormalisedEvent",
    "NormalisedMessage",
    "normalise",
    "normaliser_for",
    "with_event_identity",
]
