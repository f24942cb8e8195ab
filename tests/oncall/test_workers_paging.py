"""Done when, on PostgreSQL: a P1 walks a 3-step policy on two `tenantguard worker` processes
(Procrastinate), and the worker placing the second responder's voice call is SIGKILLed mid-send.

Given `tenantguard serve` (API only: Twilio's callbacks land there) and two workers, the first
responder is paged by SMS and Slack DM and does not answer; the second is called; the worker placing
the call is killed while Twilio (the simulator, slowed) is creating it. The survivor recovers the
dead worker's job, finds the call already placed (Twilio's status callback named it) and does not
call again; the callee presses 1; the escalation stops with its MTTA. Each page reached its person
exactly once, and every step, attempt and delivery state is on the timeline and in a verifying
audit chain."""

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
from sqlmodel import col, select

from core.audit import verify_database
from core.db import Database
from core.models import AuditRecord
from core.models.incident import TimelineEntry
from core.models.oncall import Escalation, Page
from simulator.http import free_port
from tests.oncall.conftest import slack_users
from tests.oncall.test_escalation import twilio

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from cli.main import run; run()"]


def _document(handle: Any, api_url: str) -> dict[str, Any]:
    alice, bob = slack_users(handle, 2)
    return {
        "responders": [
            {"name": "alice", "phone": "+15550000001", "slack_user": alice, "notify": ["sms", "slack"]},
            {"name": "bob", "phone": "+15550000002", "slack_user": bob, "notify": ["voice"]},
        ],
        "policies": [
            {
                "name": "security",
                "steps": [
                    {"targets": [{"type": "responder", "name": "alice"}], "delay_minutes": 0.1},
                    # long enough for the dead worker's job and page to be recovered first
                    {"targets": [{"type": "responder", "name": "bob"}], "delay_minutes": 5},
                    {"targets": [{"type": "slack_channel", "channel": "#security-ops"}], "delay_minutes": 5},
                ],
            }
        ],
        "routes": [{"name": "p1", "policy": "security", "priorities": ["P1"]}],
        "channels": {
            "public_url": api_url,
            "twilio": {
                "account_sid": handle.info["twilio.account_sid"],
                "auth_token_ref": "env:TG_TEST_TWILIO_TOKEN",
                "from_number": "+15559990000",
                "base_url": handle.info["twilio.base_url"],
            },
        },
    }


def _wait(
    condition: Callable[[], Any],
    what: str,
    processes: list[subprocess.Popen],
    logs: list[Path],
    seconds: float = 240,
    poll: float = 0.3,
) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        for process, log in zip(processes, logs, strict=True):
            assert process.poll() is None or process.returncode == -signal.SIGKILL, (
                f"{process.args[-3:]} exited ({process.returncode}):\n{log.read_text()[-3000:]}"
            )
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n" + "\n".join(
            f"--- {log.name}\n{log.read_text()[-2500:]}" for log in logs
        )
        time.sleep(poll)


