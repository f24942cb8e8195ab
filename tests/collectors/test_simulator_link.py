"""The demo's connections: built from the simulator's JSON line, secrets only as references to
environment variables this process sets, never stored in the database."""

from __future__ import annotations

import os

from sqlalchemy import text

from collectors import connections_from_simulator
from collectors.connections import sync_connections
from core.db import Database


def test_simulator_connections_reference_their_secrets_and_store_none(db: Database, make_simulator) -> None:
    # given a running simulator's JSON line
    info = make_simulator("quiet_week", users=8, days=1).info
    # when turned into connections and stored
    definitions = connections_from_simulator(info)
    assert sync_connections(db, definitions, source="simulator") == {
        "sim-m365": "created",
        "sim-google": "created",
        "sim-slack": "created",
        "sim-okta": "created",
    }
    # then every secret is a reference that resolves in this process
    refs = {f"{d.name}.{k}": v for d in definitions for k, v in d.secrets.items()}
    assert all(v.startswith(("env:", "file:")) for v in refs.values())
    assert os.environ[refs["sim-m365.client_secret"].removeprefix("env:")] == info["m365.client_secret"]
    assert refs["sim-google.service_account"] == f"file:{info['google.service_account_file']}"
    # and no secret value is anywhere in the database
    with db.engine.connect() as conn:
        dump = " ".join(
            str(row)
            for table in ("connection", "auditrecord")
            for row in conn.execute(text(f"SELECT * FROM {table}")).all()
        )
    for secret in (
        info["m365.client_secret"],
        info["slack.bot_token"],
        info["slack.audit_token"],
        info["okta.api_token"],
    ):
        assert secret not in dump
