"""Slack notifications: new P1/P2 incidents, escalations and status changes, as Block Kit messages.

Delivery is idempotent and retried: each incident remembers what was last posted about it
(``Incident.notifications``: channel, message ts, status and priority posted), and
:func:`deliver_notifications` posts whatever differs — the announcement of a P1/P2 incident
(or one escalated to P2/P1) to the channel, later changes as replies in its thread (broadcast to
the channel). A Slack failure is stored on the incident and tried again next time; it never
undoes a build or a transition.

The channel comes from settings (``TENANTGUARD_TIMELINE_NOTIFY_CHANNEL``, optionally ``..._NOTIFY_CONNECTION``)
or from the first enabled Slack connection whose config has ``notify_channel``; the token is that
connection's ``bot_token`` secret reference, resolved only to build the client.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from core.audit import Actor, AuditAction, record
from core.clock import isoformat, utcnow
from core.db import Database
from core.models.connection import Connection
from core.models.enums import IncidentStatus, Priority, TimelineEntryKind
from core.models.incident import Incident, TimelineEntry
from timeline.config import TimelineConfig
from timeline.errors import TimelineError

log = logging.getLogger(__name__)

ANNOUNCE = frozenset({Priority.P1.value, Priority.P2.value})
NOTIFY_ACTOR = Actor.system("notify")
MAX_ATTEMPTS = 10
RECENT = timedelta(days=30)


class NotificationError(TimelineError):
    """Notifications cannot be sent at all (no usable Slack connection or token)."""


@dataclass(frozen=True)
class SlackTarget:
    channel: str
    client: Any  # slack_sdk.WebClient


@dataclass
class DeliveryReport:
    posted: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:limit] or " ", "emoji": False}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text[:2900] or " "}


def _escape(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def incident_link(incident_id: int, config: TimelineConfig) -> str:
    return f"{config.public_url.rstrip('/')}/incidents/{incident_id}"


def announcement(
    incident: Incident, top_evidence: Sequence[str], link: str
) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) announcing an incident: title, priority, people, top evidence, link."""
    factors = (incident.priority_factors or {}).get("factors") or {}
    people = (incident.entities or {}).get("people") or (incident.entities or {}).get("accounts") or []
    who = (
        ", ".join(people[:5]) + (f" and {len(people) - 5} more" if len(people) > 5 else "") if people else "—"
    )
    text = f"[{incident.priority}] Incident #{incident.id}: {incident.title}"
    why = "; ".join(f"{name}: {f.get('why')}" for name, f in factors.items() if f.get("weight", 1.0) != 1.0)
    evidence = "\n".join(f"• {_escape(line)}" for line in top_evidence[:5]) or "—"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(text, 150)},
        {
            "type": "section",
            "fields": [
                _mrkdwn(
                    f"*Priority*\n{incident.priority} (score {(incident.priority_factors or {}).get('score', 0):.2f})"
                ),
                _mrkdwn(f"*Status*\n{incident.status}"),
                _mrkdwn(f"*People*\n{_escape(who)}"),
                _mrkdwn(f"*Severity*\n{incident.severity}"),
            ],
        },
        {"type": "section", "text": _mrkdwn(f"*Top evidence*\n{evidence}")},
    ]
    if why:
        blocks.append({"type": "context", "elements": [_mrkdwn(_escape(f"Why {incident.priority}: {why}"))]})
    blocks.append(
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": _plain("Open incident", 75),
                    "url": link,
                    "action_id": f"open_incident_{incident.id}",
                }
            ],
        }
    )
    return text, blocks


def status_update(
    incident: Incident, previous: dict[str, Any], link: str
) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) for a change of status or priority of an announced incident."""
    changes = []
    if previous.get("status") != incident.status:
        changes.append(f"status {previous.get('status')} → {incident.status}")
    if previous.get("priority") != incident.priority:
        changes.append(f"priority {previous.get('priority')} → {incident.priority}")
    who = f" · assignee {incident.assignee}" if incident.assignee else ""
    text = f"Incident #{incident.id}: " + ", ".join(changes)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": _mrkdwn(_escape(text) + _escape(who))},
        {"type": "context", "elements": [_mrkdwn(f"<{link}|Open incident #{incident.id}>")]},
    ]
    return text, blocks


def delivered(state: dict[str, Any], now: datetime | None) -> None:
    """Mark a Slack post's delivery state (an incident's or a digest's) as posted."""
    state.update(posted_at=isoformat(now or utcnow()), error=None, attempts=0)


def delivery_failed(state: dict[str, Any], exc: Exception) -> str:
    """Count a failed Slack post in its delivery state; returns the reason."""
    from slack_sdk.errors import SlackApiError

    reason = str(exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__)
    state.update(error=reason[:200], attempts=int(state.get("attempts", 0)) + 1)
    return reason


