"""One list of event stream names (core.normalise.EVENT_STREAMS): collection, rules and anomaly models agree."""

from __future__ import annotations

from collectors.streams.base import StreamKind, streams_for
from core.normalise import EVENT_NORMALISERS, EVENT_STREAMS
from detectors.anomaly.engine import READ_STREAMS
from detectors.sigma.logsource import resolve_streams


def _pairs(streams: dict[str, tuple[str, ...]]) -> set[tuple[str, str]]:
    return {(provider, name) for provider, names in streams.items() for name in names}


def test_every_event_stream_collected_has_the_one_normaliser_and_is_listed() -> None:
    collected = {
        (spec.provider, spec.name)
        for provider in EVENT_STREAMS
        for spec in streams_for(provider)
        if spec.kind is StreamKind.EVENTS
    }
    assert collected == set(EVENT_NORMALISERS) == _pairs(EVENT_STREAMS)


def test_a_logsource_without_a_service_means_every_listed_stream() -> None:
    for provider, names in EVENT_STREAMS.items():
        assert resolve_streams(provider, None) == (provider, names)


def test_the_anomaly_models_read_only_listed_streams() -> None:
    assert _pairs(EVENT_STREAMS) >= READ_STREAMS
