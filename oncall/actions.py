"""What a responder can do about a page, from any channel: acknowledge, resolve, reassign, escalate now.

Every channel (API, CLI, Slack buttons, e-mail link, SMS reply, voice keypress) authenticates the
person its own way, then calls :func:`act` with an :class:`~core.audit.Actor` naming them and
``via`` naming the channel. Each action is audited and put on the incident's timeline in the
caller's transaction.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from enum import StrEnum

from sqlmodel import Session, col, select

from core.audit import Actor, AuditAction, record
from core.clock import as_utc, utcnow
from core.models.enums import IncidentStatus
from core.models.incident import Incident
from core.models.oncall import Escalation, Page
from oncall.errors import OncallInputError, OncallNotFound, OncallRefused
from oncall.escalation import (
    ACKNOWLEDGED,
    ACTIVE,
    EXHAUSTED,
    RESOLVED,
    acknowledge,
    escalate_now,
    personal_media,
)
from oncall.journal import on_timeline
from oncall.spec import Policy
from oncall.store import load_document

# How long the link in an e-mail or SMS page keeps working after the page was sent.
LINK_LIFETIME = timedelta(hours=24)


class Action(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    REASSIGN = "reassign"
    ESCALATE = "escalate"


def _escalation(session: Session, incident_id: int) -> Escalation:
    escalation = session.exec(select(Escalation).where(Escalation.incident_id == incident_id)).first()
    if escalation is None:
        raise OncallNotFound(f"incident {incident_id} has no escalation")
    return escalation


def _cancel_pending(session: Session, escalation: Escalation) -> int:
    pending = session.exec(
        select(Page).where(Page.escalation_id == escalation.id, Page.status == "pending")
    ).all()
    for page in pending:
        page.status = "cancelled"
        session.add(page)
    return len(pending)


def resolve(
    session: Session, *, incident_id: int, actor: Actor, via: str, now: datetime | None = None
) -> Escalation:
    """Resolve the incident (its lifecycle, audited there) and stop its escalation (audited here).
    Resolving acknowledges too, so MTTA is kept for an incident resolved straight from a page."""
    from timeline.lifecycle import transition_in

    when = as_utc(now or utcnow())
    escalation = _escalation(session, incident_id)
    if escalation.status == RESOLVED:
        return escalation
    if escalation.status != ACKNOWLEDGED:
        acknowledge(session, incident_id=incident_id, actor=actor, via=via, now=when)
    incident = session.get(Incident, incident_id)
    if incident is not None and incident.status not in (
        IncidentStatus.RESOLVED,
        IncidentStatus.CLOSED,
        IncidentStatus.FALSE_POSITIVE,
        IncidentStatus.DUPLICATE,
    ):
        transition_in(session, incident_id, IncidentStatus.RESOLVED.value, actor=actor, at=when)
    escalation.status = RESOLVED
    escalation.next_at = None
    session.add(escalation)
    cancelled = _cancel_pending(session, escalation)
    record(
        session,
        actor=actor,
        action=AuditAction.ONCALL_ESCALATION_RESOLVED,
        object_type="incident",
        object_id=incident_id,
        details={"escalation": escalation.id, "channel": via, "cancelled_pages": cancelled},
        at=when,
    )
    on_timeline(
        session,
        incident_id,
        at=when,
        title=f"Resolved by {actor.name} via {via}; escalation stopped",
        body={"escalation": escalation.id, "via": via},
        actor=actor.name,
        ref=("escalation", str(escalation.id)),
    )
    session.flush()
    return escalation


def reassign(
    session: Session,
    *,
    incident_id: int,
    responder: str,
    actor: Actor,
    via: str,
    now: datetime | None = None,
) -> Escalation:
    """Hand the page to `responder`: paged now by their own rules; if they do not acknowledge, the
    policy goes on after the delay of the level that was paged. Audited here."""
    when = as_utc(now or utcnow())
    escalation = _escalation(session, incident_id)
    if escalation.status not in (ACTIVE, EXHAUSTED):
        raise OncallRefused(
            f"incident {incident_id}'s escalation is {escalation.status}: nothing to reassign"
        )
    person = next((r for r in load_document(session).responders if r.name == responder), None)
    if person is None:
        raise OncallInputError(f"no responder named {responder!r}; `tenantguard oncall show` lists them")
    incident = session.get(Incident, incident_id)
    priority = incident.priority if incident is not None else "P1"
    policy = Policy.model_validate(escalation.snapshot)
    paged_level = (escalation.step - 1) % len(policy.steps)
    delay = timedelta(minutes=policy.steps[paged_level].delay_minutes)
    before = {
        "status": escalation.status,
        "next_at": escalation.next_at.isoformat() if escalation.next_at else None,
    }
    stamp = when.strftime("%Y%m%dT%H%M%S%f")
    pages = []
    for medium, after in personal_media(person, priority, when):
        address = person.address(medium) or ""
        digest = hashlib.sha256(address.encode()).hexdigest()[:16]
        pages.append(
            Page(
                escalation_id=escalation.id or 0,
                incident_id=incident_id,
                step=paged_level,
                loop=escalation.loop,
                responder=person.name,
                medium=medium.value,
                address=address,
                next_attempt_at=when + after,
                created_at=when,
                idempotency_key=f"esc{escalation.id}/reassign{stamp}/{person.name}/{medium.value}/{digest}",
            )
        )
    session.add_all(pages)
    if escalation.status == EXHAUSTED:
        escalation.step, escalation.loop = paged_level + 1, policy.repeat
        if escalation.step >= len(policy.steps):
            escalation.step, escalation.loop = 0, policy.repeat + 1
    escalation.status = ACTIVE if escalation.loop <= policy.repeat else EXHAUSTED
    escalation.next_at = when + delay if escalation.status == ACTIVE else None
    session.add(escalation)
    media = [p.medium for p in pages]
    record(
        session,
        actor=actor,
        action=AuditAction.ONCALL_ESCALATION_REASSIGNED,
        object_type="incident",
        object_id=incident_id,
        before=before,
        after={
            "status": escalation.status,
            "next_at": escalation.next_at.isoformat() if escalation.next_at else None,
        },
        details={"escalation": escalation.id, "channel": via, "to": person.name, "media": media},
        at=when,
    )
    on_timeline(
        session,
        incident_id,
        at=when,
        title=f"Reassigned to {person.name} by {actor.name} via {via}: paged by {', '.join(media)}",
        body={"escalation": escalation.id, "via": via, "to": person.name, "media": media},
        actor=actor.name,
        ref=("escalation", str(escalation.id)),
    )
    session.flush()
    return escalation


def act(
    session: Session,
    action: Action | str,
    *,
    incident_id: int,
    actor: Actor,
    via: str,
    responder: str | None = None,
    now: datetime | None = None,
) -> Escalation:
    """Carry out one responder action (the one entry point every channel calls)."""
    chosen = Action(action)
    if chosen is Action.ACKNOWLEDGE:
        return acknowledge(session, incident_id=incident_id, actor=actor, via=via, now=now)
    if chosen is Action.RESOLVE:
        return resolve(session, incident_id=incident_id, actor=actor, via=via, now=now)
    if chosen is Action.ESCALATE:
        return escalate_now(session, incident_id=incident_id, actor=actor, via=via, now=now)
    if not responder:
        raise OncallInputError("reassign needs the responder to hand the page to")
    return reassign(session, incident_id=incident_id, responder=responder, actor=actor, via=via, now=now)


def page_for_link(session: Session, token: str, *, now: datetime | None = None) -> Page:
    """The page an e-mail/SMS link's token names, while the link is fresh (LINK_LIFETIME after sending)."""
    from oncall.escalation import page_by_token

    page = page_by_token(session, token)
    sent = page.sent_at or page.created_at
    if as_utc(now or utcnow()) - as_utc(sent) > LINK_LIFETIME:
        raise OncallRefused(
            f"this page's link expired {LINK_LIFETIME.total_seconds() / 3600:.0f} h after it was sent; "
            "use the API, the CLI or Slack"
        )
    return page


def latest_page_to(session: Session, medium_addresses: list[tuple[str, str]]) -> Page | None:
    """The newest sent page to any of these (medium, address) pairs whose escalation is still open."""
    pages = session.exec(
        select(Page)
        .join(Escalation, col(Escalation.id) == col(Page.escalation_id))
        .where(
            col(Page.status) == "sent",
            col(Escalation.status).in_([ACTIVE, EXHAUSTED, ACKNOWLEDGED]),
        )
        .order_by(col(Page.sent_at).desc(), col(Page.id).desc())
        .limit(200)
    ).all()
    wanted = set(medium_addresses)
    return next((p for p in pages if (p.medium, p.address) in wanted), None)
