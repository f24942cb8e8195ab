"""Twilio's REST API (2010-04-01): Messages and Calls, created and listed, with HTTP Basic auth.

Only the account the simulator's credentials name exists. Resources are answered in Twilio's own
JSON shape (sid, status, date_created in RFC 2822, uri), so the official `twilio` client talks to
it as it would to api.twilio.com. Nothing is sent anywhere: every message and call is kept.

``POST /_sim/twilio/calls/{sid}/digits {"digits": "1"}`` is the callee pressing keys: the digits are
POSTed to the call's TwiML ``<Gather action>`` with ``X-Twilio-Signature``, as Twilio does.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import threading
import urllib.error
import urllib.parse
import urllib.request
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

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


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature: base64 HMAC-SHA1 of the URL followed by each POST parameter, sorted, name then value."""
    signed = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()).decode()


class Keypad:
    """The callee presses keys during a call: Twilio POSTs the digits to the TwiML <Gather action>."""

    def __init__(self, sim: Simulator, api: TwilioApi) -> None:
        self.sim, self.api = sim, api

    def press(self, request: Request) -> Response:
        sid = request.params["sid"]
        with self.api.lock:
            call = next((dict(c) for c in self.api.resources["calls"] if c["sid"] == sid), None)
        if call is None:
            return _error(404, 20404, f"no call {sid}")
        digits = str(request.form.get("digits") or "")
        if not digits or not all(ch.isdigit() or ch in "*#" for ch in digits):
            return _error(400, 21000, "digits: one or more of 0-9, * and #")
        try:
            gather = ElementTree.fromstring(call.get("twiml") or "<Response/>").find(".//Gather")
        except ElementTree.ParseError:
            gather = None
        action = gather.get("action") if gather is not None else None
        if not action:
            return _error(409, 21000, "the call's TwiML has no <Gather action=...> to send digits to")
        params = {
            "AccountSid": call["account_sid"],
            "CallSid": sid,
            "From": call["from"],
            "To": call["to"],
            "CallStatus": "in-progress",
            "Direction": "outbound-api",
            "Digits": digits,
        }
        body = urllib.parse.urlencode(params).encode()
        outgoing = urllib.request.Request(  # noqa: S310 - the URL the TwiML named
            action,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": twilio_signature(
                    self.sim.credentials.twilio_auth_token, action, params
                ),
                "User-Agent": "TwilioProxy/1.1",
            },
        )
        try:
            with urllib.request.urlopen(outgoing, timeout=30) as answer:  # noqa: S310
                status, text = answer.status, answer.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode("utf-8", "replace")
        except OSError as exc:
            return _error(502, 11200, f"HTTP retrieval failure: {exc}")
        return Response.json({"delivered_to": action, "status": status, "reply": text[:2000]})


def register(sim: Simulator) -> None:
    api = TwilioApi(sim)
    keypad = Keypad(sim, api)
    sim.router.add(
        "POST", r"/_sim/twilio/calls/(?P<sid>CA[0-9a-f]{32})/digits", keypad.press, "sim", "twilio_digits"
    )
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
