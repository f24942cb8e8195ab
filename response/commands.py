"""``/tenantguard status|note|assign|severity|resolve|declare`` from Slack: verified, mapped to a principal, audited.

Slack POSTs a slash command form-encoded and signed (v0 HMAC with the app's signing secret, at
most five minutes old; ``slack_sdk.signature.SignatureVerifier``). The Slack user must be an
enabled principal whose role carries the permission the command needs (``core.permissions``:
``incidents:read`` for status, ``incidents:write`` for the rest). In an incident channel the
command is about that channel's incident; elsewhere ``status`` lists the open urgent incidents
and ``declare TITLE`` opens one (a finding through the alert intake, source ``slack``).
``severity LEVEL`` in an incident channel is the responders' word on how bad it is: a declared
finding (``declared:slack``, one per incident, folded on repeats) attached to the incident, so the
next build recomputes the incident's severity and priority from its findings with it. It raises
the incident; lowering it below what its other findings say takes resolving or suppressing those.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from slack_sdk.signature import SignatureVerifier
from sqlmodel import Session, col, select

from core.audit import Actor, Channel
from core.db import Database
from core.models import ApiPrincipal, Finding, Incident, IncidentResponse
from core.models.enums import Severity
from core.permissions import Permission, role_allows
from response.errors import AlertRefused, ResponseInputError
from response.intake import Alert, ingest

NEEDS = {"status": Permission.INCIDENTS_READ}
# The message shortcut's callback id (Slack app: Interactivity & Shortcuts > "Declare an incident").
DECLARE_SHORTCUT = "tenantguard_declare"
USAGE = "usage: /tenantguard status | note TEXT | assign WHO | severity LEVEL | resolve | declare TITLE"


@dataclass(frozen=True)
class SlashCommand:
    user_id: str
    channel_id: str
    verb: str
    rest: str
    trigger: str


def verify_command(body: bytes, headers: Mapping[str, str], secret: str) -> SlashCommand:
    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp, signature = lowered.get("x-slack-request-timestamp"), lowered.get("x-slack-signature")
    if not timestamp or not signature:
        raise AlertRefused("no X-Slack-Signature / X-Slack-Request-Timestamp: not from Slack")
    if not SignatureVerifier(secret).is_valid(body=body, timestamp=timestamp, signature=signature):
        raise AlertRefused("the Slack signature does not verify or the request is stale: refused")
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    verb, _, rest = (form.get("text") or "").strip().partition(" ")
    return SlashCommand(
        form.get("user_id", ""),
        form.get("channel_id", ""),
        verb.lower(),
        rest.strip(),
        form.get("trigger_id", ""),
    )


def _principal(session: Session, command: SlashCommand, permission: Permission) -> Actor:
    row = session.exec(
        select(ApiPrincipal).where(
            ApiPrincipal.slack_user_id == command.user_id, col(ApiPrincipal.disabled).is_(False)
        )
    ).first()
    if row is None:
        raise ResponseInputError(f"Slack user {command.user_id} is not a tenantguard principal")
    if not role_allows(row.role, permission):
        raise ResponseInputError(f"{row.name} ({row.role}) may not do that: it needs {permission}")
    return Actor(f"principal:{row.name}", Channel.SLACK, command.trigger[:100])


def _incident_here(session: Session, channel_id: str) -> int | None:
    return session.exec(
        select(IncidentResponse.incident_id).where(
            IncidentResponse.channel_id == channel_id, IncidentResponse.channel_id != ""
        )
    ).first()


def run_command(db: Database, command: SlashCommand) -> str:
    """Do what the command says and return the reply (only the caller sees it)."""
    from timeline.lifecycle import add_note, assign, transition

    permission = NEEDS.get(command.verb, Permission.INCIDENTS_WRITE)
    with db.session() as session:
        actor = _principal(session, command, permission)
        here = _incident_here(session, command.channel_id)
        if command.verb == "status":
            if here is not None:
                incident = session.get(Incident, here)
                assert incident is not None
                return f"[{incident.priority}] #{incident.id} {incident.title}: {incident.status}, assignee {incident.assignee or '—'}"
            rows = session.exec(
                select(Incident)
                .where(
                    col(Incident.priority).in_(["P1", "P2"]),
                    col(Incident.status).in_(["new", "triaged", "contained"]),
                )
                .order_by(col(Incident.priority), col(Incident.id))
                .limit(10)
            ).all()
            return (
                "\n".join(f"[{i.priority}] #{i.id} {i.title} ({i.status})" for i in rows)
                or "no open P1/P2 incident"
            )
        if command.verb == "declare":
            if not command.rest:
                raise ResponseInputError("declare needs a title: /tenantguard declare TITLE")
            alert = Alert(
                "slack",
                f"{command.user_id}-{command.trigger or command.rest}"[:200],
                command.rest[:300],
                Severity.HIGH,
                "trigger",
                f"Declared from Slack by {actor.name}",
                {"apps": ["declared:slack"]},
                {},
            )
            result = ingest(session, alert, actor=actor)
            return f"declared: finding #{result.finding_id}; it becomes an incident on the next cycle"
    if here is None:
        raise ResponseInputError(f"`{command.verb}` works in an incident channel. {USAGE}")
    if command.verb == "note" and command.rest:
        add_note(db, here, command.rest, actor=actor)
        return f"note added to incident #{here}"
    if command.verb == "assign" and command.rest:
        assign(db, here, command.rest, actor=actor)
        return f"incident #{here} assigned to {command.rest}"
    if command.verb == "severity" and command.rest:
        return _declare_severity(db, here, command.rest.strip().lower(), actor)
    if command.verb == "resolve":
        transition(db, here, "resolved", actor=actor, note=command.rest or None)
        return f"incident #{here} resolved"
    raise ResponseInputError(USAGE)


def _declare_severity(db: Database, incident_id: int, level: str, actor: Actor) -> str:
    from response.intake import SEVERITIES

    aliases = {
        "p1": "critical",
        "p2": "high",
        "p3": "medium",
        "p4": "low",
        "sev1": "critical",
        "sev2": "high",
    }
    word = aliases.get(level, level)
    if word not in SEVERITIES:
        raise ResponseInputError(f"severity {level!r}: use critical, high, medium, low (or P1-P4)")
    with db.session() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        alert = Alert(
            "slack",
            f"severity:{incident_id}",
            f"Responders declared incident #{incident_id} {SEVERITIES[word].value}",
            SEVERITIES[word],
            "trigger",
            f"Severity declared from Slack by {actor.name}",
            {"people": list((incident.entities or {}).get("people") or [])[:50], "apps": ["declared:slack"]},
            {"declared_severity": SEVERITIES[word].value},
            scope="declared",
        )
        result = ingest(session, alert, actor=actor)
        finding = session.get(Finding, result.finding_id) if result.finding_id else None
        if finding is not None and finding.incident_id is None:
            finding.incident_id = incident_id  # the next build recomputes the incident with it
            session.add(finding)
    return (
        f"incident #{incident_id}: severity {SEVERITIES[word].value} declared; "
        "its severity and priority are recomputed on the next cycle"
    )


def _shortcut_payload(body: bytes) -> dict[str, Any]:
    form = parse_qs(body.decode("utf-8"), strict_parsing=True)
    payload = json.loads(form["payload"][0])
    if not isinstance(payload, dict):
        raise TypeError("payload is not an object")
    return payload


def is_declare_shortcut(body: bytes) -> bool:
    """True when the interaction is the "declare an incident" message shortcut (read before verifying)."""
    try:
        payload = _shortcut_payload(body)
        return payload.get("type") == "message_action" and payload.get("callback_id") == DECLARE_SHORTCUT
    except (UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError):
        return False


def declare_from_message(db: Database, body: bytes, headers: Mapping[str, str], secret: str) -> str:
    """Declare an incident from any Slack message (the shortcut): the message, redacted, is the report."""
    from core.redaction import redact_typed

    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp, signature = lowered.get("x-slack-request-timestamp"), lowered.get("x-slack-signature")
    if not timestamp or not signature or not SignatureVerifier(secret).is_valid(body, timestamp, signature):
        raise AlertRefused("the Slack signature does not verify or the request is stale: refused")
    payload = _shortcut_payload(body)
    message = payload.get("message") or {}
    channel = str((payload.get("channel") or {}).get("id") or "")
    text = redact_typed(str(message.get("text") or "").strip())
    if not text:
        raise ResponseInputError("that message has no text to declare an incident from")
    first_line = text.splitlines()[0][:300]
    command = SlashCommand(
        str((payload.get("user") or {}).get("id") or ""),
        channel,
        "declare",
        first_line,
        str(payload.get("trigger_id") or ""),
    )
    with db.session() as session:
        actor = _principal(session, command, Permission.INCIDENTS_WRITE)
        alert = Alert(
            "slack",
            f"message:{channel}:{message.get('ts', '')}"[:200],
            first_line,
            Severity.HIGH,
            "trigger",
            f"Declared from a Slack message by {actor.name}:\n{text[:2000]}",
            {"apps": ["declared:slack"]},
            {
                "slack_channel": channel,
                "slack_ts": str(message.get("ts") or ""),
                "reported_by": str(message.get("user") or ""),
            },
        )
        result = ingest(session, alert, actor=actor)
    return (
        f"declared from the message: finding #{result.finding_id}; it becomes an incident on the next cycle"
    )
