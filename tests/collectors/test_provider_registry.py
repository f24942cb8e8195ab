"""A provider is added by adding its modules: every per-provider table is discovered, and they agree."""

from __future__ import annotations

import providers
from collectors.streams.base import StreamKind, streams_for
from core.models import Provider
from core.normalise import EVENT_STREAMS
from remediation.catalogue import all_actions


def test_the_provider_vocabulary_is_the_registered_providers() -> None:
    # core.models.Provider is the API's and the models' type (core cannot import the registry, a
    # layer above it), so this is where a provider module without its value is caught.
    assert {p.value for p in Provider} == set(providers.names())


def test_every_registered_provider_has_discovered_streams_normalisers_and_actions() -> None:
    with_actions = {str(spec.provider) for spec in all_actions()}
    for name in providers.names():
        spec = providers.get(name)
        assert spec.required_secrets, f"{name} names no secret a connection needs"
        events = {s.name for s in streams_for(name) if s.kind is StreamKind.EVENTS}
        assert events and events == set(EVENT_STREAMS[name]), name
        assert name in with_actions, f"{name} has no remediation actions"
