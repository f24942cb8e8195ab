"""The outbox: every page is a row; due rows are sent with retries and back-off, then dead-lettered.

One transaction per page: the row is locked (``SKIP LOCKED`` on PostgreSQL, so workers share the
outbox), sent, and its new state committed together with the audit record. A page whose
escalation was acknowledged meanwhile is cancelled instead. A failing medium only delays its own
rows: the others keep going.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select

from core.audit import AuditAction, record
from core.clock import as_utc, utcnow
from core.db import Database
from core.errors import TenantguardError
from core.models.incident import Incident
from core.models.oncall import Escalation, Page
from oncall.channels import PageMessage, send
from oncall.errors import DeliveryError
from oncall.escalation import ACKNOWLEDGED, ONCALL_ACTOR, token_hash
from oncall.journal import on_timeline
from oncall.store import get_channels

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 6
BASE_BACKOFF = timedelta(seconds=15)
MAX_BACKOFF = timedelta(minutes=10)
SEND_LIMIT = 200


@dataclass
class OutboxReport:
    sent: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    dead: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)


def backoff(attempts: int) -> timedelta:
    return min(MAX_BACKOFF, BASE_BACKOFF * (2 ** max(0, attempts - 1)))


def deliver_pages(db: Database, settings: Any = None, now: datetime | None = None) -> OutboxReport:
    """Send every page due at `now`."""
    when = as_utc(now or utcnow())
    report = OutboxReport()
    for _ in range(SEND_LIMIT):
        with db.session() as session:
            query = (
                select(Page)
                .where(Page.status == "pending", col(Page.next_attempt_at) <= when)
                .order_by(col(Page.next_attempt_at), col(Page.id))
                .limit(1)
            )
            if db.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            page = session.exec(query).first()
            if page is None:
                break
            escalation = session.get(Escalation, page.escalation_id)
            incident = session.get(Incident, page.incident_id)
            if escalation is None or incident is None or escalation.status == ACKNOWLEDGED:
                page.status = "cancelled"
                session.add(page)
                report.cancelled.append(page.id or 0)
                continue
            channels = get_channels(session)
            token = secrets.token_urlsafe(24)
            base = channels.public_url.rstrip("/")
            message = PageMessage(
                incident_id=incident.id or 0,
                priority=incident.priority,
                title=incident.title,
                incident_url=f"{base}/incidents/{incident.id}",
                ack_url=f"{base}/oncall/ack/{token}",
                ack_token=token,
            )
            page.attempts += 1
            try:
                page.provider_ref = send(session, page, message, channels, escalation.snapshot)[:200]
            except (DeliveryError, TenantguardError) as exc:
                _failed(page, str(exc), when, report)
            else:
                page.status, page.sent_at, page.last_error = "sent", when, ""
                page.ack_token_hash = token_hash(token)
                report.sent.append(page.id or 0)
            session.add(page)
            record(
                session,
                actor=ONCALL_ACTOR,
                action=PAGE_ACTIONS.get(page.status, AuditAction.ONCALL_PAGE_FAILED),
                object_type="incident",
                object_id=page.incident_id,
                details={
                    "page": page.id,
                    "escalation": page.escalation_id,
                    "step": page.step + 1,
                    "loop": page.loop,
                    "responder": page.responder,
                    "medium": page.medium,
                    "attempt": page.attempts,
                    "error": page.last_error or None,
                },
                at=when,
            )
            outcome = {"sent": "sent", "dead": "abandoned"}.get(page.status, "failed, will retry")
            on_timeline(
                session,
                page.incident_id,
                at=when,
                title=(
                    f"Page to {page.responder or page.address} by {page.medium} {outcome} "
                    f"(attempt {page.attempts})"
                    + (f": {page.last_error[:200]}" if page.status != "sent" else "")
                ),
                body={
                    "page": page.id,
                    "medium": page.medium,
                    "status": page.status,
                    "attempt": page.attempts,
                    "error": page.last_error or None,
                },
                actor=ONCALL_ACTOR.name,
                ref=("page", str(page.id)),
            )
    return report


PAGE_ACTIONS = {"sent": AuditAction.ONCALL_PAGE_SENT, "dead": AuditAction.ONCALL_PAGE_ABANDONED}


def _failed(page: Page, reason: str, when: datetime, report: OutboxReport) -> None:
    page.last_error = reason[:500]
    log.warning("page %s (%s) failed: %s", page.id, page.medium, reason)
    if page.attempts >= MAX_ATTEMPTS:
        page.status = "dead"
        report.dead.append(page.id or 0)
    else:
        page.next_attempt_at = when + backoff(page.attempts)
        report.failed[page.id or 0] = reason
