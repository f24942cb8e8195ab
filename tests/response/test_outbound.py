"""The status page's subscribers (e-mail over SMTP, signed webhooks) and generic signed webhooks for
other systems, delivered by the response stage to loopback servers.

Given a subscriber mailbox (the simulator's SMTP server, simulator/mail.py, reached with smtplib)
and a webhook receiver (a real HTTP server verifying Standard Webhooks signatures), when a customer update is approved, then the
subscribers are told once (e-mail and webhook), an internal update and a drill's update never; an
urgent incident's timeline lines reach the generic webhook in order, marked a drill for a drill,
and a receiver that was down gets them on the next run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook

from core.audit import Actor
from response import run_due
from response.journal import state_for
from response.updates import publish_update, write_update
from simulator.mail import running
from tests.response.conftest import INTAKE_SECRET, response_document
from timeline.lifecycle import add_note, transition

WRITER, APPROVER = Actor.cli("principal:writer"), Actor.cli("principal:approver")
HOOK_SECRET = INTAKE_SECRET


class Receiver:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.down = False


@pytest.fixture
def receiver() -> Iterator[tuple[str, Receiver]]:
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server hook
            body = self.rfile.read(int(self.headers["content-length"])).decode()
            if got.down:
                self.send_response(503)
                self.end_headers()
                return
            payload = Webhook(HOOK_SECRET).verify(body, {k.lower(): v for k, v in self.headers.items()})
            got.events.append({"id": self.headers["webhook-id"], "path": self.path, **payload})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", got
    server.shutdown()
    server.server_close()


@pytest.fixture
def outbound(settings, configure_response, receiver, monkeypatch):
    url, got = receiver
    monkeypatch.setenv("TG_TEST_HOOK_SECRET", HOOK_SECRET)
    with running() as store:
        smtp_port = store.smtp_port
        document = response_document(None, jira=False) | {"channels": {"enabled": False}}
        document["status_page"]["subscribers"] = {
            "emails": ["ops@customer.example"],
            "webhooks": [{"url": f"{url}/status-hook", "secret_ref": "env:TG_TEST_HOOK_SECRET"}],
        }
        document["smtp"] = {"host": "127.0.0.1", "port": smtp_port, "sender": "status@northwind.example"}
        document["webhooks"] = {
            "targets": [{"url": f"{url}/events", "secret_ref": "env:TG_TEST_HOOK_SECRET"}]
        }
        config = configure_response(document)
        yield config, got, store


def test_subscribers_are_told_of_each_published_public_update_once(
    db, settings, outbound, make_incident
) -> None:
    config, got, store = outbound
    incident = make_incident("Global admin mailbox hijacked", priority="P1")
    drill = make_incident("[DRILL] practice", priority="P1")
    with db.session() as session:
        state_for(session, drill.id).drill = True
    with db.session() as session:
        write_update(
            session,
            incident.id,
            audience="executives",
            text="Board: CFO mailbox.",
            actor=WRITER,
            config=config,
        )
        public = write_update(
            session,
            incident.id,
            audience="customers",
            text="Some users cannot sign in.",
            actor=WRITER,
            config=config,
            state="identified",
            components=["Sign-in"],
        )
        practice = write_update(
            session, drill.id, audience="customers", text="Practice.", actor=WRITER, config=config
        )
    run_due(db, settings)
    assert (
        store.delivered() == [] and [e for e in got.events if e["path"] == "/status-hook"] == []
    )  # drafts: nobody
    with db.session() as session:
        publish_update(session, public.id, actor=APPROVER)
        publish_update(session, practice.id, actor=APPROVER)
    report = run_due(db, settings)
    assert report.outbound.subscribers_told == [public.id] and not report.outbound.failed
    [mail] = store.delivered()
    text = mail.raw.decode()
    assert "To: ops@customer.example" in text and "Some users cannot sign in." in text
    assert "Subject: [Northwind status]" in text and "Board" not in text and "hijacked" not in text
    [hook] = [e for e in got.events if e["path"] == "/status-hook"]
    assert hook["id"] == f"status-update-{public.id}" and hook["type"] == "status.incident_update"
    assert hook["data"]["incident_update"]["status"] == "identified"
    assert hook["data"]["incident"]["components"] == ["Sign-in"]
    run_due(db, settings)
    assert len(store.delivered()) == 1 and len([e for e in got.events if e["path"] == "/status-hook"]) == 1


def test_timeline_lines_reach_the_generic_webhook_in_order_and_after_an_outage(
    db, settings, outbound, make_incident
) -> None:
    _, got, _ = outbound
    incident = make_incident("Payroll file public", priority="P2")
    make_incident("Low", priority="P4")
    transition(db, incident.id, "triaged", actor=WRITER)
    got.down = True
    report = run_due(db, settings)
    assert report.outbound.failed and "HTTP 503" in report.outbound.failed[0]
    got.down = False
    add_note(db, incident.id, "Link removed.", actor=WRITER)
    run_due(db, settings)
    events = [e for e in got.events if e["path"] == "/events"]
    assert [e["data"]["entry"]["kind"] for e in events] == ["status", "note"]
    assert all(
        e["type"] == "incident.timeline" and e["data"]["incident"]["id"] == incident.id for e in events
    )
    assert events[0]["data"]["incident"]["drill"] is False
    assert len({e["id"] for e in events}) == 2
    run_due(db, settings)
    assert len([e for e in got.events if e["path"] == "/events"]) == 2
