"""Twilio's REST API (2010-04-01): Messages and Calls, created and listed, with HTTP Basic auth.

Only the account the simulator's credentials name exists. Resources are answered in Twilio's own
JSON shape (sid, status, date_created in RFC 2822, uri), so the official `twilio` client talks to
it as it would to api.twilio.com. Nothing is sent anywhere: every message and call is kept.

``POST /_sim/twilio/calls/{sid}/digits {"digits": "1"}`` is the callee pressing keys: the digits are
POSTed to the call's TwiML ``<Gather action>`` with ``X-Twilio-Signature``, as Twilio does (with the
call's ``answered`` and ``completed`` status callbacks around them).

A message or call created with ``StatusCallback`` gets its status callbacks POSTed there, signed,
from a background thread as Twilio does (messages: sent, delivered; calls: initiated, ringing).
``POST /_sim/twilio/number {"sms_url": URL}`` sets the number's incoming-message webhook (the
console's "A message comes in"); ``POST /_sim/twilio/sms {"from": "+1...", "to": "+1...", "body":
"ACK"}`` is a person replying by SMS: the message is POSTed to that webhook, signed.
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
        self.sms_url: str | None = None

    def post_signed(self, url: str, params: dict[str, str]) -> tuple[int, str]:
        """POST a form to one of the customer's webhooks, signed as Twilio signs it."""
        outgoing = urllib.request.Request(  # noqa: S310 - the URL the customer configured
            url,
            data=urllib.parse.urlencode(params).encode(),
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": twilio_signature(self.sim.credentials.twilio_auth_token, url, params),
                "User-Agent": "TwilioProxy/1.1",
            },
        )
        try:
            with urllib.request.urlopen(outgoing, timeout=30) as answer:  # noqa: S310
                return answer.status, answer.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")
        except OSError as exc:
            return 0, str(exc)

    def status_callbacks(self, resource: dict[str, Any], states: list[str]) -> None:
        """Post `states` to the resource's StatusCallback, in order (best effort, as Twilio's are)."""
        url = resource.get("status_callback")
        if not url:
            return
        message = resource["sid"].startswith("SM")
        for state in states:
            params = {
                "AccountSid": resource["account_sid"],
                "From": resource["from"],
                "To": resource["to"],
                ("MessageSid" if message else "CallSid"): resource["sid"],
                ("MessageStatus" if message else "CallStatus"): state,
            }
            if not message:
                params["Direction"] = "outbound-api"
            with self.lock:
                resource["status"] = state
            self.post_signed(url, params)

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
            if form.get("StatusCallback"):
                resource["status_callback"] = str(form["StatusCallback"])
            self.resources[key].append(resource)
        states = ["sent", "delivered"] if kind == "Messages" else ["initiated", "ringing"]
        threading.Thread(target=self.status_callbacks, args=(resource, states), daemon=True).start()
        return Response.json({k: v for k, v in resource.items() if k != "status_callback"}, 201)

    def list(self, request: Request, kind: str) -> Response:
        refused = self._authorised(request)
        if refused is not None:
            return refused
        _, key = _KINDS[kind]
        with self.lock:
            items = [
                {k: v for k, v in item.items() if k != "status_callback"}
                for item in reversed(self.resources[key])
            ]
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
            live = next((c for c in self.api.resources["calls"] if c["sid"] == sid), None)
            call = dict(live) if live is not None else None
        if call is None or live is None:
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
        self.api.status_callbacks(live, ["in-progress"])
        status, text = self.api.post_signed(action, params)
        self.api.status_callbacks(live, ["completed"])
        if status == 0:
            return _error(502, 11200, f"HTTP retrieval failure: {text}")
        return Response.json({"delivered_to": action, "status": status, "reply": text[:2000]})


class Inbound:
    """People text the account's number: the message goes to the number's incoming webhook."""

    def __init__(self, sim: Simulator, api: TwilioApi) -> None:
        self.sim, self.api = sim, api

    def configure(self, request: Request) -> Response:
        url = str(request.form.get("sms_url") or "")
        if not url.startswith(("http://", "https://")):
            return _error(400, 21000, "sms_url: an http(s) URL")
        self.api.sms_url = url
        return Response.json({"sms_url": url})

    def reply(self, request: Request) -> Response:
        form = request.form
        sender, to, text = (str(form.get(k) or "") for k in ("from", "to", "body"))
        if not sender.startswith("+") or not to.startswith("+") or not text:
            return _error(400, 21000, "from, to (E.164 numbers) and body are required")
        if not self.api.sms_url:
            return _error(409, 21000, "no incoming-message webhook: POST /_sim/twilio/number first")
        with self.api.lock:
            number = len(self.api.resources["messages"]) + 1
        creds = self.sim.credentials
        params = {
            "AccountSid": creds.twilio_account_sid,
            "MessageSid": "SM" + self.sim.tenant.ids.hex("inbound", number, text, length=32),
            "From": sender,
            "To": to,
            "Body": text,
            "NumMedia": "0",
        }
        status, answer = self.api.post_signed(self.api.sms_url, params)
        if status == 0:
            return _error(502, 11200, f"HTTP retrieval failure: {answer}")
        return Response.json({"delivered_to": self.api.sms_url, "status": status, "reply": answer[:2000]})


def register(sim: Simulator) -> None:
    api = TwilioApi(sim)
    keypad = Keypad(sim, api)
    inbound = Inbound(sim, api)
    sim.router.add("POST", r"/_sim/twilio/number", inbound.configure, "sim", "twilio_number")
    sim.router.add("POST", r"/_sim/twilio/sms", inbound.reply, "sim", "twilio_sms")
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
