"""End to end for Okta: `tenantguard simulator serve --scenario okta_mfa_fatigue
--write-connections FILE` in one process, `TENANTGUARD_CONNECTIONS_FILE=FILE tenantguard serve`
in another — the Okta push-fatigue story becomes a P1/P2 incident raised from Okta findings."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from sqlmodel import col, select

from core.db import Database
from core.models import Finding, Incident
from core.settings import Settings
from simulator.http import free_port
from tests.cli_process import popen_cli
from tests.serve_process import CLI, stop

# a provider story through the same storage path as the account takeover the PostgreSQL suite runs
pytestmark = [pytest.mark.slow, pytest.mark.one_backend]


def _okta_urgent_incidents(db: Database) -> list[int]:
    with db.session(readonly=True) as session:
        rows = session.exec(
            select(Incident.id)
            .join(Finding, col(Finding.incident_id) == col(Incident.id))
            .where(col(Incident.priority).in_(["P1", "P2"]), Finding.provider == "okta")
        ).all()
    return sorted({int(i) for i in rows if i is not None})


def test_serve_raises_an_urgent_incident_from_the_okta_story(
    db: Database, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    connections = tmp_path / "operator" / "connections.toml"
    simulator = subprocess.Popen(
        [
            *CLI,
            "simulator",
            "serve",
            "--scenario",
            "okta_mfa_fatigue",
            "--write-connections",
            str(connections),
        ],
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "simulator.log").open("w"),
        text=True,
    )
    server = None
    try:
        assert simulator.stdout is not None
        line = simulator.stdout.readline()
        assert line, (tmp_path / "simulator.log").read_text()[-3000:]
        info = json.loads(line)
        # the connections file names an Okta connection by reference only
        text = connections.read_text()
        assert 'provider = "okta"' in text and info["okta.api_token"] not in text
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
            deadline = time.monotonic() + 300  # generous: a loaded machine
            while not _okta_urgent_incidents(db):
                assert server.poll() is None, (
                    f"serve exited ({server.returncode}):\n{log.read_text()[-3000:]}"
                )
                assert simulator.poll() is None, "the simulator exited"
                assert time.monotonic() < deadline, f"no Okta P1/P2 incident:\n{log.read_text()[-3000:]}"
                time.sleep(1)
    finally:
        if server is not None:
            stop(server)
        stop(simulator)
    # then the incident holds the push-fatigue finding of the story's victim
    with db.session(readonly=True) as session:
        rules = set(
            session.exec(
                select(Finding.rule_id).where(
                    col(Finding.incident_id).in_(_okta_urgent_incidents(db)), Finding.provider == "okta"
                )
            ).all()
        )
    assert "okta_mfa_fatigue" in rules
