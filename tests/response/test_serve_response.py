"""End to end: `tenantguard serve`, a real process on the simulator, runs the whole response flow.

A monitoring tool posts a signed critical alert to serve's intake; it becomes a P1 incident; serve
opens its Slack channel (responders invited, summary pinned), mirrors a responder's message back
onto the timeline, reminds that a stakeholder update is due, opens a Jira issue; an analyst writes
a customer update that an approver publishes, and the public status page shows it (and nothing
internal) and tells the page's e-mail subscriber; the issue is moved to Done in Jira and serve
resolves the incident and drafts its postmortem (with the customer impact score). A drill started
from the CLI runs through the same flow, marked a drill, off the page. Beside it, serve takes a
PagerDuty Events v2 trigger (routing key), reads a report mailed to the intake mailbox (SMTP in,
IMAP out) and mirrors a Jira comment onto the timeline, all by itself.

Nothing but the simulator, the alert sender and the people touch serve after it starts."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from sqlmodel import select
from standardwebhooks import Webhook

from collectors import connections_from_simulator
from collectors.connections import sync_connections
from core.audit import Actor
from core.db import Database
from core.models import Drill, Incident, IncidentResponse, TimelineEntry
from core.settings import Settings
from simulator.http import free_port
from tests.cli_process import popen_cli
from tests.response.conftest import (
    INTAKE_SECRET,
    ROUTING_KEY,
    person_posts,
    response_document,
    slack_user_ids,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _wait(
    condition: Callable[[], Any], what: str, server: subprocess.Popen, log: Path, seconds: float = 180
) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        assert server.poll() is None, f"serve exited ({server.returncode}):\n{log.read_text()[-4000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{log.read_text()[-4000:]}"
        time.sleep(0.5)


def _state(db: Database, incident_id: int) -> IncidentResponse | None:
    with db.session(readonly=True) as session:
        return session.exec(
            select(IncidentResponse).where(IncidentResponse.incident_id == incident_id)
        ).first()


def _signed(body: dict[str, Any], message_id: str) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    now = int(time.time())
    signature = Webhook(INTAKE_SECRET).sign(message_id, datetime.fromtimestamp(now, tz=UTC), raw.decode())
    return raw, {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(now),
        "webhook-signature": signature,
    }


def test_serve_runs_channel_updates_status_page_jira_postmortem_and_a_drill(
    make_simulator, db: Database, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    # the simulator's loopback mail: the intake reads its security@ mailbox over IMAP, status
    # subscribers get mail through its SMTP server (ground truth: what it delivered, to whom)
    handle = make_simulator("quiet_week", users=12, days=1, seed=3, mail=True)
    mail = handle.mail
    intake_user, intake_password = handle.info["mail.imap_user"], handle.info["mail.imap_password"]
    sync_connections(
        db,
        connections_from_simulator(handle.info, providers=["slack"], backfill=False),
        actor=Actor.cli("principal:test"),
    )
    lead = slack_user_ids(handle, 1)[0]
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    document = response_document(handle, public_url=api)
    document["channels"]["invite"] = [lead]
    document["updates"]["cadence_minutes"] = {
        "P1": 0.05
    }  # 3 s: the test waits on the reminder, never on this
    document["intake"]["routing_key_ref"] = "env:TG_TEST_ROUTING_KEY"
    document["intake"]["mailbox"] = {
        "host": "127.0.0.1",
        "port": mail.imap_port,
        "ssl": False,
        "user": intake_user,
        "password_ref": "env:TG_TEST_MAILBOX_PASSWORD",
    }
    document["status_page"]["subscribers"] = {"emails": ["ops@customer.example"]}
    document["smtp"] = {"host": "127.0.0.1", "port": mail.smtp_port, "sender": "status@northwind.example"}
    config_file = tmp_path / "response.yaml"
    config_file.write_text(yaml.safe_dump(document, sort_keys=False))
    env = dict(
        os.environ,
        TENANTGUARD_DATA_DIR=str(settings.data_dir),
        TENANTGUARD_DATABASE_URL=database_url,
        TENANTGUARD_PIPELINE_SWEEP_SECONDS="1",
        TENANTGUARD_RESPONSE_FILE=str(config_file),
        TG_TEST_INTAKE_SECRET=INTAKE_SECRET,
        TG_TEST_JIRA_TOKEN=handle.info["jira.token"],
        TG_TEST_ROUTING_KEY=ROUTING_KEY,
        TG_TEST_MAILBOX_PASSWORD=intake_password,
    )
    cli = [sys.executable, "-c", "from cli.main import run; run()"]

    def run(*args: str) -> str:
        done = subprocess.run(cli + list(args), env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr + done.stdout
        return done.stdout

    writer = run("principals", "create", "writer", "--role", "analyst").strip().splitlines()[-1]
    approver = run("principals", "create", "approver", "--role", "approver").strip().splitlines()[-1]
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = popen_cli(["serve", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait(lambda: _up(api), "serve to answer", server, log, 120)
            alert = {
                "title": "Payments API returning 500s for all card payments",
                "severity": "critical",
                "dedup_key": "payments-5xx",
                "source": "grafana",
            }
            body, headers = _signed(alert, "msg_e2e_1")
            accepted = requests.post(f"{api}/response/alerts", data=body, headers=headers, timeout=30)
            assert accepted.status_code == 202, accepted.text
            incident_id = _wait(
                lambda: _incident_of(db, accepted.json()["finding_id"]), "the P1 incident", server, log
            )
            state = _wait(
                lambda: (s := _state(db, incident_id)) and s.channel_id and s, "the channel", server, log
            )
            assert state.channel_name.startswith(f"inc-{incident_id}-payments-api")
            person_posts(handle, state.channel_id, lead, "Rolling back the payments deploy now")
            _wait(
                lambda: _entries(db, incident_id, "slack/incident-channel"),
                "the mirrored message",
                server,
                log,
            )
            _wait(
                lambda: [
                    e
                    for e in _entries(db, incident_id, "response")
                    if "update" in e.title and "due" in e.title
                ],
                "the update reminder",
                server,
                log,
            )
            key = _wait(lambda: (s := _state(db, incident_id)) and s.jira_key, "the Jira issue", server, log)
            requests.post(
                f"{handle.info['admin_url']}/jira/issues/{key}/comments",
                json={"body": "Finance confirms refunds are queued.", "author": "Fin Ops"},
                timeout=10,
            ).raise_for_status()
            _wait(lambda: _entries(db, incident_id, "jira"), "the mirrored Jira comment", server, log)
            # A PagerDuty-speaking tool and a person's e-mail reach serve's intake as well.
            paged = requests.post(
                f"{api}/response/pagerduty/v2/enqueue",
                json={
                    "routing_key": ROUTING_KEY,
                    "event_action": "trigger",
                    "dedup_key": "disk-full-build-3",
                    "payload": {"summary": "Disk full on build-3", "severity": "warning", "source": "nagios"},
                },
                timeout=30,
            )
            assert paged.status_code == 202 and paged.json()["status"] == "success", paged.text
            report = EmailMessage()
            report["From"], report["To"] = "dana@northwind.example", intake_user
            report["Subject"], report["Message-ID"] = (
                "Phishing mail about payroll",
                "<phish-1@northwind.example>",
            )
            report.set_content("Got a mail asking me to re-enter my payroll password.")
            with smtplib.SMTP("127.0.0.1", mail.smtp_port, timeout=30) as client:
                client.send_message(report)
            _wait(
                lambda: (
                    _finding(db, "alert:email:phish-1@northwind.example") and mail.inbox(intake_user)[0].seen
                ),
                "the mailed report",
                server,
                log,
            )
            assert _finding(db, "alert:pagerduty:disk-full-build-3")
            # An analyst writes the customer wording; an approver publishes it.
            made = requests.post(
                f"{api}/response/incidents/{incident_id}/updates",
                json={
                    "audience": "customers",
                    "text": "Card payments are failing; we are rolling back.",
                    "components": ["Sign-in"],
                },
                headers={"Authorization": f"Bearer {writer}"},
                timeout=30,
            )
            assert made.status_code == 201, made.text
            assert requests.get(f"{api}/status/api/v2/summary.json", timeout=30).json()["incidents"] == []
            published = requests.post(
                f"{api}/response/updates/{made.json()['id']}/publish",
                headers={"Authorization": f"Bearer {approver}"},
                timeout=30,
            )
            assert published.status_code == 200, published.text
            page = requests.get(f"{api}/status", timeout=30)
            assert page.status_code == 200 and "Card payments are failing" in page.text
            assert "Payments API returning 500s" not in page.text  # the internal title never leaks
            _wait(lambda: mail.delivered(to="ops@customer.example"), "the subscriber's e-mail", server, log)
            assert b"Card payments are failing" in mail.delivered(to="ops@customer.example")[0].raw
            # A drill from the CLI runs through the same flow, marked, and stays off the status page.
            run("drill", "start", "data-exposure")
            drill_incident = _wait(lambda: _drill_incident(db), "the drill's incident", server, log)
            drill_state = _wait(
                lambda: (s := _state(db, drill_incident)) and s.channel_id and s,
                "the drill channel",
                server,
                log,
            )
            assert drill_state.drill and drill_state.channel_name.startswith("drill-")
            # The issue is moved to Done in Jira: serve resolves the incident and drafts the postmortem.
            requests.post(
                f"{handle.info['admin_url']}/jira/issues/{key}/status", json={"status": "Done"}, timeout=10
            ).raise_for_status()
            _wait(
                lambda: (s := _state(db, incident_id)) and s.postmortem_markdown,
                "the postmortem",
                server,
                log,
            )
            markdown = requests.get(
                f"{api}/response/incidents/{incident_id}/postmortem",
                headers={"Authorization": f"Bearer {writer}"},
                timeout=30,
            )
            assert markdown.status_code == 200 and markdown.headers["content-type"].startswith(
                "text/markdown"
            )
            assert f"# Postmortem: incident #{incident_id}" in markdown.text and "Jira issue" in markdown.text
            assert "Customer impact score: **" in markdown.text
            summary = requests.get(f"{api}/status/api/v2/summary.json", timeout=30).json()
            assert [i["id"] for i in summary["incidents"]] == [str(incident_id)]
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)
    with db.session(readonly=True) as session:
        assert session.get(Incident, incident_id).status == "resolved"
    issues = requests.get(handle.info["admin_url"] + "/jira/issues", timeout=10).json()["issues"]
    labels = {i["key"]: i["fields"]["labels"] for i in issues}
    assert labels[key] == ["tenantguard"] and any("drill" in v for v in labels.values())


def _up(api: str) -> bool:
    try:
        return requests.get(f"{api}/health", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _incident_of(db: Database, finding_id: int) -> int | None:
    from core.models import Finding

    with db.session(readonly=True) as session:
        finding = session.get(Finding, finding_id)
        return finding.incident_id if finding is not None else None


def _entries(db: Database, incident_id: int, source: str) -> list[TimelineEntry]:
    with db.session(readonly=True) as session:
        return list(
            session.exec(
                select(TimelineEntry).where(
                    TimelineEntry.incident_id == incident_id, TimelineEntry.source == source
                )
            ).all()
        )


def _finding(db: Database, dedup_key: str) -> bool:
    from core.models import Finding

    with db.session(readonly=True) as session:
        return session.exec(select(Finding.id).where(Finding.dedup_key == dedup_key)).first() is not None


def _drill_incident(db: Database) -> int | None:
    with db.session(readonly=True) as session:
        drill = session.exec(select(Drill)).first()
        return drill.incident_id if drill is not None else None
