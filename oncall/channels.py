"""Senders, one per medium, each with the official client: slack_sdk, smtplib, twilio, requests
(webhooks, and Microsoft Teams Adaptive Cards through an incoming webhook or Workflows URL).

A sender gets the page, the message and the channel settings, and returns the provider's id for
what it sent, or raises :class:`DeliveryError` saying why (the outbox retries). Secrets are
resolved from their references only here, when a page goes out.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from xml.sax.saxutils import escape

import requests
from sqlmodel import Session, col, select

from core.models.connection import Connection
from core.models.oncall import Page
from oncall.errors import DeliveryError, DeliveryUncertain
from oncall.spec import Channels, Medium, Policy

TIMEOUT_SECONDS = 10
# Twilio's client logs every request and response (numbers, message bodies) at INFO.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)


@dataclass(frozen=True)
class PageMessage:
    incident_id: int
    priority: str
    title: str
    incident_url: str
    ack_url: str
    ack_token: str
    # Where Twilio posts the delivery state of this attempt (signed).
    status_url: str = ""

    @property
    def headline(self) -> str:
        return f"[{self.priority}] Incident #{self.incident_id}: {self.title}"[:300]


def _secret(reference: str) -> str:
    from providers.credentials import resolve_reference

    return resolve_reference("secret", reference)


def _slack_client(session: Session, channels: Channels) -> Any:
    from providers.credentials import Secrets
    from providers.slack import slack_web_client

    query = select(Connection).where(Connection.provider == "slack", col(Connection.enabled).is_(True))
    if channels.slack_connection:
        query = query.where(Connection.name == channels.slack_connection)
    connection = session.exec(query.order_by(col(Connection.id))).first()
    if connection is None:
        raise DeliveryError("no enabled Slack connection to page through; add one with a bot_token reference")
    return slack_web_client(connection, Secrets(connection.secret_refs or {}))


def _reassign_menu(session: Session, token: str) -> list[dict[str, Any]]:
    """A "Reassign to…" menu of the responders (Slack allows 100 options); each option's value
    carries the page's token and the responder's name."""
    from oncall.store import load_document

    people = [r.name for r in load_document(session).responders][:100]
    if not people:
        return []
    return [
        {
            "type": "static_select",
            "action_id": "oncall_reassign",
            "placeholder": {"type": "plain_text", "text": "Reassign to…"},
            "options": [
                {"text": {"type": "plain_text", "text": name[:75]}, "value": f"{token} {name}"[:150]}
                for name in people
            ],
        }
    ]


def send_slack(session: Session, page: Page, message: PageMessage, channels: Channels) -> str:
    from slack_sdk.errors import SlackApiError, SlackClientError

    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": message.headline}},
        {
            "type": "actions",
            "block_id": "oncall_page",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Acknowledge"},
                    "style": "primary",
                    "action_id": "oncall_acknowledge",
                    "value": message.ack_token,
                },
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Escalate"},
                    "style": "danger",
                    "action_id": "oncall_escalate",
                    "value": message.ack_token,
                },
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Resolve"},
                    "action_id": "oncall_resolve",
                    "value": message.ack_token,
                },
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open"},
                    "url": message.incident_url,
                },
                *_reassign_menu(session, message.ack_token),
            ],
        },
    ]
    try:
        response = _slack_client(session, channels).chat_postMessage(
            channel=page.address, text=message.headline, blocks=blocks
        )
    except SlackApiError as exc:
        raise DeliveryError(f"Slack refused the page: {exc.response.get('error')}") from exc
    except (SlackClientError, OSError) as exc:
        raise DeliveryError(f"Slack unreachable: {type(exc).__name__}") from exc
    return f"{response.get('channel')}/{response.get('ts')}"


def send_email(session: Session, page: Page, message: PageMessage, channels: Channels) -> str:
    smtp = channels.smtp
    if smtp is None:
        raise DeliveryError("no smtp channel configured (channels.smtp)")
    mail = EmailMessage()
    mail["From"] = smtp.sender
    mail["To"] = page.address
    mail["Subject"] = message.headline
    mail["Message-ID"] = f"<page-{page.idempotency_key.replace('/', '.')}@tenantguard>"
    mail.set_content(f"{message.headline}\n\nOpen: {message.incident_url}\nAcknowledge: {message.ack_url}\n")
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=TIMEOUT_SECONDS) as client:
            if smtp.starttls:
                # smtplib's own default context verifies nothing: ask for the certificate and the host.
                client.starttls(context=ssl.create_default_context(cafile=smtp.ca_file))
            if smtp.username and smtp.password_ref:
                client.login(smtp.username, _secret(smtp.password_ref))
            client.send_message(mail)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(
            f"SMTP {smtp.host}:{smtp.port} failed: {type(exc).__name__}: {exc}"[:300]
        ) from exc
    return str(mail["Message-ID"])


def _twilio(channels: Channels) -> Any:
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    config = channels.twilio
    if config is None:
        raise DeliveryError("no twilio channel configured (channels.twilio)")
    base = (config.base_url or "").rstrip("/")

    class _Endpoint(TwilioHttpClient):
        """Twilio's own HTTP client, sent to a Twilio-compatible endpoint when one is configured."""

        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if base:
                url = url.replace("https://api.twilio.com", base, 1)
            return super().request(method, url, *args, **kwargs)

    return Client(
        config.account_sid, _secret(config.auth_token_ref), http_client=_Endpoint(timeout=TIMEOUT_SECONDS)
    ), config.from_number


