"""Twilio's REST API (2010-04-01): Messages and Calls, created and listed, with HTTP Basic auth.

Only the account the simulator's credentials name exists. Resources are answered in Twilio's own
JSON shape (sid, status, date_created in RFC 2822, uri), so the official `twilio` client talks to
it as it would to api.twilio.com. Nothing is sent anywhere: every message and call is kept.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import threading
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from simulator.http import Request, Response

if TYPE_CHECKING:
    from simulator.server import Simulator

_ACCOUNT = r"/2010-04-01/Accounts/(?P<account>AC[0-9a-f]{32})"
_KINDS = {"Messages": ("SM", "messages"), "Calls": ("CA", "calls")}


def _error(status: int, code: int, message: str) -> Response:
    return Response.json(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status,
    )


class TwilioApi:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.lock = threading.Lock()
        self.resources: dict[str, list[dict[str, Any]]] = {"messages": [], "calls": []}

    def _authorised(self, request: Request) -> Response | None:
        creds = self.sim.credentials
        header = request.headers.get("authorization", "")
        try:
            user, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", ""
        if not (
            header.startswith("Basic ")
            and hmac.compare_digest(user, creds.twilio_account_sid)
            and hmac.compare_digest(password, creds.twilio_auth_token)
        ):
            return _error(401, 20003, "Authenticate")
        if request.params.get("account") != creds.twilio_account_sid:
            return _error(404, 20404, "The requested resource was not found")
        return None

    def create(self, request: Request, kind: str) -> Response:
        refused = self._authorised(request)
        if refused is not None:
            return refused
        prefix, key = _KINDS[kind]
        form = request.form
        to, sender = str(form.get("To") or ""), str(form.get("From") or "")
        if not to.startswith("+") or not sender.startswith("+"):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if kind == "Messages" and not form.get("Body"):
            return _error(400, 21602, "Message body is required.")
        if kind == "Calls" and not (form.get("Twiml") or form.get("Url")):
            return _error(400, 21205, "Url or Twiml is required.")
        account = request.params["account"]
        with self.lock:
            number = len(self.resources[key]) + 1
            sid = prefix + self.sim.tenant.ids.hex(key, number, length=32)
            resource: dict[str, Any] = {
                "sid": sid,
                "account_sid": account,
                "to": to,
                "from": sender,
                "status": "queued",
                "date_created": formatdate(self.sim.now() / 1_000_000, usegmt=True),
                "uri": f"/2010-04-01/Accounts/{account}/{kind}/{sid}.json",
            }
            if kind == "Messages":
                resource.update(body=str(form["Body"]), num_segments="1", direction="outbound-api")
            else:
                resource.update(
                    direction="outbound-api", twiml=str(form.get("Twiml") or ""), url=form.get("Url")
                )
            self.resources[key].append(resource)
        return Response.json(resource, 201)

    def list(self, request: Request, kind: str) -> Response:
        refused = self._authorised(request)
        if refused is not None:
            return refused
        _, key = _KINDS[kind]
        with self.lock:
            items = [dict(item) for item in reversed(self.resources[key])]
        to = request.arg("To")
        if to:
            items = [item for item in items if item["to"] == to]
        uri = f"/2010-04-01/Accounts/{request.params['account']}/{kind}.json"
        return Response.json(
            {
                key: items,
                "page": 0,
                "page_size": len(items),
                "start": 0,
                "end": max(0, len(items) - 1),
                "uri": uri,
                "first_page_uri": uri,
                "next_page_uri": None,
                "previous_page_uri": None,
            }
        )


def register(sim: Simulator) -> None:
    api = TwilioApi(sim)
    for kind in _KINDS:
        sim.router.add(
            "POST",
            rf"{_ACCOUNT}/{kind}\.json",
            functools.partial(api.create, kind=kind),
            "twilio",
            kind.lower(),
        )
        sim.router.add(
            "GET", rf"{_ACCOUNT}/{kind}\.json", functools.partial(api.list, kind=kind), "twilio", kind.lower()
        )
