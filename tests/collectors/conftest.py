"""Fixtures for the collector tests: a simulated tenant whose period has ended (connections come
from tests/factories.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def past_simulator(settled_simulator: Callable[..., Any]) -> Callable[..., Any]:
    """past_simulator(scenario, days=2, users=10, faults=...): `settled_simulator` with the
    collector tests' small defaults."""

    def make(scenario: str = "account_takeover", *, days: int = 2, users: int = 10, **options: Any) -> Any:
        return settled_simulator(scenario, users=users, days=days, **options)

    return make
