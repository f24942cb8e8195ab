"""Inventory between reconciliations: a pass with nothing new reads no inventory, a change is read
through the provider's delta query or re-read because an audit event named it, and a full
reconciliation still runs on its own, longer interval."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import unquote

from sqlmodel import select

from collectors import collect_once, connections_from_simulator
from collectors.connections import sync_connections
from collectors.options import CollectorOptions
from collectors.scheduler import build_scheduler
from core.db import Database
from core.models import ConfigSnapshot, Connection
from core.settings import Settings
from providers.credentials import Secrets
from providers.google import google_service
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


def _google_grant(db: Database) -> tuple[Connection, ConfigSnapshot]:
    with db.session(readonly=True) as s:
        google = s.exec(select(Connection).where(Connection.provider == "google")).one()
        grant = s.exec(
            select(ConfigSnapshot).where(
                ConfigSnapshot.object_type == "token", ConfigSnapshot.provider == "google"
            )
        ).first()
    assert grant is not None
    return google, grant


def _revoke(google: Connection, grant: ConfigSnapshot) -> str:
    """An admin revokes one user's grant through the Directory API; returns the user."""
    user, client = grant.object_id.split("/", 1)
    directory = google_service(google, Secrets(google.secret_refs), "directory")
    directory.tokens().delete(userKey=user, clientId=client).execute()
    return user


def test_an_admin_revoking_a_google_token_re_reads_that_users_grants_in_the_same_pass(
    db: Database, settings: Settings, past_simulator
) -> None:
    # given a Google tenant collected twice (the second pass read no inventory)
    handle = past_simulator()
    sync_connections(db, connections_from_simulator(handle.info, streams=STREAMS), source="simulator")
    _collect(db, settings)
    _collect(db, settings)
    google, grant = _google_grant(db)
    # when an admin revokes a user's grant, and its token audit event becomes readable (Reports lag)
    user = _revoke(google, grant)
    handle.advance(180)
    time.sleep(1.1)  # the collector reads up to the current whole second; the event is later in it
    before = _last_request(handle.sim)
    _collect(db, settings)
    # then the revoke event named the user, and that user's grants alone were read again: the
    # grant is gone from the inventory
    assert _rows(db, "token", grant.object_id)[-1].deleted
    reads = [unquote(p) for p in _inventory_reads(handle.sim, before) if p.startswith("google:")]
    assert reads == [f"google:/admin/directory/v1/users/{user}/tokens"]


def test_serve_s_scheduler_re_reads_the_grant_when_the_revoke_event_arrives(
    db: Database, settings: Settings, past_simulator
) -> None:
    # given serve's collectors scheduler on a Google tenant: audit events every 2 s, the grants
    # inventory on its own hourly interval
    handle = past_simulator()
    connections = connections_from_simulator(
        handle.info, providers=["google"], streams=STREAMS, intervals={"token": 2, "admin": 2}
    )
    sync_connections(db, connections, source="simulator")
    scheduler = build_scheduler(db, settings, options=OPTIONS)
    scheduler.start()
    try:
        deadline = time.monotonic() + 180
        while not _google_rows_exist(db):
            assert time.monotonic() < deadline, "the first pass never stored the grants"
            time.sleep(0.5)
        google, grant = _google_grant(db)
        # when an admin revokes a grant and the revoke event becomes readable
        _revoke(google, grant)
        handle.advance(180)
        # then the grant disappears from the inventory long before the tokens stream is due again
        while not _rows(db, "token", grant.object_id)[-1].deleted:
            assert time.monotonic() < deadline, "the revoke never re-read the user's grants"
            time.sleep(0.5)
    finally:
        scheduler.shutdown(wait=True)


def _google_rows_exist(db: Database) -> bool:
    with db.session(readonly=True) as s:
        return (
            s.exec(select(ConfigSnapshot.id).where(ConfigSnapshot.object_type == "token")).first() is not None
        )


SIGN_IN = {("m365", "token"), ("m365", "openid"), ("google", "token_endpoint")}


def test_a_pass_with_nothing_new_asks_for_no_token(db: Database, settings: Settings, past_simulator) -> None:
    # given a tenant collected (tokens acquired once per connection, kept by providers.client_cache)
    handle = past_simulator()
    sim = handle.sim
    sync_connections(db, connections_from_simulator(handle.info, streams=STREAMS), source="simulator")
    for _ in range(2):
        _collect(db, settings)
    # when another pass runs with nothing new
    before = _last_request(sim)
    _collect(db, settings)
    # then it made only its delta/list calls: no token request, no OpenID discovery
    log = list(sim.requests)
    after = next(i for i in range(len(log) - 1, -1, -1) if log[i] is before) + 1
    assert log[after:], "the pass made no request at all"
    assert [r["path"] for r in log[after:] if (r["provider"], r["resource"]) in SIGN_IN] == []