def test_a_worker_killed_mid_page_neither_loses_nor_repeats_it(
    db: Database, database_url: str, tmp_path: Path, paging_sim, make_incident, configure
) -> None:
    if db.dialect != "postgresql":
        pytest.skip("workers are a PostgreSQL deployment; SQLite is for one process")
    handle = paging_sim
    port = free_port()
    api_url = f"http://127.0.0.1:{port}"
    configure(_document(handle, api_url))
    env = {
        **os.environ,
        "TENANTGUARD_DATABASE_URL": database_url,
        "TENANTGUARD_DATA_DIR": str(tmp_path / "data"),
        "TENANTGUARD_PIPELINE_ENGINE": "procrastinate",
        "TENANTGUARD_PIPELINE_SWEEP_SECONDS": "1",
        "TENANTGUARD_WORKER_HEARTBEAT_SECONDS": "1",
        "TENANTGUARD_LOG_LEVEL": "INFO",
        "TG_TEST_TWILIO_TOKEN": handle.info["twilio.auth_token"],
    }
    # Twilio takes 8 s to create a call (our client waits 10 s): the worker placing bob's call is caught inside the send.
    handle.set_faults("slow=1:8@twilio:calls")
    processes: list[subprocess.Popen] = []
    logs: list[Path] = []

    def start(name: str, *args: str) -> subprocess.Popen:
        log = tmp_path / f"{name}.log"
        logs.append(log)
        with log.open("wb") as out:
            process = subprocess.Popen([*CLI, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        processes.append(process)
        return process

    try:
        start("serve", "serve", "--port", str(port))
        _wait(lambda: _healthy(api_url), "serve's API", processes, logs)
        workers = [start(f"worker{n}", "worker", "--concurrency", "2") for n in (1, 2)]
        incident = make_incident().id

        # Level 1: alice by SMS and Slack DM; she does not answer.
        _wait(lambda: twilio(handle).messages.list(to="+15550000001"), "alice's SMS", processes, logs)

        # Level 2: bob's call; the worker placing it is killed while Twilio creates it — once Twilio
        # has the request (the slow fault fired when it arrived), not merely once the worker logged
        # that it is about to send: killed before the request left, the call was never placed and
        # the survivor rightly places it (attempt 2), which is another story than this test's.
        def placing() -> Path | None:
            if not handle.faults_fired().get("slow"):
                return None
            return next((log for log in logs[1:] if "(voice to bob), attempt 1" in log.read_text()), None)

        victim_log = _wait(placing, "a worker to be placing bob's call", processes, logs, poll=0.05)
        victim = workers[logs[1:].index(victim_log)]
        victim.send_signal(signal.SIGKILL)
        victim.wait(30)
        handle.set_faults(None)

        # The survivor takes over: the call is known (Twilio's status callback named it), not placed again.
        page = _wait(lambda: _sent(db, "voice"), "bob's page recorded as sent", processes, logs)
        [call] = twilio(handle).calls.list(to="+15550000002")
        assert page.provider_ref == call.sid
        answer = requests.post(
            f"{handle.info['admin_url']}/twilio/calls/{call.sid}/digits", json={"digits": "1"}, timeout=60
        ).json()
        assert answer["status"] == 200 and "acknowledged" in answer["reply"], answer
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    with db.session(readonly=True) as session:
        escalation = session.exec(select(Escalation).where(Escalation.incident_id == incident)).one()
        pages = session.exec(select(Page).where(Page.incident_id == incident)).all()
        audit = session.exec(
            select(AuditRecord).where(AuditRecord.object_id == str(incident)).order_by(col(AuditRecord.seq))
        ).all()
        timeline = [
            e.title
            for e in session.exec(
                select(TimelineEntry)
                .where(TimelineEntry.incident_id == incident, TimelineEntry.kind == "oncall")
                .order_by(col(TimelineEntry.at), col(TimelineEntry.id))
            ).all()
        ]
        chain = verify_database(session)
    # Escalation stopped by bob's keypress, MTTA recorded; level 3 never paged.
    assert (escalation.status, escalation.acknowledged_by, escalation.acknowledged_via) == (
        "acknowledged",
        "responder:bob",
        "voice",
    )
    [ack] = [r for r in audit if r.action == "oncall.escalation.acknowledged"]
    assert ack.details["mtta_seconds"] > 0
    assert sorted((p.responder, p.medium, p.status, p.attempts) for p in pages) == [
        ("alice", "slack", "sent", 1),
        ("alice", "sms", "sent", 1),
        ("bob", "voice", "sent", 1),
    ]
    # Each person got each page exactly once.
    assert len(twilio(handle).messages.list(to="+15550000001")) == 1
    assert len(twilio(handle).calls.list()) == 1
    assert len([c for c in handle.changes if c["action"] == "post_message"]) == 1
    # Every step and attempt in the audit chain, which verifies.
    assert [r.details["step"] for r in audit if r.action == "oncall.step.fired"] == [1, 2]
    sent = [r for r in audit if r.action == "oncall.page.sent"]
    assert sorted(r.details["medium"] for r in sent) == ["slack", "sms", "voice"]
    [voice] = [r for r in sent if r.details["medium"] == "voice"]
    assert voice.details["confirmed_by"] == "twilio status callback"
    deliveries = {
        (r.details["medium"], r.details["status"]) for r in audit if r.action == "oncall.page.delivery"
    }
    assert {("sms", "delivered"), ("voice", "ringing"), ("voice", "completed")} <= deliveries
    assert chain.ok, chain
    # And on the timeline, in order.
    assert timeline[0] == "On-call level 1 paged: alice"
    assert "On-call level 2 paged: bob" in timeline
    assert any(t.startswith("Page to bob by voice sent (its sender stopped mid-send") for t in timeline)
    assert "SMS to alice (attempt 1): delivered to the phone" in timeline
    assert "Call to bob (attempt 1): ringing" in timeline
    assert any(t.startswith("Page acknowledged by responder:bob via voice") for t in timeline)


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=5).status_code in (200, 503)
    except requests.RequestException:
        return False


def _sent(db: Database, medium: str) -> Page | None:
    with db.session(readonly=True) as session:
        return session.exec(select(Page).where(Page.medium == medium, Page.status == "sent")).first()
