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
from oncall.actions import act, latest_page_to
from oncall.channels import _secret, status_callback_url, voice_keypress_url
from oncall.errors import OncallRefused
from oncall.escalation import page_by_token
from oncall.journal import recipient
from oncall.store import get_channels

KEYS = {"1": "acknowledge", "3": "resolve", "9": "escalate"}
# SMS replies: the first word (any case); a number after it picks the incident ("ACK 12");
# REASSIGN names the responder first ("REASSIGN chen", "REASSIGN chen 12").
WORDS = {
    "ack": "acknowledge",
    "acknowledge": "acknowledge",
    "1": "acknowledge",
    "resolve": "resolve",
    "res": "resolve",
    "3": "resolve",
    "esc": "escalate",
    "escalate": "escalate",
    "9": "escalate",
    "reassign": "reassign",
    "ra": "reassign",
}


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
            return KeypressResult(200, _say("Press 1 to acknowledge, 3 to resolve, 9 to escalate now."))
        actor = Actor(
            f"responder:{recipient(page.responder, page.medium, page.address)}",
            Channel.API,
            f"twilio:{form.get('CallSid')}",
        )
        act(session, action, incident_id=page.incident_id, actor=actor, via="voice")
        return KeypressResult(200, _say(f"Incident {page.incident_id} {_DONE[action]}."))
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


# Twilio's words for how far a message or call got, and ours for the timeline.
_DELIVERY_WORDS = {
    "queued": "queued at Twilio",
    "sending": "being sent",
    "sent": "sent to the carrier",
    "delivered": "delivered to the phone",
    "undelivered": "not delivered",
    "failed": "failed",
    "read": "read",
    "initiated": "dialling",
    "ringing": "ringing",
    "in-progress": "answered",
    "answered": "answered",
    "completed": "call ended",
    "busy": "busy",
    "no-answer": "not answered",
    "canceled": "cancelled",
}


def handle_status(
    session: Session, page_id: int, attempt: int, form: Mapping[str, str], signature: str
) -> int:
    """One Twilio status callback for one attempt of an SMS or voice page: verified, then recorded
    on the incident timeline and in the audit chain (HTTP status of the answer)."""
    from core.clock import utcnow
    from core.models.oncall import Page
    from oncall.journal import on_timeline

    channels = get_channels(session)
    if channels.twilio is None:
        return 404
    url = status_callback_url(channels.public_url, page_id, attempt)
    validator = RequestValidator(_secret(channels.twilio.auth_token_ref))
    sid = str(form.get("MessageSid") or form.get("CallSid") or "")[:64]
    state = str(form.get("MessageStatus") or form.get("CallStatus") or "")[:30]
    try:
        if not signature or not validator.validate(url, dict(form), signature):
            raise OncallRefused(
                "the X-Twilio-Signature does not verify for this URL and form: not from Twilio"
            )
        page = session.get(Page, page_id, with_for_update=True)
        if page is None or page.medium not in ("sms", "voice") or not sid or attempt > page.attempts:
            raise OncallRefused("the status callback names no SMS or voice page attempt of ours")
        if page.provider_ref and page.provider_ref != sid and attempt == page.attempts:
            raise OncallRefused("the status callback is for another message or call than this page sent")
    except OncallRefused as exc:
        record(
            session,
            actor=Actor("twilio:unverified", Channel.API, sid[:40]),
            action=AuditAction.ONCALL_REFUSED,
            object_type="twilio_request",
            object_id=sid or "-",
            details={"request": "status callback", "page": page_id, "reason": str(exc)[:300]},
        )
        return 403
    if attempt == page.attempts and not page.provider_ref:
        page.provider_ref = sid  # the message or call exists even if its sender died before saying so
        session.add(page)
    when = utcnow()
    error = str(form.get("ErrorCode") or "")[:20]
    words = _DELIVERY_WORDS.get(state, state or "unknown state")
    record(
        session,
        actor=Actor("twilio:status-callback", Channel.API, sid[:40]),
        action=AuditAction.ONCALL_PAGE_DELIVERY,
        object_type="incident",
        object_id=page.incident_id,
        details={
            "page": page.id,
            "attempt": attempt,
            "medium": page.medium,
            "responder": page.responder,
            "sid": sid,
            "status": state,
            "error_code": error or None,
        },
        at=when,
    )
    kind = "SMS" if page.medium == "sms" else "Call"
    on_timeline(
        session,
        page.incident_id,
        at=when,
        title=f"{kind} to {recipient(page.responder, page.medium, page.address)} (attempt {attempt}): {words}"
        + (f" (Twilio error {error})" if error else ""),
        body={"page": page.id, "attempt": attempt, "sid": sid, "status": state, "error_code": error or None},
        actor="twilio",
        ref=("page", str(page.id)),
    )
    return 204


