"""A webhook step: the page is POSTed to a local receiver, signed per Standard Webhooks, and verifies
with the `standardwebhooks` library (a tampered body does not)."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from oncall import run_due
from tests.oncall.conftest import OPENED_BEFORE_T0, T0, oncall_document

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


@pytest.fixture
def receiver():
    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server hook
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/page", received
    server.shutdown()
    server.server_close()


def test_a_webhook_page_is_signed_per_standard_webhooks(
    db, settings, paging_sim, smtp, configure, make_incident, receiver, monkeypatch
):
    url, received = receiver
    monkeypatch.setenv("TG_TEST_WEBHOOK_SECRET", SECRET)
    document = oncall_document(paging_sim, smtp[0].port)
    document["policies"][0]["steps"][0]["targets"] = [
        {"type": "webhook", "url": url, "secret_ref": "env:TG_TEST_WEBHOOK_SECRET"}
    ]
    configure(document)
    incident = make_incident(**OPENED_BEFORE_T0).id

    report = run_due(db, settings, now=T0)

    assert len(report.outbox.sent) == 1 and not report.outbox.failed
    [(headers, body)] = received
    payload = Webhook(SECRET).verify(body, headers)
    assert payload["type"] == "incident.page" and payload["incident"]["id"] == incident
    assert json.loads(body)["step"] == 1
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace(b"incident.page", b"incident.pagf"), headers)
