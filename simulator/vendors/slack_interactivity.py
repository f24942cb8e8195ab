"""Slack interactivity: a person clicks a button on a message the app posted; Slack POSTs the
``block_actions`` payload to the app's Request URL, signed with the app's signing secret.

POST /_sim/slack/app           {"interactivity_url": "http://.../integrations/slack/interactions"}
POST /_sim/slack/interactions  {"user": "U...", "channel": "C...|D...", "ts": "...", "action_id": "..."}
                               (a menu: also "option": the text of the option picked)

The click is delivered exactly as Slack delivers it: ``application/x-www-form-urlencoded`` with one
``payload`` field (JSON), headers ``X-Slack-Request-Timestamp`` and ``X-Slack-Signature``
(``v0=`` + HMAC-SHA256 of ``v0:{timestamp}:{body}``). The answer says what the app replied.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any

from simulator.http import Request, Response

if TYPE_CHECKING:
    from simulator.server import Simulator

TIMEOUT_SECONDS = 30


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return f"v0={digest}"


class Interactivity:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.lock = threading.Lock()
        self.url: str | None = None
        self.clicks = 0

    def configure(self, request: Request) -> Response:
        url = str(request.form.get("interactivity_url") or "")
        if not url.startswith(("http://", "https://")):
            return Response.json({"error": "interactivity_url must be an http(s) URL"}, 400)
        with self.lock:
            self.url = url
        return Response.json({"interactivity_url": url})

    def _message(self, channel: str, ts: str) -> dict[str, Any] | None:
        for change in reversed(list(self.sim.state.changes)):
            target = change.target
            if (
                change.action == "post_message"
                and target.get("channel") == channel
                and target.get("ts") == ts
            ):
                return change.request.get("body") or {}
        return None

    def click(self, request: Request) -> Response:
        form = request.form
        user = self.sim.tenant.person(str(form.get("user") or ""))
        if user is None or user.slack_id != form.get("user"):
            return Response.json({"error": f"no Slack user {form.get('user')!r} in this workspace"}, 404)
        channel, ts, action_id = (
            str(form.get("channel") or ""),
            str(form.get("ts") or ""),
            form.get("action_id"),
        )
        posted = self._message(channel, ts)
        if posted is None:
            return Response.json({"error": f"no message {ts!r} in {channel!r}"}, 404)
        blocks = posted.get("blocks") or []
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        found = [
            (block.get("block_id", ""), element)
            for block in blocks
            if block.get("type") == "actions"
            for element in block.get("elements", [])
            if element.get("action_id") == action_id
        ]
        if not found:
            return Response.json({"error": f"the message has no button {action_id!r}"}, 404)
        with self.lock:
            url = str(form.get("interactivity_url") or self.url or "")
            self.clicks += 1
            number = self.clicks
        if not url:
            return Response.json({"error": "no interactivity_url configured (POST /_sim/slack/app)"}, 409)
        block_id, element = found[0]
        chosen: dict[str, Any] = {}
        if element.get("type") == "static_select":  # a menu: the person picks one option
            wanted = str(form.get("option") or "")
            options = {o.get("text", {}).get("text"): o for o in element.get("options", [])}
            if wanted not in options:
                return Response.json({"error": f"the menu {action_id!r} has no option {wanted!r}"}, 404)
            chosen = {"selected_option": options[wanted]}
        now = time.time()
        action_ts = f"{now:.6f}"
        team = self.sim.tenant.slack_team_id
        payload = {
            "type": "block_actions",
            "team": {"id": team, "domain": self.sim.tenant.domain.split(".")[0]},
            "user": {"id": user.slack_id, "username": user.email.split("@")[0], "team_id": team},
            "api_app_id": "A0TENANTGUARD",
            "trigger_id": f"{number}.{int(now)}.sim",
            "channel": {"id": channel},
            "container": {"type": "message", "message_ts": ts, "channel_id": channel},
            "message": {"ts": ts, "text": posted.get("text", "")},
            "response_url": f"{request.base_url}/_sim/slack/responses/{number}",
            "actions": [
                {
                    "type": element.get("type", "button"),
                    "action_id": action_id,
                    "block_id": block_id,
                    "value": element.get("value", ""),
                    "text": element.get("text", {}),
                    "action_ts": action_ts,
                    **chosen,
                }
            ],
        }
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        timestamp = str(int(now))
        outgoing = urllib.request.Request(  # noqa: S310 - the configured app URL, http(s) checked above
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": timestamp,
                "X-Slack-Signature": sign(self.sim.credentials.slack_signing_secret, timestamp, body),
                "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            },
        )
        try:
            with urllib.request.urlopen(outgoing, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310
                status, text = answer.status, answer.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode("utf-8", "replace")
        except OSError as exc:
            return Response.json({"error": f"the app's Request URL is unreachable: {exc}"}, 502)
        try:
            reply: Any = json.loads(text)
        except ValueError:
            reply = text[:2000]
        return Response.json({"delivered_to": url, "status": status, "reply": reply})


def register(sim: Simulator) -> None:
    api = Interactivity(sim)
    sim.router.add("POST", r"/_sim/slack/app", api.configure, "sim", "slack_app")
    sim.router.add("POST", r"/_sim/slack/interactions", api.click, "sim", "slack_interactions")
