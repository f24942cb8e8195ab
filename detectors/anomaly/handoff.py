"""What the rules stage read of the anomaly streams, handed to the anomaly stage: one decode per event.

The rules stage decodes every stored event's raw record; the anomaly stage judges the same
events later, in event time (`detectors.anomaly.service`). Instead of decoding each record a
second time, the rules stage offers its batch here and each anomaly-stream event's sign-in and
file activity (`read_signals`, a pure function of the stored event) is kept until the anomaly
stage takes it. An event the handoff does not hold (another process read it, a restart, the
handoff was full, its record could not be read) is decoded by the anomaly stage as before, so
results never depend on it. Bounded: past `capacity` events the oldest are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from core.models.event import StoredEvent as StoredEventRow
from detectors.anomaly.engine import READ_STREAMS, read_signals, stored
from detectors.anomaly.geo import GeoLocator
from detectors.anomaly.signals import Activity, SignIn

# ~560 bytes an event held (tracemalloc, 200 users x 7 d): at most ~28 MiB. A backlog larger than
# this is partly decoded twice (the oldest offered are dropped first).
DEFAULT_CAPACITY = 50_000


class Signals(NamedTuple):
    """One stored event's sign-in and activity (either may be None), and its provider id."""

    key: str
    signin: SignIn | None
    activity: Activity | None


class SignalHandoff:
    """Signals of events the rules stage read, by event id, until the anomaly stage takes them."""

    def __init__(self, geo: GeoLocator, *, capacity: int = DEFAULT_CAPACITY) -> None:
        self.geo = geo
        self.capacity = capacity
        self._held: dict[int, Signals] = {}
        self.offered = 0
        self.taken = 0

    def __len__(self) -> int:
        return len(self._held)

    def offer(self, events: Sequence[StoredEventRow]) -> None:
        """Keep the signals of the anomaly-stream events of a batch the rules stage decoded."""
        held = self._held
        for event in events:
            if (event.provider, event.stream) not in READ_STREAMS or event.id is None:
                continue
            try:
                signin, activity = read_signals(stored(event), self.geo)
            except Exception:  # noqa: BLE001 - the anomaly stage reads it again and quarantines it with the reason
                continue
            held[event.id] = Signals(event.provider_event_id, signin, activity)
            self.offered += 1
        excess = len(held) - self.capacity
        if excess > 0:  # the oldest first (dicts keep insertion order)
            for ident in list(held)[:excess]:
                held.pop(ident, None)  # taken meanwhile by the anomaly stage (another thread)

    def holds(self, event_id: int, key: str) -> bool:
        """Whether `take` would return the event's signals."""
        signals = self._held.get(event_id)
        return signals is not None and signals.key == key

    def take(self, event_id: int, key: str) -> Signals | None:
        """The signals held for the event `event_id` (provider id `key`), removed; None if not held."""
        signals = self._held.pop(event_id, None)
        if signals is None or signals.key != key:
            return None
        self.taken += 1
        return signals
