"""Keys pressed during a voice page: Twilio POSTs them to the URL the call's TwiML named.

The request counts only with a valid ``X-Twilio-Signature`` (``twilio.request_validator``, HMAC
with the account's auth token over the exact URL and the form) and only for the call this page
placed (``CallSid``). 1 acknowledges, 9 escalates now, as the responder the call was for; the
answer is TwiML saying what happened.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from xml.sax.saxutils import escape

from sqlmodel import Session
from twilio.request_validator import RequestValidator

from core.audit import Actor, AuditAction, Channel, record
from oncall.channels import _secret, voice_keypress_url
from oncall.errors import OncallRefused
from oncall.escalation import acknowledge, escalate_now, page_by_token
from oncall.store import get_channels

KEYS = {"1": "acknowledge", "9": "escalate"}


@dataclass(frozen=True)
class KeypressResult:
    status_code: int
    twiml: str


def _say(text: str) -> str:
    return f"<Response><Say>{escape(text)}</Say></Response>"


def handle_keypress(session: Session, token: str, form: Mapping[str, str], signature: str) -> KeypressResult:
    """Verify and apply one keypress callback (audited: the action, or the refusal)."""
    channels = get_channels(session)
    if channels.twilio is None:
        return KeypressResult(404, _say("Voice paging is not configured."))
    url = voice_keypress_url(channels.public_url, token)
    validator = RequestValidator(_secret(channels.twilio.auth_token_ref))
    try:
        if not signature or not validator.validate(url, dict(form), signature):
            raise OncallRefused(
                "the X-Twilio-Signature does not verify for this URL and form: not from Twilio"
            )
        page = page_by_token(session, token)
        if page.medium != "voice" or form.get("CallSid") != page.provider_ref:
            raise OncallRefused("the callback is for another call than this page placed")
        action = KEYS.get(str(form.get("Digits", "")))
        if action is None:
            return KeypressResult(200, _say("Press 1 to acknowledge, 9 to escalate now."))
        actor = Actor(
            f"responder:{page.responder or page.address}", Channel.API, f"twilio:{form.get('CallSid')}"
        )
        if action == "acknowledge":
            acknowledge(session, incident_id=page.incident_id, actor=actor, via="voice")
            return KeypressResult(200, _say(f"Incident {page.incident_id} acknowledged. Escalation stopped."))
        escalate_now(session, incident_id=page.incident_id, actor=actor, via="voice")
        return KeypressResult(200, _say(f"Incident {page.incident_id} escalated to the next level."))
    except OncallRefused as exc:
        record(
            session,
            actor=Actor("twilio:unverified", Channel.API, str(form.get("CallSid", ""))[:40]),
            action=AuditAction.ONCALL_REFUSED,
            object_type="twilio_request",
            object_id=str(form.get("CallSid", "-"))[:40] or "-",
            details={"request": "voice keypress", "reason": str(exc)[:300]},
        )
        return KeypressResult(403, _say("Refused."))
