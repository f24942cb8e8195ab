"""Telling others: the status page's subscribers (e-mail, signed webhooks) of each published public
update, and other systems (signed webhooks) of every timeline line of an urgent incident.

Webhooks are signed the Standard Webhooks way (``webhook-id``, ``webhook-timestamp``,
``webhook-signature``, the ``standardwebhooks`` library); the id is stable per event
(``status-update-<id>``, ``incident-entry-<id>``), so a receiver drops a repeat. Progress is kept in
the database (an update's ``subscribers_notified_at``, the incident's ``webhook_entry_id``): a
delivery that failed is tried again next cycle, one that succeeded is never sent again unless a
later one in the same batch failed (at least once, deduplicated by id). Drills are never sent to
status-page subscribers (they never reach the page) and are marked ``"drill": true`` to others.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import orjson
from sqlmodel import col, select

from core.audit import AuditAction
from core.clock import as_utc, isoformat, utcnow
from core.db import Database
from core.models.enums import TimelineEntryKind
from core.models.incident import Incident, TimelineEntry
from core.models.response import StakeholderUpdate
from response.config import ResponseConfig, WebhookTarget
from response.journal import note, state_for

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10
BATCH = 50
# Lines other systems hear about (evidence and conversations stay in tenantguard).
SENT_KINDS = {
    TimelineEntryKind.STATUS,
    TimelineEntryKind.ASSIGNMENT,
    TimelineEntryKind.NOTE,
    TimelineEntryKind.PRIORITY,
    TimelineEntryKind.MERGE,
    TimelineEntryKind.REMEDIATION,
    TimelineEntryKind.POSTMORTEM,
    TimelineEntryKind.ONCALL,
    TimelineEntryKind.RESPONSE,
}


class DeliveryFailed(Exception):
    pass


@dataclass
class OutboundReport:
    subscribers_told: list[int] = field(default_factory=list)
    events_sent: int = 0
    failed: list[str] = field(default_factory=list)


def send_webhook(target: WebhookTarget, message_id: str, event: str, data: dict[str, Any]) -> None:
    import requests
    from standardwebhooks import Webhook

    from providers.credentials import resolve_reference

    secret = resolve_reference("webhook secret", target.secret_ref)
    payload = orjson.dumps({"type": event, "timestamp": isoformat(utcnow()), "data": data}).decode()
    moment = utcnow()
    key: str | bytes = secret if secret.startswith("whsec_") else secret.encode()
    headers = {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(key).sign(message_id, moment, payload),
    }
    try:
        answer = requests.post(target.url, data=payload.encode(), headers=headers, timeout=TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        raise DeliveryFailed(f"webhook {target.url}: {type(exc).__name__}") from exc
    if answer.status_code >= 300:
        raise DeliveryFailed(f"webhook {target.url}: HTTP {answer.status_code}")


def _send_mail(config: ResponseConfig, to: str, subject: str, text: str) -> None:
    from providers.credentials import resolve_reference

    smtp = config.smtp
    if smtp is None:
        raise DeliveryFailed("status-page e-mail subscribers need an smtp section")
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = smtp.sender, to, subject[:200]
    mail.set_content(text)
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=TIMEOUT_SECONDS) as client:
            if smtp.starttls:
                client.starttls()
            if smtp.username and smtp.password_ref:
                client.login(smtp.username, resolve_reference("smtp password", smtp.password_ref))
            client.send_message(mail)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(f"SMTP {smtp.host}:{smtp.port}: {type(exc).__name__}") from exc


def notify_subscribers(db: Database, config: ResponseConfig, now: datetime | None = None) -> OutboundReport:
    """Tell the subscribers of each published public update not told yet (never a drill's)."""
    from response.statuspage import incidents

    report = OutboundReport()
    wanted = config.status_page.subscribers
    if not (wanted.emails or wanted.webhooks):
        return report
    when = as_utc(now or utcnow())
    with db.session(readonly=True) as session:
        listed = {i["id"]: i for i in incidents(session)}  # public, published, no drills
        pending = session.exec(
            select(StakeholderUpdate)
            .where(
                col(StakeholderUpdate.public).is_(True),
                StakeholderUpdate.status == "published",
                col(StakeholderUpdate.subscribers_notified_at).is_(None),
            )
            .order_by(col(StakeholderUpdate.published_at), col(StakeholderUpdate.id))
            .limit(BATCH)
        ).all()
    for update in pending:
        incident = listed.get(str(update.incident_id))
        if incident is None:  # a drill's (kept off the page): nobody is told, ever
            with db.session() as session:
                row = session.get(StakeholderUpdate, update.id)
                if row is not None:
                    row.subscribers_notified_at = when
                    session.add(row)
            continue
        entry = next(u for u in incident["incident_updates"] if u["id"] == str(update.id))
        page = f"{config.public_url.rstrip('/')}/status#incident-{incident['id']}"
        try:
            for address in wanted.emails:
                _send_mail(
                    config,
                    address,
                    f"[{config.status_page.title}] {incident['name']} — {entry['status']}",
                    f"{entry['body']}\n\n{entry['status']} · {entry['created_at']}\n{page}\n",
                )
            for target in wanted.webhooks:
                send_webhook(
                    target,
                    f"status-update-{update.id}",
                    "status.incident_update",
                    {
                        "page": {"name": config.status_page.title, "url": page},
                        "incident": incident,
                        "incident_update": entry,
                    },
                )
        except DeliveryFailed as exc:
            report.failed.append(f"status update {update.id}: {exc}")
            log.warning("status update %s subscribers: %s", update.id, exc)
            continue
        with db.session() as session:
            row = session.get(StakeholderUpdate, update.id)
            if row is None:
                continue
            row.subscribers_notified_at = when
            session.add(row)
            note(
                session,
                update.incident_id,
                action=AuditAction.RESPONSE_SUBSCRIBERS_NOTIFIED,
                title=f"Status-page subscribers told of update #{update.id} "
                f"({len(wanted.emails)} e-mail, {len(wanted.webhooks)} webhook)",
                details={"update": update.id, "emails": len(wanted.emails), "webhooks": len(wanted.webhooks)},
                at=when,
                ref=("stakeholder_update", str(update.id)),
            )
        report.subscribers_told.append(update.id or 0)
    return report


def send_events(db: Database, config: ResponseConfig, report: OutboundReport) -> None:
    """Every new timeline line of an urgent incident to each generic webhook target, in order."""
    hooks = config.webhooks
    if not hooks.targets:
        return
    with db.session(readonly=True) as session:
        ids = session.exec(
            select(Incident.id).where(
                col(Incident.priority).in_([p.value for p in hooks.priorities]),
                col(Incident.merged_into_id).is_(None),
            )
        ).all()
    for incident_id in sorted(i for i in ids if i is not None):
        with db.session() as session:
            incident = session.get(Incident, incident_id)
            state = state_for(session, incident_id)
            if incident is None:
                continue
            entries = session.exec(
                select(TimelineEntry)
                .where(
                    TimelineEntry.incident_id == incident_id, col(TimelineEntry.id) > state.webhook_entry_id
                )
                .order_by(col(TimelineEntry.id))
                .limit(BATCH)
            ).all()
            view = {
                "id": incident.id,
                "title": incident.title,
                "priority": incident.priority,
                "severity": incident.severity,
                "status": incident.status,
                "assignee": incident.assignee,
                "url": f"{config.public_url.rstrip('/')}/incidents/{incident.id}",
                "drill": state.drill,
            }
            try:
                for entry in entries:
                    if entry.kind in SENT_KINDS:
                        line = {
                            "id": entry.id,
                            "at": isoformat(entry.at),
                            "kind": entry.kind,
                            "title": entry.title,
                        }
                        for target in hooks.targets:
                            send_webhook(
                                target,
                                f"incident-entry-{entry.id}",
                                "incident.timeline",
                                {"incident": view, "entry": line},
                            )
                        report.events_sent += 1
                    state.webhook_entry_id = int(entry.id or 0)
            except DeliveryFailed as exc:
                report.failed.append(f"incident {incident_id} webhooks: {exc}")
                log.warning("incident %s webhooks: %s", incident_id, exc)
            session.add(state)


def run_outbound(db: Database, config: ResponseConfig, now: datetime | None = None) -> OutboundReport:
    report = notify_subscribers(db, config, now)
    send_events(db, config, report)
    return report
