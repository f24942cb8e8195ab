"""`tenantguard doctor` over a real installation: it passes when everything is in order, and when
a permission or a secret is missing it names it, says how to grant it, and exits 1."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from collectors.simulator_link import write_connections_file
from tests.cli_process import run_cli

pytestmark = pytest.mark.slow


def tenantguard(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_cli(
        args,
        env={**os.environ, "COLUMNS": "200", **env},
        timeout=300,
    )


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {"TENANTGUARD_DATABASE_URL": database_url, "TENANTGUARD_DATA_DIR": str(tmp_path / "data")}


def test_doctor_says_ready_for_a_healthy_installation(
    cli_env: dict[str, str], tmp_path: Path, make_simulator
) -> None:
    sim = make_simulator("account_takeover", users=10, days=1)
    path = tmp_path / "connections.toml"
    write_connections_file(
        sim.info, path, providers=["m365", "slack"], streams={"m365": ["signins"], "slack": ["audit"]}
    )
    env = {**cli_env, "TENANTGUARD_CONNECTIONS_FILE": str(path)}
    assert tenantguard("connections", "sync", str(path), env=env).returncode == 0
    result = tenantguard("doctor", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    out = " ".join(result.stdout.split())
    for area in (
        "configuration",
        "connections file",
        "database",
        "migrations",
        "clock",
        "connection sim-m365",
        "disk",
    ):
        assert f"✓ {area}" in out, out
    assert out.rstrip().endswith("ready")


def test_doctor_names_the_missing_permission_how_to_grant_it_and_the_missing_secret(
    cli_env: dict[str, str], tmp_path: Path, make_simulator
) -> None:
    # Given an M365 app without the sign-in permission, and a Slack token file that was deleted
    sim = make_simulator("account_takeover", users=10, days=1, faults="403=m365:signins")
    path = tmp_path / "connections.toml"
    write_connections_file(
        sim.info, path, providers=["m365", "slack"], streams={"m365": ["signins"], "slack": ["audit"]}
    )
    assert tenantguard("connections", "sync", str(path), env=cli_env).returncode == 0
    for secret in (tmp_path / "connections.secrets").glob("sim-slack.*"):
        secret.unlink()
    # When the operator runs the doctor
    result = tenantguard("doctor", "--json", env=cli_env)
    # Then it fails, naming the permission with the steps to grant it, and the unreadable secret
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is False
    failing = [c for c in report["checks"] if c["status"] == "fail"]
    m365 = next(c for c in failing if c["area"] == "connection sim-m365")
    assert "missing permission AuditLog.Read.All" in m365["detail"]
    assert (
        "API permissions" in m365["fix"]
        and "AuditLog.Read.All" in m365["fix"]
        and "admin consent" in m365["fix"]
    )
    slack = next(c for c in failing if c["area"] == "connection sim-slack")
    assert "cannot read" in slack["detail"] and "sim-slack" in slack["detail"]
    assert sim.info["m365.client_secret"] not in result.stdout


def test_doctor_without_a_database_fails_and_says_how_to_make_one(tmp_path: Path) -> None:
    result = tenantguard(
        "doctor", env={"TENANTGUARD_DATA_DIR": str(tmp_path / "none"), "TENANTGUARD_DATABASE_URL": ""}
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    out = " ".join(result.stdout.split())
    assert "✗ database" in out and "tenantguard db upgrade" in out
