"""The operator's commands: `connections test` says what is missing, `collect --once` collects and
fails loudly, `ingest` loads exports and reports what it quarantined."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from sqlmodel import func, select

from collectors import connections_from_simulator
from collectors.connections import definitions_to_toml
from core.db import Database
from core.models import Event
from tests.cli_process import run_cli

ROOT = Path(__file__).resolve().parents[2]


def _tenantguard(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_cli(
        args,
        env={**os.environ, "COLUMNS": "200", **env},
        cwd=ROOT,
        timeout=180,
    )


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {"TENANTGUARD_DATABASE_URL": database_url, "TENANTGUARD_DATA_DIR": str(tmp_path / "data")}


def _connections_file(tmp_path: Path, sim, **kwargs) -> Path:
    path = tmp_path / "connections.toml"
    path.write_text(definitions_to_toml(connections_from_simulator(sim.info, **kwargs)))
    return path


@pytest.mark.slow
def test_connections_test_names_the_missing_permission_and_the_unset_secret(
    cli_env: dict[str, str], tmp_path: Path, past_simulator
) -> None:
    # given an M365 app without the sign-in permission, and a Slack connection whose token is unset
    sim = past_simulator(faults="403=m365:signins")
    path = _connections_file(
        tmp_path, sim, providers=["m365", "slack"], streams={"m365": ["signins", "users"], "slack": ["audit"]}
    )
    env = {**cli_env, "TENANTGUARD_CONNECTIONS_FILE": str(path)}
    env["TENANTGUARD_SIM_SIM_SLACK_AUDIT_TOKEN"] = ""
    # when the operator tests the connections
    result = _tenantguard("connections", "test", env=env)
    # then the command fails and says exactly what to grant and what to set
    assert result.returncode == 1, result.stderr
    out = " ".join(result.stdout.split())
    assert "fail signins — missing permission AuditLog.Read.All" in out
    assert "ok users" in out
    assert "environment variable TENANTGUARD_SIM_SIM_SLACK_AUDIT_TOKEN is not set" in out
    assert sim.info["m365.client_secret"] not in result.stdout + result.stderr


@pytest.mark.slow
def test_collect_once_stores_events_and_fails_loudly_on_a_quarantined_page(
    cli_env: dict[str, str], tmp_path: Path, db: Database, past_simulator
) -> None:
    # given a Slack tenant whose audit pages are always corrupt, and a healthy Google tenant
    sim = past_simulator(faults="malformed=1@slack:audit,max_consecutive=0")
    path = _connections_file(
        tmp_path, sim, providers=["google", "slack"], streams={"google": ["login"], "slack": ["audit"]}
    )
    # when one pass runs
    result = _tenantguard(
        "collect", "--once", "--no-progress", env={**cli_env, "TENANTGUARD_CONNECTIONS_FILE": str(path)}
    )
    # then it exits 1 naming the quarantined stream, and Google's events are stored
    assert result.returncode == 1
    assert "FAILED sim-slack/audit" in " ".join(result.stderr.split())
    assert "quarantined" in result.stderr
    with db.session(readonly=True) as s:
        stored = int(s.exec(select(func.count()).select_from(Event).where(Event.provider == "google")).one())
    assert stored == sim.events("google:login", visible=True)["count"] > 0


@pytest.mark.slow
def test_ingest_reports_new_duplicate_and_quarantined_records(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    # given an Azure Monitor export of sign-ins with one broken line
    good = {
        "time": "2026-11-20T10:00:01Z",
        "category": "SignInLogs",
        "callerIpAddress": "203.0.113.9",
        "properties": {"id": "s1", "userPrincipalName": "alice@contoso.example", "status": {"errorCode": 0}},
    }
    export = tmp_path / "signins.jsonl"
    export.write_text(
        json.dumps(good) + "\n{not json\n" + json.dumps({**good, "properties": {"id": "s2"}}) + "\n"
    )
    # when ingested twice
    first = _tenantguard(
        "ingest", "--provider", "m365", "--stream", "signins", str(export), "--no-detect", env=cli_env
    )
    second = _tenantguard("ingest", "-p", "m365", "-s", "signins", str(export), "--no-detect", env=cli_env)
    # then the first run stores two events and quarantines line 2 (exit 2), the second adds nothing
    assert first.returncode == 2, first.stderr
    assert "2 new events, 0 already stored, 1 quarantined" in " ".join(first.stdout.split())
    assert f"{export}:2" in first.stderr
    assert "0 new events, 2 already stored" in " ".join(second.stdout.split())


@pytest.mark.slow
def test_ingest_goes_on_to_detection_and_incidents(cli_env: dict[str, str], tmp_path: Path) -> None:
    # given a Graph page of sign-ins: a phished device-code sign-in from a machine nobody manages
    signin = {
        "id": "dc1",
        "createdDateTime": "2026-11-20T14:29:00Z",
        "userPrincipalName": "jakob@contoso.example",
        "appDisplayName": "Microsoft Office",
        "ipAddress": "46.249.59.37",
        "authenticationProtocol": "deviceCode",
        "status": {"errorCode": 0},
        "deviceDetail": {"deviceId": "", "isCompliant": None, "isManaged": None},
    }
    export = tmp_path / "signins-page.json"
    export.write_text(json.dumps({"@odata.context": "x", "value": [signin]}))
    # when it is ingested
    result = _tenantguard("ingest", "-p", "m365", "-s", "signins", str(export), env=cli_env)
    # then detection runs and the finding becomes an incident
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert "1 new events" in out and "incidents: 1 created or changed" in out
