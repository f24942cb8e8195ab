"""Pure functions from a provider's raw record to the fields we store (no I/O, no clock).

One normaliser per (provider, stream), and only this one: collection, `tenantguard ingest` and
the rule pack's test events (`tenantguard rules test`) all pass through it, so a record read from
the API, the same record loaded from an export and a rule's test event reach the detectors in
the one shape production stores; each provider module lists its streams in ``EVENT_STREAMS``
and is discovered by itself. A record that cannot be used raises :class:`NormaliseError`
naming what is missing; callers quarantine it. Google activities fan out into one event per
entry of ``events[]``; Azure Monitor exports are unwrapped to the Graph object.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from core.clock import isoformat
from core.normalise.records import (
    EventStream,
    NormalisedEvent,
    NormalisedMessage,
    NormaliseError,
    Normaliser,
)
from core.paths import get_path

# Modules of this package that are machinery, not providers.
_NOT_PROVIDERS = frozenset({"records"})


def _discover() -> dict[tuple[str, str], EventStream]:
    """Every provider module's ``EVENT_STREAMS`` (the module's name is the provider's), so a new
    provider adds ``core/normalise/<provider>.py`` and edits nothing here."""
    found: dict[tuple[str, str], EventStream] = {}
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module.name in _NOT_PROVIDERS or module.name.startswith("_"):
            continue
        streams: Mapping[str, EventStream] = getattr(
            importlib.import_module(f"{__name__}.{module.name}"), "EVENT_STREAMS", {}
        )
        for stream, spec in streams.items():
            found[(module.name, stream)] = spec
    return found


_STREAMS = _discover()
EVENT_NORMALISERS: dict[tuple[str, str], Normaliser] = {key: s.normalise for key, s in _STREAMS.items()}
# Where each stream's records carry the provider's event id and the event time: any of these
# paths (the first is the one filled in by `with_event_identity`).
EVENT_IDENTITY: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {
    key: (s.id_paths, s.time_paths) for key, s in _STREAMS.items()
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
    "EventStream",
    "NormaliseError",
    "NormalisedEvent",
    "NormalisedMessage",
    "normalise",
    "normaliser_for",
    "with_event_identity",
]
