"""End to end: `tenantguard serve` as a real process re-reads an inventory object when an admin audit
event names it — a Google token revoke removes the grant from the inventory long before the
grants stream's own (hourly) interval comes round."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from collectors import connections_from_simulator
from collectors.connections import sync_connections
from core.db import Database
from core.models import ConfigSnapshot, Connection
from core.settings import Settings
from providers.credentials import Secrets
from providers.google import google_service
from simulator.timestamps import settled_period_start
from tests.serve_process import serve_until

pytestmark = pytest.mark.slow
STREAMS = {"google": ["token", "admin", "users", "tokens"]}


def _grant(db: Database) -> ConfigSnapshot | None:
    with db.session(readonly=True) as session:
        return session.exec(
            select(ConfigSnapshot)
            .where(ConfigSnapshot.object_type == "token")
            .order_by(col(ConfigSnapshot.id))
        ).first()


def _deleted(db: Database, object_id: str) -> bool:
    with db.session(readonly=True) as session:
        rows = session.exec(
            select(ConfigSnapshot)
            .where(ConfigSnapshot.object_type == "token", ConfigSnapshot.object_id == object_id)
            .order_by(col(ConfigSnapshot.id))
        ).all()
    return bool(rows) and bool(rows[-1].deleted)


class Revoke:
    """Once serve stored the grants: an admin revokes one through the Directory API (its token
    audit event becomes readable after the Reports lag); then done when that grant is gone."""

    def __init__(self, db: Database, handle: Any) -> None:
        self.db, self.handle = db, handle
        self.revoked: str | None = None

    def __call__(self) -> bool:
        if self.revoked is not None:
            return _deleted(self.db, self.revoked)
        grant = _grant(self.db)
        if grant is None:
            return False
        with self.db.session(readonly=True) as session:
            google = session.exec(select(Connection).where(Connection.provider == "google")).one()
        user, client = grant.object_id.split("/", 1)
        directory = google_service(google, Secrets(google.secret_refs), "directory")
        directory.tokens().delete(userKey=user, clientId=client).execute()
        self.handle.advance(180)
        self.revoked = grant.object_id
        return False


def test_serve_re_reads_a_google_grant_when_its_revoke_event_arrives(
    make_simulator, db: Database, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    # given a Google tenant (its period over, served on today's clock) watched by serve: audit
    # events every 2 s, the grants hourly
    handle = make_simulator("account_takeover", users=10, days=2, start=settled_period_start(2))
    handle.advance(time.time() - handle.sim.now() / 1_000_000)
    connections = connections_from_simulator(
        handle.info, providers=["google"], streams=STREAMS, intervals={"token": 2, "admin": 2}
    )
    sync_connections(db, connections, source="simulator")
    env = dict(os.environ, TENANTGUARD_DATA_DIR=str(settings.data_dir), TENANTGUARD_DATABASE_URL=database_url)
    revoke = Revoke(db, handle)
    # when an admin revokes a grant once serve stored them, then the grant leaves the inventory
    # (the revoke event named its user; the hourly grants stream is not due again)
    log = tmp_path / "serve.log"
    serve_until(env, log, revoke, "re-read of the revoked grant", every=0.5)
    assert revoke.revoked is not None and _deleted(db, revoke.revoked)
    # and the streams run back to back without APScheduler's skipped-run warnings
    assert "maximum number of running instances" not in log.read_text()
