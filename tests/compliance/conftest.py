"""A simulator tenant (Microsoft 365, Google Workspace, Slack) whose configuration was read and assessed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from collectors import collect_once, connections_from_simulator
from collectors.connections import sync_connections
from collectors.options import CollectorOptions
from core.db import Database
from core.settings import Settings
from detectors.posture import evaluate

OPTIONS = CollectorOptions(threads=4, backoff_base=0.01, backoff_max=0.05)
SNAPSHOT_STREAMS = {
    "m365": ["users", "auth_methods", "groups", "role_assignments", "ca_policies", "oauth_grants",
             "service_principals", "security_defaults", "inbox_rules", "file_permissions"],
    "google": ["users", "tokens", "role_assignments", "groups", "file_permissions", "settings"],
    "slack": ["users", "apps", "settings"],
}  # fmt: skip


@dataclass
class AssessedTenant:
    sim: Any
    db: Database
    settings: Settings

    def reassess(self, streams: list[str] | None = None) -> None:
        """Read the configuration again and evaluate posture (what the cycle does)."""
        result = collect_once(self.db, self.settings, options=OPTIONS, streams=streams)
        assert result.ok, result.failures
        evaluate(self.db, self.settings)


@pytest.fixture
def assessed_tenant(db: Database, settings: Settings, make_simulator: Callable[..., Any]) -> AssessedTenant:
    sim = make_simulator("quiet_week", users=10, days=1)
    sync_connections(db, connections_from_simulator(sim.info, streams=SNAPSHOT_STREAMS), source="simulator")
    tenant = AssessedTenant(sim, db, settings)
    tenant.reassess()
    return tenant
