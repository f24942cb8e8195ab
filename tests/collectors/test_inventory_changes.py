"""Inventory between reconciliations: a pass with nothing new reads no inventory, a change is read
through the provider's delta query or re-read because an audit event named it, and a full
reconciliation still runs on its own, longer interval."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from collectors import collect_once, connections_from_simulator
from collectors.connections import sync_connections
from collectors.options import CollectorOptions
from core.db import Database
from core.models import ConfigSnapshot, Connection
from core.settings import Settings
from providers.credentials import Secrets
from providers.m365 import m365_clients

OPTIONS = CollectorOptions(threads=4, backoff_base=0.01, backoff_max=0.05)
STREAMS = {
    "m365": ["directory_audits", "unified_audit", "users", "groups", "service_principals", "role_assignments",
             "inbox_rules"],
    "google": ["token", "admin", "users", "tokens", "settings"],
}  # fmt: skip
INVENTORY = {
    ("m365", r) for r in ("users", "groups", "service_principals", "role_assignments", "inbox_rules")
} | {("google", r) for r in ("users", "tokens", "policies")}


def _last_request(sim: Any) -> Any:
    return sim.requests[-1]


def _inventory_reads(sim: Any, since: Any) -> list[str]:
    """Inventory requests the simulator answered after request `since` (delta links excepted)."""
    log = list(sim.requests)  # a bounded deque: find the marker, not a position
    after = next(i for i in range(len(log) - 1, -1, -1) if log[i] is since) + 1
    return [
        f"{r['provider']}:{r['path']}"
        for r in log[after:]
        if (r["provider"], r["resource"]) in INVENTORY and "deltatoken" not in (r["query"] or "")
    ]


def _collect(db: Database, settings: Settings) -> None:
    report = collect_once(db, settings, options=OPTIONS)
    assert report.ok, report.failures


def _rows(db: Database, object_type: str, object_id: str) -> list[ConfigSnapshot]:
    with db.session(readonly=True) as s:
        return list(
            s.exec(
                select(ConfigSnapshot)
                .where(ConfigSnapshot.object_type == object_type, ConfigSnapshot.object_id == object_id)
                .order_by(ConfigSnapshot.id)  # type: ignore[arg-type]
            ).all()
        )


def test_a_pass_with_nothing_new_reads_no_inventory_and_changes_are_still_seen(
    db: Database, settings: Settings, past_simulator
) -> None:
    # given a tenant collected once (a full reconciliation), then twice more: changes the audit
    # events of the first pass named are re-read (twice at most, see collectors/inventory.py)
    handle = past_simulator()
    sim = handle.sim
    sync_connections(db, connections_from_simulator(handle.info, streams=STREAMS), source="simulator")
    for _ in range(3):
        _collect(db, settings)
    # when a pass runs with nothing new
    before = _last_request(sim)
    _collect(db, settings)
    # then no inventory listing was read at all
    assert _inventory_reads(sim, before) == []

    # when an admin disables a user through Graph
    with db.session(readonly=True) as s:
        m365 = s.exec(select(Connection).where(Connection.provider == "m365")).one()
        user = s.exec(
            select(ConfigSnapshot).where(
                ConfigSnapshot.object_type == "user",
                ConfigSnapshot.provider == "m365",
                ConfigSnapshot.data["accountEnabled"].as_boolean(),
            )
        ).first()
    assert user is not None
    graph = m365_clients(m365, Secrets(m365.secret_refs), retry_writes=True)
    assert graph.graph.patch(
        f"{graph.graph_base_url}/users/{user.object_id}", json={"accountEnabled": False}
    ).ok
    _collect(db, settings)

    # then the user's change came through the delta link, laid over what the full read knew
    rows = _rows(db, "user", user.object_id)
    assert [r.data["accountEnabled"] for r in rows] == [True, False]
    assert rows[1].data.get("signInActivity") == rows[0].data.get("signInActivity")


def test_a_full_reconciliation_runs_on_its_own_interval(
    db: Database, settings: Settings, past_simulator
) -> None:
    # given a tenant whose connections reconcile on every pass
    handle = past_simulator()
    connections = connections_from_simulator(handle.info, streams=STREAMS)
    for connection in connections:
        connection.config["reconcile_hours"] = 0
    sync_connections(db, connections, source="simulator")
    _collect(db, settings)
    # when a pass runs with nothing new
    before = _last_request(handle.sim)
    _collect(db, settings)
    # then every inventory listing was read again
    assert {p.split(":")[0] for p in _inventory_reads(handle.sim, before)} == {"m365", "google"}
