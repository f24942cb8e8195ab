"""Fixtures for the collector tests: a simulated tenant whose period has ended (connections come
from tests/factories.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from simulator.timestamps import settled_period_start


@pytest.fixture
def past_simulator(make_simulator: Callable[..., Any]) -> Callable[..., Any]:
    """past_simulator(scenario, days=2, faults=...) -> a tenant whose simulated period ended
    yesterday at 22:00 UTC, served on today's clock.

    The simulator keeps background activity to the end of the period's last UTC day, and the
    Management Activity API lists an hour's blob only once that hour is over; ending the period on
    an earlier day makes every event listable now, so the "visible" ground truth is the whole truth.
    """

    def make(scenario: str = "account_takeover", *, days: int = 2, users: int = 10, **options: Any) -> Any:
        handle = make_simulator(scenario, users=users, days=days, start=settled_period_start(days), **options)
        handle.advance(time.time() - handle.sim.now() / 1_000_000)
        return handle

    return make
