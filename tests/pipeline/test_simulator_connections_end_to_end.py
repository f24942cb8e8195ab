"""End to end, as an operator would try it: `tenantguard simulator serve --write-connections FILE`
in one process, `TENANTGUARD_CONNECTIONS_FILE=FILE tenantguard serve` in another, nothing else —
the default scenario's attack story becomes a P1/P2 incident."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
import tomllib
from pathlib import Path

import pytest
from sqlmodel import col, select

from core.db import Database
from core.models import Incident
from core.settings import Settings
from simulator.http import free_port
from tests.cli_process import popen_cli
from tests.serve_process import CLI, stop

pytestmark = pytest.mark.slow


def _urgent_incidents(db: Database) -> list[tuple[int, str]]:
    with db.session(readonly=True) as session:
        rows = session.exec(
            select(Incident.id, Incident.priority).where(col(Incident.priority).in_(["P1", "P2"]))
        ).all()
    return [(int(i), str(p)) for i, p in rows if i is not None]


def _start_simulator(connections: Path, log: Path) -> tuple[subprocess.Popen, dict]:
    simulator = subprocess.Popen(
        [*CLI, "simulator", "serve", "--write-connections", str(connections)],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )
    assert simulator.stdout is not None
    line = simulator.stdout.readline()  # the simulator prints its one JSON line once it serves
    assert line, f"simulator exited ({simulator.poll()}):\n{log.read_text()[-3000:]}"
    return simulator, json.loads(line)


def test_serve_watches_the_simulator_through_its_written_connections_file(
    db: Database, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    # given a simulator started with --write-connections (the default scenario: an account takeover)
    connections = tmp_path / "operator" / "connections.toml"
    simulator, info = _start_simulator(connections, tmp_path / "simulator.log")
    server = None
    try:
        # then the file holds references only; the secrets sit beside it, readable by the owner alone
        text = connections.read_text()
        secrets = [info["m365.client_secret"], info["slack.bot_token"], info["slack.audit_token"]]
        assert not [s for s in secrets if s in text]
        references = [ref for c in tomllib.loads(text)["connections"] for ref in c["secrets"].values()]
        assert {r.partition(":")[0] for r in references} == {"file"}
        for ref in references:
            secret_file = Path(ref.partition(":")[2])
            assert secret_file.parent == connections.parent / "connections.secrets"
            assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(connections.stat().st_mode) == 0o600
        assert (connections.parent / "connections.secrets" / "sim-m365.client_secret").read_text() == (
            info["m365.client_secret"]
        )
        # when `tenantguard serve` is given only that file (and a fresh environment: no secrets in it)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTGUARD_SIM")} | {
            "TENANTGUARD_DATA_DIR": str(settings.data_dir),
            "TENANTGUARD_DATABASE_URL": database_url,
            "TENANTGUARD_CONNECTIONS_FILE": str(connections),
        }
        log = tmp_path / "serve.log"
        with log.open("w") as out:
            server = popen_cli(
                ["serve", "--port", str(free_port())], env=env, stdout=out, stderr=subprocess.STDOUT
            )
            deadline = time.monotonic() + 300  # generous: a loaded machine (the goal is 2 minutes)
            while not _urgent_incidents(db):
                assert server.poll() is None, (
                    f"serve exited ({server.returncode}):\n{log.read_text()[-3000:]}"
                )
                assert simulator.poll() is None, "the simulator exited"
                assert time.monotonic() < deadline, f"no P1/P2 incident:\n{log.read_text()[-3000:]}"
                time.sleep(1)
    finally:
        if server is not None:
            stop(server)
        stop(simulator)
    # then the attack story is an urgent incident, raised from the file's connections
    assert _urgent_incidents(db)
    with db.session(readonly=True) as session:
        from core.models import Connection

        names = sorted(c.name for c in session.exec(select(Connection)).all())
        sources = {c.source for c in session.exec(select(Connection)).all()}
    assert names == ["sim-google", "sim-m365", "sim-okta", "sim-slack"]
    assert sources == {"file"}
    assert "maximum number of running instances" not in log.read_text()