_DONE = {
    "acknowledge": "acknowledged. Escalation stopped",
    "resolve": "resolved. Escalation stopped",
    "escalate": "escalated to the next level",
}


def sms_reply_url(public_url: str) -> str:
    """The number's incoming-message webhook (set it as "A message comes in" at Twilio)."""
    return f"{public_url.rstrip('/')}/oncall/twilio/sms"


def _message(text: str) -> str:
    return f"<Response><Message>{escape(text[:300])}</Message></Response>"


def handle_sms_reply(session: Session, form: Mapping[str, str], signature: str) -> KeypressResult:
    """A responder's SMS reply (ACK / RESOLVE / ESC / REASSIGN name [incident]): verified with Twilio's signature,
    the sender's number mapped to a responder, applied to the newest open page sent to that number
    (or the incident named), as that responder. Audited: the action, or the refusal."""
    from oncall.errors import OncallError

    channels = get_channels(session)
    if channels.twilio is None:
        return KeypressResult(404, _message("SMS paging is not configured."))
    validator = RequestValidator(_secret(channels.twilio.auth_token_ref))
    sender = str(form.get("From", ""))[:20]
    sid = str(form.get("MessageSid", ""))[:40]
    try:
        if not signature or not validator.validate(sms_reply_url(channels.public_url), dict(form), signature):
            raise OncallRefused(
                "the X-Twilio-Signature does not verify for this URL and form: not from Twilio"
            )
        from oncall.store import load_document

        person = next((r for r in load_document(session).responders if r.phone and r.phone == sender), None)
        if person is None:
            raise OncallRefused(f"{sender or 'an unknown number'} is no responder's phone")
        words = str(form.get("Body", "")).strip().split()
        action = WORDS.get(words[0].lower()) if words else None
        if action is None or (action == "reassign" and len(words) < 2):
            return KeypressResult(
                200,
                _message(
                    "Reply ACK, RESOLVE, ESC or REASSIGN followed by a name (optionally with the incident number)."
                ),
            )
        target = words.pop(1) if action == "reassign" else None
        page = latest_page_to(session, [("sms", sender), ("voice", sender)])
        incident_id = page.incident_id if page is not None else None
        number = words[1].lstrip("#") if len(words) > 1 else ""
        if number.isascii() and number.isdigit() and len(number) <= 18:
            incident_id = int(number)
        if incident_id is None:
            raise OncallRefused(f"no open page was sent to {sender}")
        actor = Actor(f"responder:{person.name}", Channel.API, f"twilio:{sid}")
        try:
            act(session, action, incident_id=incident_id, actor=actor, via="sms", responder=target)
        except OncallRefused:
            raise
        except OncallError as exc:
            return KeypressResult(200, _message(f"Incident {incident_id}: {exc}"))
        done = f"reassigned to {target}" if action == "reassign" else _DONE[action]
        return KeypressResult(200, _message(f"Incident {incident_id} {done}."))
    except OncallRefused as exc:
        record(
            session,
            actor=Actor("twilio:unverified", Channel.API, sid),
            action=AuditAction.ONCALL_REFUSED,
            object_type="twilio_request",
            object_id=sid or "-",
            details={"request": "sms reply", "from": sender, "reason": str(exc)[:300]},
        )
        return KeypressResult(403, _message("Refused."))