def notification_target(session: Any, config: TimelineConfig) -> SlackTarget | None:
    query = select(Connection).where(col(Connection.provider) == "slack", col(Connection.enabled).is_(True))
    if config.notify_connection:
        query = query.where(col(Connection.name) == config.notify_connection)
    connections = list(session.execute(query.order_by(col(Connection.id))).scalars())
    chosen = next(
        (c for c in connections if config.notify_channel or (c.config or {}).get("notify_channel")),
        None,
    )
    if chosen is None:
        if config.notify_channel or config.notify_connection:
            raise NotificationError(
                "notifications are configured but no enabled Slack connection"
                + (f" named {config.notify_connection!r}" if config.notify_connection else "")
                + " exists; add one with a bot_token secret reference"
            )
        return None
    channel = config.notify_channel or str(chosen.config["notify_channel"])
    from providers.slack import slack_web_client

    try:
        client = slack_web_client(chosen)
    except Exception as exc:  # the collectors' errors say which reference is broken, never its value
        raise NotificationError(
            f"cannot build the Slack client for connection {chosen.name!r}: {exc}"
        ) from exc
    return SlackTarget(channel, client)


def _top_evidence(session: Any, incident_id: int) -> list[str]:
    entries = session.execute(
        select(col(TimelineEntry.title))
        .where(
            col(TimelineEntry.incident_id) == incident_id,
            col(TimelineEntry.kind).in_((TimelineEntryKind.EVIDENCE, TimelineEntryKind.FINDING)),
        )
        .order_by(col(TimelineEntry.kind).desc(), col(TimelineEntry.count).desc(), col(TimelineEntry.at))
        .limit(5)
    ).scalars()
    return list(entries)


def _due(incident: Incident) -> str | None:
    """What should be posted about this incident now: 'announce', 'update' or None."""
    state = incident.notifications or {}
    if state.get("attempts", 0) >= MAX_ATTEMPTS and state.get("error"):
        return None
    if not state.get("ts"):
        if incident.priority in ANNOUNCE and incident.status not in (
            IncidentStatus.DUPLICATE,
            IncidentStatus.FALSE_POSITIVE,
            IncidentStatus.CLOSED,
        ):
            return "announce"
        return None
    if state.get("status") != incident.status or state.get("priority") != incident.priority:
        return "update"
    return None


def deliver_notifications(
    db: Database, settings: Any = None, *, target: SlackTarget | None = None, now: datetime | None = None
) -> DeliveryReport:
    """Post every pending announcement and update; returns what was posted and what failed."""
    config = TimelineConfig.from_settings(settings)
    report = DeliveryReport()
    with db.session(readonly=True) as session:
        # Anything to post follows a change, and every change bumps updated_at.
        since = (now or utcnow()) - RECENT
        candidates = list(
            session.execute(
                select(Incident).where(col(Incident.updated_at) >= since).order_by(col(Incident.id))
            ).scalars()
        )
        pending = [(i, action) for i in candidates if (action := _due(i))]
        if not pending:
            return report
        target = target or notification_target(session, config)
        if target is None:
            return report
        evidence = {i.id: _top_evidence(session, i.id or 0) for i, action in pending if action == "announce"}
    from slack_sdk.errors import SlackApiError, SlackClientError

    for incident, action in pending:
        state = dict(incident.notifications or {})
        link = incident_link(incident.id or 0, config)
        try:
            if action == "announce":
                text, blocks = announcement(incident, evidence.get(incident.id, []), link)
                response = target.client.chat_postMessage(channel=target.channel, text=text, blocks=blocks)
                state.update(channel=response.get("channel") or target.channel, ts=response.get("ts"))
            else:
                text, blocks = status_update(incident, state, link)
                target.client.chat_postMessage(
                    channel=state.get("channel") or target.channel,
                    thread_ts=state["ts"],
                    reply_broadcast=True,
                    text=text,
                    blocks=blocks,
                )
            state.update(status=incident.status, priority=incident.priority)
            delivered(state, now)
            report.posted.append(incident.id or 0)
        except (SlackApiError, SlackClientError, OSError) as exc:
            reason = delivery_failed(state, exc)
            report.failed[incident.id or 0] = reason
            log.warning("Slack notification for incident %s failed: %s", incident.id, reason)
        _save_state(db, incident.id or 0, state, action, now)
    return report


def _save_state(
    db: Database, incident_id: int, state: dict[str, Any], action: str, now: datetime | None
) -> None:
    with db.session() as session:
        incident = session.get(Incident, incident_id, with_for_update=True)
        if incident is None:
            return
        incident.notifications = state
        session.add(incident)
        if state.get("error") is None:
            record(
                session,
                actor=NOTIFY_ACTOR,
                action=AuditAction(f"incident.notified.{action}"),
                object_type="incident",
                object_id=incident_id,
                details={
                    "channel": state.get("channel"),
                    "ts": state.get("ts"),
                    "status": state.get("status"),
                    "priority": state.get("priority"),
                },
                at=now,
            )
            if action == "announce" and state.get("ts"):
                # Replies in the announcement's thread are about this incident: link the thread.
                link = {
                    "provider": "slack",
                    "channel": state.get("channel") or "",
                    "thread_id": state["ts"],
                    "via": "notification",
                }
                known = incident.linked_conversations or []
                if link not in known:
                    incident.linked_conversations = [*known, link]
                    incident.messages_scanned_id = 0
