"""Pure functions from a provider's raw record to the fields we store (no I/O, no clock).

One normaliser per (provider, stream). The collectors and `tenantguard ingest` share them, so a
record read from the API and the same record loaded from an export are stored identically. A
record that cannot be used raises :class:`NormaliseError` naming what is missing; callers
quarantine it. Google activities fan out into one event per entry of ``events[]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from collectors.normalise.google import normalise_google
from collectors.normalise.m365 import (
    normalise_directory_audit,
    normalise_risk_detection,
    normalise_signin,
    normalise_unified_audit,
)
from collectors.normalise.records import NormalisedEvent, NormalisedMessage, NormaliseError
from collectors.normalise.slack import normalise_slack_audit

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
    "EVENT_NORMALISERS",
    "NormaliseError",
    "NormalisedEvent",
    "NormalisedMessage",
    "normalise",
    "normaliser_for",
]
