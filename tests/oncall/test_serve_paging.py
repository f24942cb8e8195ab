"""End to end: `tenantguard serve`, a real process on the simulator with the on-call configuration
applied from files, pages the on-call responder about the attack story's P1 on every configured
channel (Slack through slack_sdk, SMS through the official twilio client, e-mail to a local SMTP
server), escalates to the next level when nobody answers, and stops once the second responder
clicks Acknowledge in Slack (the simulator delivers the signed click to serve's API).

Nothing but the simulator, the SMTP server and the person clicking touches serve after it starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from sqlmodel import col, select

from collectors import connections_from_simulator
from collectors.connections import sync_connections
from core.audit import Actor
from core.db import Database
from core.models import AuditRecord, Incident
from core.models.oncall import Escalation, Page
from core.settings import Settings
from simulator.http import free_port
from tests.cli_process import popen_cli
from tests.oncall.conftest import slack_users
from tests.oncall.test_escalation import twilio

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
STEP_MINUTES = 0.1  # 6 s between levels: the test waits on conditions, never on these


def _wait(
    condition: Callable[[], Any], what: str, server: subprocess.Popen, log: Path, seconds: float
) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        assert server.poll() is None, f"serve exited ({server.returncode}):\n{log.read_text()[-4000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{log.read_text()[-4000:]}"
        time.sleep(0.5)


def _files(directory: Path, handle: Any, smtp_port: int, api_url: str) -> tuple[list[Path], str, str]:
    """Schedules as code: responders, the schedule, the policy and its route, the channels — four files."""
    alice, bob = slack_users(handle, 2)
    documents = {
        "responders.yaml": {
            "responders": [
                {
                    "name": "alice",
                    "email": "alice@example.com",
                    "phone": "+15550000001",
                    "slack_user": alice,
                    "timezone": "Europe/Paris",
                    "notify": ["slack", "sms", "email"],
                },
                {
                    "name": "bob",
                    "email": "bob@example.com",
                    "phone": "+15550000002",
                    "slack_user": bob,
                    "timezone": "America/New_York",
                    "notify": ["slack", "voice", "email"],
                },
            ]
        },
        "schedule.yaml": {
            "schedules": [
                {
                    "name": "primary",
                    "timezone": "Europe/Paris",
                    "layers": [
                        {
                            "name": "all-week",
                            "users": ["alice"],
                            "rotation": "weekly",
                            "start": "2026-01-05T09:00:00",
                        }
                    ],
                }
            ]
        },
        "policy.yaml": {
            "policies": [
                {
                    "name": "security",
                    "steps": [
                        {"targets": [{"type": "schedule", "name": "primary"}], "delay_minutes": STEP_MINUTES},
                        {"targets": [{"type": "responder", "name": "bob"}], "delay_minutes": STEP_MINUTES},
                        {
                            "targets": [{"type": "slack_channel", "channel": "#security-ops"}],
                            "delay_minutes": 1,
                        },
                    ],
                }
            ],
            "routes": [{"name": "p1", "policy": "security", "priorities": ["P1"]}],
        },
        "channels.yaml": {
            "channels": {
                "public_url": api_url,
                "slack_signing_secret_ref": "env:TG_E2E_SLACK_SIGNING_SECRET",
                "smtp": {"host": "127.0.0.1", "port": smtp_port},
                "twilio": {
                    "account_sid": handle.info["twilio.account_sid"],
                    "auth_token_ref": "env:TG_TEST_TWILIO_TOKEN",
                    "from_number": "+15559990000",
                    "base_url": handle.info["twilio.base_url"],
                },
            }
        },
    }
    paths = []
    for name, content in documents.items():
        path = directory / name
        path.write_text(yaml.safe_dump(content, sort_keys=False))
        paths.append(path)
    return paths, alice, bob


def _dms(handle: Any, user: str) -> list[dict[str, Any]]:
    return [
        c["target"]
        for c in handle.changes
        if c["action"] == "post_message" and c["target"].get("user") == user
    ]


def test_serve_pages_the_on_call_escalates_and_stops_on_a_slack_acknowledgement(
    make_simulator,
    db: Database,
    settings: Settings,
    database_url: str,
    tmp_path: Path,
    smtp,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    controller, mailbox = smtp
    handle = make_simulator("account_takeover", users=30, days=3)
    sync_connections(db, connections_from_simulator(handle.info), actor=Actor.cli("principal:test"))
    monkeypatch.setenv("TG_TEST_TWILIO_TOKEN", handle.info["twilio.auth_token"])  # this test's own client
    port = free_port()
    api_url = f"http://127.0.0.1:{port}"
    config_dir = tmp_path / "oncall"
    config_dir.mkdir()
    paths, alice, bob = _files(config_dir, handle, controller.port, api_url)
    # The Slack app's interactivity Request URL points at serve's API (as configured at api.slack.com).
    requests.post(
        handle.info["admin_url"] + "/slack/app",
        json={"interactivity_url": f"{api_url}/integrations/slack/interactions"},
        timeout=10,
    ).raise_for_status()
    env = dict(
        os.environ,
        TENANTGUARD_DATA_DIR=str(settings.data_dir),
        TENANTGUARD_DATABASE_URL=database_url,
        TENANTGUARD_PIPELINE_SWEEP_SECONDS="1",
        TG_TEST_TWILIO_TOKEN=handle.info["twilio.auth_token"],
        TG_E2E_SLACK_SIGNING_SECRET=handle.info["slack.signing_secret"],
    )
    cli = [sys.executable, "-c", "from cli.main import run; run()"]
    # The operator applies the files and makes bob a principal who may acknowledge from Slack.
    for command in (
        ["oncall", "apply", *map(str, paths)],
        ["principals", "create", "bob", "--role", "analyst", "--slack-user", bob],
    ):
        done = subprocess.run(cli + command, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr + done.stdout
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = popen_cli(["serve", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            # Level 1: the schedule's on-call (alice) on Slack, SMS and e-mail.
            sms = _wait(
                lambda: twilio(handle).messages.list(to="+15550000001"), "alice's SMS", server, log, 300
            )
            _wait(lambda: _dms(handle, alice), "alice's Slack DM", server, log, 60)
            _wait(
                lambda: [m for m in mailbox.messages if m["To"] == "alice@example.com"],
                "alice's mail",
                server,
                log,
                60,
            )
            with db.session(readonly=True) as session:
                [incident] = session.exec(select(Incident).where(Incident.priority == "P1")).all()
            assert f"Incident #{incident.id}" in sms[0].body and f"{api_url}/oncall/ack/" in sms[0].body
            # Nobody acknowledges: level 2, bob, by voice, Slack and e-mail.
            [call] = _wait(
                lambda: twilio(handle).calls.list(to="+15550000002"), "bob's call", server, log, 120
            )
            [dm] = _wait(lambda: _dms(handle, bob), "bob's Slack DM", server, log, 60)
            _wait(
                lambda: [m for m in mailbox.messages if m["To"] == "bob@example.com"],
                "bob's mail",
                server,
                log,
                60,
            )
            # Bob clicks Acknowledge; Slack (the simulator) delivers the signed click to serve's API.
            click = requests.post(
                handle.info["admin_url"] + "/slack/interactions",
                json={
                    "user": bob,
                    "channel": dm["channel"],
                    "ts": dm["ts"],
                    "action_id": "oncall_acknowledge",
                },
                timeout=60,
            ).json()
            assert click["status"] == 200, click
            assert click["reply"]["text"].startswith("Acknowledged by")
            # Escalation stops: the team channel (level 3) is never paged, even after its delay.
            time.sleep(3 * STEP_MINUTES * 60)
            assert server.poll() is None, log.read_text()[-3000:]
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)
    with db.session(readonly=True) as session:
        escalation = session.exec(select(Escalation).where(Escalation.incident_id == incident.id)).one()
        pages = session.exec(select(Page).where(Page.incident_id == incident.id)).all()
        audit = session.exec(
            select(AuditRecord)
            .where(AuditRecord.object_id == str(incident.id))
            .order_by(col(AuditRecord.seq))
        ).all()
    assert (escalation.status, escalation.acknowledged_by, escalation.acknowledged_via) == (
        "acknowledged",
        "principal:bob",
        "slack",
    )
    assert {(p.responder, p.medium) for p in pages if p.status == "sent"} == {
        ("alice", "slack"),
        ("alice", "sms"),
        ("alice", "email"),
        ("bob", "slack"),
        ("bob", "voice"),
        ("bob", "email"),
    }
    assert not [p for p in pages if p.medium == "slack" and p.address == "#security-ops"]
    acks = [r for r in audit if r.action == "oncall.escalation.acknowledged"]
    assert len(acks) == 1 and acks[0].actor == "principal:bob" and acks[0].details["mtta_seconds"] > 0
    assert [r.details["step"] for r in audit if r.action == "oncall.step.fired"] == [1, 2]
    assert call.to == "+15550000002"