def _twilio_call(action: Callable[[], Any]) -> str:
    from twilio.base.exceptions import TwilioException, TwilioRestException

    try:
        return str(action().sid)
    except TwilioRestException as exc:
        raise DeliveryError(f"Twilio refused the page: {exc.status} {exc.code} {exc.msg}"[:300]) from exc
    except requests.Timeout as exc:  # sent, perhaps: the answer never came
        raise DeliveryUncertain(f"Twilio did not answer in time: {type(exc).__name__}") from exc
    except (TwilioException, OSError, requests.RequestException) as exc:
        raise DeliveryError(f"Twilio unreachable: {type(exc).__name__}") from exc


def send_sms(session: Session, page: Page, message: PageMessage, channels: Channels) -> str:
    client, sender = _twilio(channels)
    body = f"{message.headline[:100]} Reply ACK, RESOLVE or ESC. Ack: {message.ack_url}"
    extra = {"status_callback": message.status_url} if message.status_url else {}
    return _twilio_call(lambda: client.messages.create(to=page.address, from_=sender, body=body, **extra))


def voice_keypress_url(public_url: str, token: str) -> str:
    """Where Twilio POSTs the keys the callee presses (the URL it signs, so it must be exact)."""
    return f"{public_url.rstrip('/')}/oncall/twilio/voice/{token}"


def status_callback_url(public_url: str, page_id: int, attempt: int) -> str:
    """Where Twilio posts the delivery state of one attempt of an SMS or voice page (signed)."""
    return f"{public_url.rstrip('/')}/oncall/twilio/status/{page_id}/{attempt}"


def send_voice(session: Session, page: Page, message: PageMessage, channels: Channels) -> str:
    client, sender = _twilio(channels)
    action = escape(voice_keypress_url(channels.public_url, message.ack_token), {'"': "&quot;"})
    twiml = (
        f'<Response><Gather numDigits="1" action="{action}" method="POST">'
        f"<Say>tenantguard page. Priority {escape(message.priority)} incident "
        f"{message.incident_id}: {escape(message.title[:200])}. Press 1 to acknowledge, "
        "3 to resolve, 9 to escalate now.</Say></Gather></Response>"
    )
    extra: dict[str, Any] = {}
    if message.status_url:
        extra = {
            "status_callback": message.status_url,
            "status_callback_event": ["initiated", "ringing", "answered", "completed"],
        }
    return _twilio_call(lambda: client.calls.create(to=page.address, from_=sender, twiml=twiml, **extra))


def find_twilio_sms(channels: Channels, address: str, token_sha256: str) -> str | None:
    """The sid of the SMS to `address` that carries the acknowledgement token whose hash is
    `token_sha256` (a page whose sender died mid-send), or None when Twilio has none. (A call's
    TwiML is not listed by Twilio: a call is known by its status callback instead.)"""
    from twilio.base.exceptions import TwilioException

    client, _ = _twilio(channels)
    try:
        items = list(client.messages.list(to=address, limit=50))
    except (TwilioException, OSError, requests.RequestException) as exc:
        raise DeliveryError(f"Twilio lookup failed: {type(exc).__name__}") from exc
    for item in items:
        for token in _ACK_TOKENS.findall(str(item.body or "")):
            if hashlib.sha256(token.encode()).hexdigest() == token_sha256:
                return str(item.sid)
    return None


