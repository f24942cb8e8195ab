"""End to end: `tenantguard serve`, a real process with short retention set in its environment, puts
an incident on legal hold through the API and, by itself, deletes what is due — closed incidents,
old findings and messages, the oldest audit records — keeps the held incident with everything
linked to it, and leaves an audit chain that `tenantguard audit verify --database` accepts; the
same service answers data-subject export and erasure (four eyes, refused for a held person)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from ocsf.v1_7_0.events import IncidentFinding
from sqlmodel import select

from api.config import ApiSettings
from api.principals.service import create_principal
from api.tokens import load_pepper
from core.audit import Actor, AuditAction, record
from core.clock import utcnow
from core.db import Database
from core.models import AuditCheckpoint, AuditRecord, Event, Finding, Incident, Message, Role, TimelineEntry
from core.settings import Settings
from simulator.http import free_port
from tests.cli_process import popen_cli

pytestmark = pytest.mark.slow


def _state(db: Database, held: int, cli_held: int, free: int, old: int) -> dict[str, bool]:
    with db.session(readonly=True) as session:
        return {
            "held_kept": session.get(Incident, held) is not None
            and session.get(Incident, cli_held) is not None,
            "free_gone": session.get(Incident, free) is None,
            "old_gone": session.get(Incident, old) is None,
            "truncated": session.exec(select(AuditCheckpoint)).first() is not None,
            "old_message_gone": session.exec(
                select(Message).where(Message.author == "carol@x.example")
            ).first()
            is None,
        }


def test_serve_applies_retention_by_itself_and_keeps_what_is_on_hold(
    db: Database, settings: Settings, database_url: str, tmp_path: Path, make_incident, make_finding
) -> None:
    # given old data of every class, a long-closed incident, two open ones, an officer and an analyst
    long_ago = utcnow() - timedelta(days=40)
    old = make_incident(
        "long closed", people=["carol@x.example"], status="closed", closed_at=long_ago, updated_at=long_ago,
        first_seen=long_ago,
    ).id  # fmt: skip
    held = make_incident("kept for litigation").id
    cli_held = make_incident(
        "kept since long ago", status="closed", closed_at=long_ago, updated_at=long_ago, first_seen=long_ago
    ).id
    free = make_incident("nobody needs this", people=["carol@x.example"]).id
    held_finding = make_finding(incident_id=held, last_seen=long_ago).id
    make_finding(people=["carol@x.example"], last_seen=long_ago, status="resolved")  # no incident takes it
    with db.session() as session:
        for n, author in enumerate(["alice@northwind.example", "carol@x.example"]):
            message = Message(
                provider="slack",
                stream="messages",
                provider_message_id=f"m{n}",
                author=author,
                sent_at=long_ago,
            )
            session.add(message)
            session.flush()
            if n == 0:
                session.add(
                    TimelineEntry(incident_id=cli_held, at=long_ago, kind="message", source="slack", title="message",
                                  ref_type="message", ref_id=str(message.id), dedup_key=f"message:{message.id}")
                )  # fmt: skip
        for n in range(3):
            record(session, actor=Actor.cli("principal:test"), action=AuditAction.INCIDENT_NOTE_ADDED,
                   object_type="incident", object_id=free, details={"n": n})  # fmt: skip
    pepper = load_pepper(settings, ApiSettings())
    _, officer = create_principal(
        db, pepper, name="olga", role=Role.COMPLIANCE_OFFICER, actor=Actor.cli("principal:test")
    )
    _, second_officer = create_principal(
        db, pepper, name="paula", role=Role.COMPLIANCE_OFFICER, actor=Actor.cli("principal:test")
    )
    with db.session() as session:
        session.add(Event(provider="m365", stream="signins", provider_event_id="erin-1", occurred_at=utcnow(),
                          actor="erin@x.example"))  # fmt: skip
    _, analyst = create_principal(
        db, pepper, name="ann", role=Role.ANALYST, actor=Actor.cli("principal:test")
    )
    cli = [sys.executable, "-c", "from cli.main import run; run()"]
    env = dict(os.environ, TENANTGUARD_DATA_DIR=str(settings.data_dir), TENANTGUARD_DATABASE_URL=database_url)
    # the CLI refuses a principal without legal_hold:write, and places the hold for the officer (each
    # authenticated by their token: a name after --actor is never taken on trust)
    refused = subprocess.run(
        [*cli, "compliance", "holds", "place", "--incident", str(cli_held), "--reason", "case 16", "--actor", "ann"],
        env=dict(env, TENANTGUARD_TOKEN=analyst), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert refused.returncode != 0 and "legal_hold:write" in refused.stdout + refused.stderr
    placed = subprocess.run(
        [*cli, "compliance", "holds", "place", "--incident", str(cli_held), "--reason", "case 16", "--actor", "olga"],
        env=dict(env, TENANTGUARD_TOKEN=officer), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert placed.returncode == 0, placed.stdout + placed.stderr
    port = free_port()
    env = dict(
        env,
        TENANTGUARD_PIPELINE_SWEEP_SECONDS="1",
        TENANTGUARD_RETENTION_INTERVAL="1s",
        TENANTGUARD_RETENTION_INCIDENTS="3s",
        TENANTGUARD_RETENTION_FINDINGS="30d",
        TENANTGUARD_RETENTION_MESSAGES="30d",
        TENANTGUARD_RETENTION_AUDIT="5s",
    )
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = popen_cli(
            ["serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            # when the officer puts one open incident on hold through the API of the running service,
            # and the analyst then resolves both open incidents
            as_officer = {"Authorization": f"Bearer {officer}"}
            as_analyst = {"Authorization": f"Bearer {analyst}"}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                deadline = time.monotonic() + 240  # generous: CI is a loaded machine
                while True:
                    assert server.poll() is None, (
                        f"serve exited ({server.returncode}):\n{log.read_text()[-3000:]}"
                    )
                    assert time.monotonic() < deadline, f"serve never answered:\n{log.read_text()[-3000:]}"
                    try:
                        response = client.post(
                            "/compliance/holds",
                            json={"kind": "incident", "target": str(held), "reason": "case 17"},
                            headers=as_officer,
                        )
                        break
                    except httpx.TransportError:
                        time.sleep(0.5)
                assert response.status_code == 201, response.text
                hold_id = response.json()["id"]
                refused = client.post(
                    "/compliance/holds", json={"kind": "incident", "target": str(free), "reason": "x" * 9},
                    headers=as_analyst,
                )  # fmt: skip
                assert refused.status_code == 403
                for incident in (held, free):
                    moved = client.post(
                        f"/incidents/{incident}/transition", json={"to": "resolved"}, headers=as_analyst
                    )
                    assert moved.status_code == 200, moved.text
                # then serve, by itself, deletes what is due (the free one 3 s after it ended) and keeps
                # what the hold covers, though it ended at the same time
                while not all((state := _state(db, held, cli_held, free, old)).values()):
                    assert server.poll() is None, (
                        f"serve exited ({server.returncode}):\n{log.read_text()[-3000:]}"
                    )
                    assert time.monotonic() < deadline, (
                        f"retention never ran ({state}):\n{log.read_text()[-3000:]}"
                    )
                    time.sleep(0.5)
                listed = client.get("/compliance/holds", params={"active": True}, headers=as_officer).json()
                assert [h["id"] for h in listed] == [1, hold_id]
                # and data-subject requests: an export, an erasure by two officers, one refused for a hold
                export = client.get(
                    "/compliance/privacy/export",
                    params={"person": "alice@northwind.example"},
                    headers=as_officer,
                )
                assert export.status_code == 200
                assert "message" in {orjson.loads(line)["table"] for line in export.text.splitlines()}
                asked = client.post(
                    "/compliance/privacy/erasures", json={"person": "erin@x.example", "reason": "DSAR 7"},
                    headers=as_officer,
                )  # fmt: skip
                assert asked.status_code == 201, asked.text
                own = client.post(
                    f"/compliance/privacy/erasures/{asked.json()['id']}/approve", headers=as_officer
                )
                assert own.status_code == 409
                done = client.post(
                    f"/compliance/privacy/erasures/{asked.json()['id']}/approve",
                    headers={"Authorization": f"Bearer {second_officer}"},
                )
                assert done.status_code == 200 and done.json()["result"] == {"event": 1}, done.text
                held_subject = client.post(
                    "/compliance/privacy/erasures", json={"person": "alice@northwind.example", "reason": "DSAR 8"},
                    headers=as_officer,
                )  # fmt: skip
                assert held_subject.status_code == 409 and "legal hold" in held_subject.text
                # and the incidents that remain come out as OCSF Incident Findings the schema accepts
                exported = client.get("/compliance/incidents/export", headers=as_officer)
                assert exported.status_code == 200
                events = [IncidentFinding.model_validate_json(line) for line in exported.text.splitlines()]
                assert {int(e.metadata.uid) for e in events} == {held, cli_held}
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)
    with db.session(readonly=True) as session:
        assert session.get(Finding, held_finding) is not None
        assert session.exec(select(Message).where(Message.author == "alice@northwind.example")).first()
        placed = session.exec(select(AuditRecord).where(AuditRecord.action == "legal_hold.placed")).all()
        assert [(r.actor, r.details["via"]) for r in placed] == [
            ("principal:olga", "cli"),
            ("principal:olga", "api"),
        ]
        purged = session.exec(select(AuditRecord).where(AuditRecord.action == "data.purged")).all()
        assert {r.details["class"] for r in purged} >= {"incidents", "findings", "messages"}
    # and the truncated chain still verifies, with the real CLI
    verify = subprocess.run(
        [*cli, "audit", "verify", "--database"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
