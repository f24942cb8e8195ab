"""`python -m simulator serve` (one JSON line, serves until SIGTERM) and `tenantguard simulator truth`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import requests
from typer.testing import CliRunner

from cli.main import app

REQUIRED = {
    "m365.authority",
    "m365.ca_bundle",
    "m365.tenant_id",
    "m365.client_id",
    "m365.client_secret",
    "m365.graph_base_url",
    "m365.management_base_url",
    "google.api_endpoint",
    "google.service_account_file",
    "google.subject",
    "google.customer_id",
    "slack.base_url",
    "slack.bot_token",
    "slack.admin_token",
    "slack.audit_base_url",
    "slack.audit_token",
    "admin_url",
    "mail.smtp_host",
    "mail.smtp_port",
    "mail.imap_port",
    "mail.smtp_user",
    "oidc.issuer",
    "oidc.client_id",
}


def test_serve_prints_one_json_line_and_stops_on_sigterm():
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulator",
            "serve",
            "--scenario",
            "quiet_week",
            "--users",
            "12",
            "--days",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(process.stdout.readline())
        session = requests.Session()
        session.trust_env = False
        truth = session.get(f"{info['admin_url']}/truth").json()
        mail = session.get(f"{info['admin_url']}/mail").json()
        issuer = session.get(f"{info['oidc.issuer']}/.well-known/openid-configuration").json()["issuer"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()

    assert set(info) >= REQUIRED
    assert info["m365.authority"].startswith("https://127.0.0.1:")
    assert truth["scenario"] == "quiet_week" and truth["users"] == 12
    assert (mail["mail.smtp_port"], mail["delivered"]) == (info["mail.smtp_port"], [])
    assert issuer == info["oidc.issuer"] == f"{info['admin_url'].removesuffix('/_sim')}/oidc"
    assert process.stdout.read() == ""


def test_truth_command_prints_the_ground_truth_json():
    result = CliRunner().invoke(
        app, ["simulator", "truth", "--scenario", "account_takeover", "--start", "2026-03-02T00:00:00Z"]
    )

    truth = json.loads(result.stdout)
    assert result.exit_code == 0
    assert truth["start"].startswith("2026-03-02T00:00:00")
    assert [s["id"] for s in truth["stories"][0]["steps"]][:2] == ["spray", "mfa_fatigue"]


def test_an_unknown_scenario_is_one_clear_line():
    result = subprocess.run(
        [sys.executable, "-m", "simulator", "truth", "--scenario", "nope"], capture_output=True, text=True
    )

    assert result.returncode == 2
    assert "no scenario 'nope'" in result.stderr and "account_takeover" in result.stderr


def test_write_connections_also_points_email_paging_and_console_sso_at_the_simulator(
    make_simulator, tmp_path
) -> None:
    from cli.commands.simulator import write_mail_and_sso
    from oncall.files import load_files

    info = make_simulator("quiet_week", users=8, days=1, mail=True).info
    oncall, sso = write_mail_and_sso(info, tmp_path / "sim.toml")
    smtp = load_files([oncall]).channels.smtp
    assert smtp is not None and (smtp.port, smtp.starttls, smtp.ca_file) == (
        info["mail.smtp_port"],
        True,
        info["m365.ca_bundle"],
    )
    assert smtp.password_ref is not None and smtp.password_ref.startswith("file:")
    secret = smtp.password_ref.removeprefix("file:")
    assert (
        Path(secret).read_text() == info["mail.smtp_password"]
        and info["mail.smtp_password"] not in oncall.read_text()
    )
    assert f"TENANTGUARD_API_OIDC_ISSUER={info['oidc.issuer']}\n" in sso.read_text()