_ACK_TOKENS = re.compile(r"/oncall/ack/([A-Za-z0-9_-]{16,200})")


def _webhook_secret(page: Page, snapshot: dict[str, Any]) -> str | None:
    policy = Policy.model_validate(snapshot)
    step = policy.steps[page.step] if page.step < len(policy.steps) else None
    for target in step.targets if step else []:
        if target.type == "webhook" and target.url == page.address and target.secret_ref:
            return _secret(target.secret_ref)
    return None


def signed_headers(secret: str, message_id: str, body: bytes, timestamp: int) -> dict[str, str]:
    """Standard Webhooks headers (the `standardwebhooks` library): a ``whsec_`` secret is base64, any
    other secret is used as its bytes."""
    from standardwebhooks import Webhook

    key: str | bytes = secret if secret.startswith("whsec_") else secret.encode()
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": Webhook(key).sign(message_id, moment, body.decode()),
    }


def send_webhook(
    session: Session, page: Page, message: PageMessage, channels: Channels, snapshot: dict[str, Any]
) -> str:
    body = json.dumps(
        {
            "type": "incident.page",
            "incident": {"id": message.incident_id, "priority": message.priority, "title": message.title},
            "incident_url": message.incident_url,
            "step": page.step + 1,
            "loop": page.loop,
        },
        sort_keys=True,
    ).encode()
    headers = {"content-type": "application/json"}
    secret = _webhook_secret(page, snapshot)
    message_id = f"page_{page.id}"
    if secret:
        headers.update(signed_headers(secret, message_id, body, int(time.time())))
    try:
        response = requests.post(page.address, data=body, headers=headers, timeout=TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        raise DeliveryError(f"webhook unreachable: {type(exc).__name__}") from exc
    if response.status_code >= 300:
        raise DeliveryError(f"webhook answered {response.status_code}")
    return message_id


def teams_card(message: PageMessage) -> dict[str, Any]:
    """The page as a Teams message carrying an Adaptive Card (what incoming webhooks and Workflows
    "post to a channel when a webhook request is received" accept). Its buttons open the page's
    link, where the responder acknowledges, resolves or escalates."""
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {
                            "type": "TextBlock",
                            "text": message.headline,
                            "weight": "Bolder",
                            "size": "Medium",
                            "wrap": True,
                            "color": "Attention" if message.priority in ("P1", "P2") else "Default",
                        },
                        {
                            "type": "FactSet",
                            "facts": [
                                {"title": "Priority", "value": message.priority},
                                {"title": "Incident", "value": f"#{message.incident_id}"},
                            ],
                        },
                    ],
                    "actions": [
                        {
                            "type": "Action.OpenUrl",
                            "title": "Acknowledge / Resolve / Escalate",
                            "url": message.ack_url,
                        },
                        {"type": "Action.OpenUrl", "title": "Open incident", "url": message.incident_url},
                    ],
                },
            }
        ],
    }


def send_teams(session: Session, page: Page, message: PageMessage, channels: Channels) -> str:
    try:
        response = requests.post(page.address, json=teams_card(message), timeout=TIMEOUT_SECONDS)
    except requests.Timeout as exc:
        raise DeliveryUncertain(f"Teams did not answer in time: {type(exc).__name__}") from exc
    except requests.RequestException as exc:
        raise DeliveryError(f"Teams webhook unreachable: {type(exc).__name__}") from exc
    if response.status_code >= 300:  # incoming webhooks answer 200 "1", Workflows 202
        raise DeliveryError(f"Teams webhook answered {response.status_code}: {response.text[:200]}")
    return f"teams:{response.status_code}"


def send(
    session: Session, page: Page, message: PageMessage, channels: Channels, snapshot: dict[str, Any]
) -> str:
    medium = Medium(page.medium)
    if medium == Medium.WEBHOOK:
        return send_webhook(session, page, message, channels, snapshot)
    sender = {
        Medium.SLACK: send_slack,
        Medium.EMAIL: send_email,
        Medium.SMS: send_sms,
        Medium.VOICE: send_voice,
        Medium.TEAMS: send_teams,
    }[medium]
    return sender(session, page, message, channels)
