"""The Acknowledge / Escalate / Resolve buttons and the Reassign menu on a Slack page: verify Slack's signature, read the click.

Slack POSTs a click to the app's one interactivity URL (the API routes ``oncall_*`` actions here,
the rest to remediation approvals). A click counts only with a fresh, valid v0 signature
(``providers.slack_signing``: HMAC-SHA256 of the raw bytes with the app's signing secret, at most
five minutes old). The button's value is the page's acknowledgement token: it names the incident;
who acts is the clicking Slack user, mapped to a principal by the caller (the API).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs

from sqlmodel import Session

from core.audit import Actor, AuditAction, Channel, record
from core.models.oncall import Escalation
from oncall.actions import act
from oncall.errors import OncallRefused
from oncall.escalation import page_by_token
from providers.slack_signing import SlackSignatureInvalid, verify_slack_signature

ACTIONS = {
    "oncall_acknowledge": "acknowledge",
    "oncall_escalate": "escalate",
    "oncall_resolve": "resolve",
    "oncall_reassign": "reassign",  # a menu: the chosen option's value is "<token> <responder>"
}


@dataclass(frozen=True)
class SlackClick:
    user_id: str
    team_id: str
    action: str  # acknowledge | escalate | resolve | reassign
    token: str
    request_ref: str
    responder: str = ""  # reassign: to whom


def _payload(body: bytes) -> dict:
    form = parse_qs(body.decode("utf-8"), strict_parsing=True)
    payload = json.loads(form["payload"][0])
    if not isinstance(payload, dict):
        raise TypeError("payload is not an object")
    return payload


def is_oncall_click(body: bytes) -> bool:
    """True when the interaction is a click on an on-call button (read before any verification)."""
    try:
        return str(_payload(body)["actions"][0]["action_id"]) in ACTIONS
    except (UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError):
        return False


def verify_click(body: bytes, headers: Mapping[str, str], secret: str) -> SlackClick:
    """The click in a request Slack signed; OncallRefused saying why otherwise."""
    try:
        verify_slack_signature(body, headers, (secret,))
    except SlackSignatureInvalid as exc:
        raise OncallRefused(str(exc)) from None
    timestamp = {k.lower(): v for k, v in headers.items()}["x-slack-request-timestamp"]
    try:
        payload = _payload(body)
        clicked = payload["actions"][0]
        value = str(clicked["selected_option"]["value"] if "selected_option" in clicked else clicked["value"])
        token, _, responder = value.partition(" ")
        return SlackClick(
            user_id=str(payload["user"]["id"]),
            team_id=str((payload.get("team") or {}).get("id", "")),
            action=ACTIONS[str(clicked["action_id"])],
            token=token,
            request_ref=f"slack:{clicked.get('action_ts', timestamp)}",
            responder=responder,
        )
    except (UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise OncallRefused(f"not an on-call block_actions payload ({type(exc).__name__})") from None


def apply_click(
    session: Session, click: SlackClick, actor: Actor, *, now: datetime | None = None
) -> Escalation:
    """Carry out the click on the incident the page was about, as `actor` (audited by the action)."""
    page = page_by_token(session, click.token)
    return act(
        session,
        click.action,
        incident_id=page.incident_id,
        actor=actor,
        via="slack",
        responder=click.responder or None,
        now=now,
    )


def record_refusal(session: Session, click_user: str, reason: str, *, request_ref: str | None = None) -> None:
    record(
        session,
        actor=Actor(f"slack:{click_user or 'unverified'}", Channel.SLACK, request_ref or ""),
        action=AuditAction.ONCALL_REFUSED,
        object_type="slack_request",
        object_id=click_user or "-",
        details={"request": "slack on-call button", "reason": reason[:300]},
    )
