"""The outbox: every page is a row; due rows are sent with retries and back-off, then dead-lettered.

Each attempt: the row is locked (``SKIP LOCKED`` on PostgreSQL, so workers share the outbox) and
claimed (``sending``, with a lease and the acknowledgement token's hash) in one committed
transaction; it is sent with no transaction open; its outcome is committed together with the audit
record and the timeline line. A sender killed mid-send leaves a claimed page: when its lease runs
out the next worker first asks the provider whether it went out (Twilio's status callback or a
lookup of the message or call carrying the page's token) and only sends again when it did not, so
SMS and voice pages are neither lost nor repeated; other media are sent again with the same
idempotency keys (webhook-id, Message-ID). A page whose escalation was acknowledged or resolved
meanwhile is cancelled instead. A failing medium only delays its own rows: the others keep going.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from core.audit import AuditAction, record
from core.clock import as_utc, utcnow
from core.db import Database
from core.errors import TenantguardError
from core.models.incident import Incident
from core.models.oncall import Escalation, Page
from oncall.channels import PageMessage, find_twilio_sms, send, status_callback_url
from oncall.errors import DeliveryError, DeliveryUncertain
from oncall.escalation import ACKNOWLEDGED, ONCALL_ACTOR, RESOLVED, SENDING, token_hash
from oncall.journal import on_timeline, recipient
from oncall.spec import Channels, Medium
from oncall.store import get_channels

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 6
BASE_BACKOFF = timedelta(seconds=15)
MAX_BACKOFF = timedelta(minutes=10)
SEND_LIMIT = 200
# How long a claimed page may be in flight before another worker asks the provider whether it went
# out (longer than any sender's timeout, so a live sender always records its own attempt).
LEASE = timedelta(seconds=30)


@dataclass
class OutboxReport:
    sent: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    dead: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)


def backoff(attempts: int) -> timedelta:
    return min(MAX_BACKOFF, BASE_BACKOFF * (2 ** max(0, attempts - 1)))


def deliver_pages(db: Database, settings: Any = None, now: datetime | None = None) -> OutboxReport:
    """Send every page due at `now`: claim it (committed), send it outside any transaction, record it."""
    when = as_utc(now or utcnow())
    report = OutboxReport()
    for _ in range(SEND_LIMIT):
        claim = _claim(db, when, report)
        if claim is None:
            break
        if not claim.message:
            continue  # cancelled, or settled by reconciliation
        page = claim.page
        log.info(
            "sending page %s (%s to %s), attempt %s",
            page.id,
            page.medium,
            recipient(page.responder, page.medium, page.address),
            claim.attempt,
        )
        try:
            with db.session(readonly=True) as session:
                outcome = Outcome(
                    ref=send(session, claim.page, claim.message, claim.channels, claim.snapshot)
                )
        except DeliveryUncertain as exc:
            outcome = Outcome(error=str(exc), uncertain=True)
        except (DeliveryError, TenantguardError) as exc:
            outcome = Outcome(error=str(exc))
        _finish(db, claim, outcome, when, report)
    return report


@dataclass
class Claim:
    page: Page
    attempt: int
    channels: Channels
    snapshot: dict[str, Any]
    message: PageMessage | None


@dataclass(frozen=True)
class Outcome:
    ref: str = ""
    error: str = ""
    confirmed_by: str = ""
    # The provider did not answer: the page stays claimed until the lease ends, then is reconciled.
    uncertain: bool = False


def _claim(db: Database, when: datetime, report: OutboxReport) -> Claim | None:
    """Lock the next due page and mark it in flight (``sending``, leased until ``next_attempt_at``),
    committed before anything is sent: a worker killed mid-send leaves a page another worker
    reconciles with the provider when the lease runs out, instead of sending it blind again."""
    with db.session() as session:
        query = (
            select(Page)
            .where(col(Page.status).in_(["pending", SENDING]), col(Page.next_attempt_at) <= when)
            .order_by(col(Page.next_attempt_at), col(Page.id))
            .limit(1)
        )
        if db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        page = session.exec(query).first()
        if page is None:
            return None
        escalation = session.get(Escalation, page.escalation_id)
        incident = session.get(Incident, page.incident_id)
        channels = get_channels(session)
        if page.status == SENDING:
            confirmed = _reconcile(page, channels)
            if confirmed is not None:
                claim = Claim(page, page.attempts, channels, {}, None)
                _settle(session, claim, confirmed, when, report)
                return claim
        if escalation is None or incident is None or escalation.status in (ACKNOWLEDGED, RESOLVED):
            page.status = "cancelled"
            session.add(page)
            report.cancelled.append(page.id or 0)
            return Claim(page, page.attempts, channels, {}, None)
        token = secrets.token_urlsafe(24)
        base = channels.public_url.rstrip("/")
        page.attempts += 1
        page.status = SENDING
        page.provider_ref = ""
        page.ack_token_hash = token_hash(token)
        page.next_attempt_at = when + LEASE
        session.add(page)
        session.flush()
        message = PageMessage(
            incident_id=incident.id or 0,
            priority=incident.priority,
            title=incident.title,
            incident_url=f"{base}/incidents/{incident.id}",
            ack_url=f"{base}/oncall/ack/{token}",
            ack_token=token,
            status_url=status_callback_url(base, page.id or 0, page.attempts),
        )
        session.expunge(page)
        return Claim(page, page.attempts, channels, dict(escalation.snapshot), message)


def _reconcile(page: Page, channels: Channels) -> Outcome | None:
    """A page whose sender vanished mid-send: did the provider get it? (None: send it again.)"""
    if page.provider_ref:  # Twilio's status callback named the message or call meanwhile
        return Outcome(ref=page.provider_ref, confirmed_by="twilio status callback")
    if page.medium == Medium.SMS and page.ack_token_hash:
        try:
            sid = find_twilio_sms(channels, page.address, page.ack_token_hash)
        except DeliveryError as exc:
            log.warning("page %s: cannot ask Twilio whether it went out (%s); sending again", page.id, exc)
            return None
        if sid:
            return Outcome(ref=sid, confirmed_by="twilio lookup")
    return None


def _finish(db: Database, claim: Claim, outcome: Outcome, when: datetime, report: OutboxReport) -> None:
    with db.session() as session:
        page = session.get(Page, claim.page.id, with_for_update=True)
        if page is None or page.status != SENDING or page.attempts != claim.attempt:
            return  # settled meanwhile (a lease that ran out under a slow provider)
        claim.page = page
        _settle(session, claim, outcome, when, report)


def _settle(session: Session, claim: Claim, outcome: Outcome, when: datetime, report: OutboxReport) -> None:
    """The attempt's state, its audit record and its timeline line, in the caller's transaction."""
    page = claim.page
    if outcome.uncertain:
        page.last_error = outcome.error[:500]
        report.failed[page.id or 0] = outcome.error
    elif outcome.error:
        _failed(page, outcome.error, when, report)
    else:
        page.status, page.sent_at, page.last_error = "sent", when, ""
        page.provider_ref = (outcome.ref or page.provider_ref)[:200]
        page.next_attempt_at = when
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
            "provider_ref": page.provider_ref or None,
            "confirmed_by": outcome.confirmed_by or None,
            "error": page.last_error or None,
        },
        at=when,
    )
    outcome_text = {
        "sent": "sent",
        "dead": "abandoned",
        SENDING: "unanswered, checking with the provider",
    }.get(page.status, "failed, will retry")
    if outcome.confirmed_by:
        outcome_text += f" (its sender stopped mid-send; confirmed by {outcome.confirmed_by})"
    on_timeline(
        session,
        page.incident_id,
        at=when,
        title=(
            f"Page to {recipient(page.responder, page.medium, page.address)} by {page.medium} {outcome_text} "
            f"(attempt {page.attempts})" + (f": {page.last_error[:200]}" if page.status != "sent" else "")
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


PAGE_ACTIONS = {"sent": AuditAction.ONCALL_PAGE_SENT, "dead": AuditAction.ONCALL_PAGE_ABANDONED}


def _failed(page: Page, reason: str, when: datetime, report: OutboxReport) -> None:
    page.last_error = reason[:500]
    log.warning("page %s (%s) failed: %s", page.id, page.medium, reason)
    if page.attempts >= MAX_ATTEMPTS:
        page.status = "dead"
        report.dead.append(page.id or 0)
    else:
        page.status = "pending"
        page.next_attempt_at = when + backoff(page.attempts)
        report.failed[page.id or 0] = reason
