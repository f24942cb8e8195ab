"""Microsoft Teams: a policy step posts an Adaptive Card to a channel's incoming webhook (or
Workflows URL) — here a loopback HTTP server standing in for Teams — through the outbox: a refused
post is retried with back-off, and the card's link acknowledges as the page's channel."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlmodel import select

from core.models import AuditRecord
from core.models.incident import TimelineEntry
from core.models.oncall import Escalation
from oncall import acknowledge_by_token, deliver_pages, escalate_due, start_escalations
from tests.oncall.conftest import OPENED_BEFORE_T0, T0, oncall_document


class TeamsChannel:
    """What Teams received; the first `refuse` posts are answered 500 (a Teams outage)."""

    def __init__(self, refuse: int) -> None:
        self.posts: list[dict[str, Any]] = []
        self.refuse = refuse


@pytest.fixture
def teams() -> Iterator[tuple[str, TeamsChannel]]:
    channel = TeamsChannel(refuse=1)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's hook
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if channel.refuse:
                channel.refuse -= 1
                self.send_response(500)
                self.end_headers()
                return
            channel.posts.append({"content_type": self.headers["Content-Type"], "body": json.loads(body)})
            self.send_response(202)  # what a Workflows URL answers
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/workflows/abc", channel
    server.shutdown()
    thread.join(10)


def test_a_teams_step_posts_an_adaptive_card_through_the_outbox(
    db, settings, paging_sim, smtp, configure, make_incident, teams
):
    url, channel = teams
    document = oncall_document(paging_sim, smtp[0].port)
    document["policies"][0]["steps"][0]["targets"] = [{"type": "teams_channel", "url": url}]
    configure(document)
    incident = make_incident(**OPENED_BEFORE_T0).id
    with db.session() as session:
        start_escalations(session, settings, now=T0)
    escalate_due(db, settings, T0)

    first = deliver_pages(db, settings, T0)
    assert first.sent == [] and len(first.failed) == 1 and "answered 500" in next(iter(first.failed.values()))
    assert deliver_pages(db, settings, T0 + timedelta(minutes=1)).sent  # retried after its back-off

    [post] = channel.posts
    assert post["content_type"] == "application/json"
    [attachment] = post["body"]["attachments"]
    card = attachment["content"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["type"] == "AdaptiveCard" and card["body"][0]["text"].startswith(f"[P1] Incident #{incident}")
    link = card["actions"][0]["url"]
    assert "/oncall/ack/" in link
    with db.session() as session:
        acknowledge_by_token(session, link.rsplit("/", 1)[1], via="teams", now=T0 + timedelta(minutes=2))
    with db.session(readonly=True) as session:
        escalation = session.exec(select(Escalation)).one()
    assert (escalation.status, escalation.acknowledged_by) == ("acknowledged", "responder:teams:127.0.0.1")
    with db.session(readonly=True) as session:
        titles = [
            e.title
            for e in session.exec(select(TimelineEntry).where(TimelineEntry.incident_id == incident)).all()
        ]
        audit = [
            r.details
            for r in session.exec(select(AuditRecord).where(AuditRecord.object_id == str(incident))).all()
        ]
    # The Teams URL is a credential (whoever has it can post): only its host is ever written down.
    assert "On-call level 1 paged: teams:127.0.0.1" in titles
    assert url not in str(titles) and url not in str(audit)
