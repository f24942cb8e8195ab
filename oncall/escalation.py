"""Escalations: route new incidents to a policy, fire due steps into the outbox, stop on acknowledgement.

Everything is derived from database state, so the sweep is level-triggered: whoever runs
:func:`escalate_due` (the cycle's ``escalations`` stage, ``tenantguard oncall tick``)
finds the escalations whose ``next_at`` has passed and fires each one once — rows are locked
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one writer), pages are keyed by
(escalation, loop, step, responder, medium), and the step pointer moves in the same transaction
as the pages and the audit record. A lost or repeated run loses and duplicates nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.audit import Actor, AuditAction, Channel, record
from core.clock import as_utc, utcnow
from core.db import Database
from core.findings import finding_connections
from core.models.connection import Connection
from core.models.enums import IncidentStatus
from core.models.finding import Finding
from core.models.incident import Incident
from core.models.oncall import Escalation, Page
from oncall.errors import OncallNotFound, OncallRefused
from oncall.journal import on_timeline, recipient
from oncall.schedules import _restriction_windows, on_call_at
from oncall.spec import Medium, OncallDocument, Policy, Responder, Route, Step
from oncall.store import load_document

ONCALL_ACTOR = Actor.system("oncall")
ACTIVE = "active"
ACKNOWLEDGED = "acknowledged"
EXHAUSTED = "exhausted"
STOPPED = "stopped"
RESOLVED = "resolved"
# A page claimed by a sender (its lease ends at ``next_attempt_at``).
SENDING = "sending"
# Steps fired per sweep at most (the next sweep continues).
SWEEP_LIMIT = 200


@dataclass
class SweepReport:
    fired: list[tuple[int, int, int]] = field(default_factory=list)  # (escalation, loop, step)
    stopped: list[int] = field(default_factory=list)
    pages: int = 0


def _providers(session: Session, incident_id: int) -> set[str]:
    rows = session.exec(select(Finding.provider).where(Finding.incident_id == incident_id).distinct()).all()
    return {str(p) for p in rows if p}


def _tenants(session: Session, incident_id: int) -> set[str]:
    """The tenants the incident's evidence came from: the name and tenant id of each connection
    that collected a finding's first evidence event (core.findings.finding_connections)."""
    rows = session.exec(
        select(Finding.id, Finding.evidence_event_ids).where(Finding.incident_id == incident_id)
    ).all()
    connections = set(finding_connections(session, ((int(i or 0), ids) for i, ids in rows)).values())
    if not connections:
        return set()
    found = session.exec(
        select(Connection.name, Connection.tenant).where(col(Connection.id).in_(sorted(connections)))
    ).all()
    return {str(value) for row in found for value in row if value}


def _tags(session: Session, incident_id: int) -> set[str]:
    rows = session.exec(select(Finding.mitre).where(Finding.incident_id == incident_id)).all()
    return {str(tag).lower() for tags in rows for tag in (tags or [])}


def _in_hours(route: Route, moment: datetime) -> bool:
    local = as_utc(moment).astimezone(ZoneInfo(route.timezone))
    hours = route.business_hours
    days = {day.number for day in hours.days}
    clock = local.time().replace(tzinfo=None)
    if hours.end <= hours.start:  # past midnight: the window opened the day before
        if clock >= hours.start:
            return local.weekday() in days
        return clock < hours.end and (local.weekday() - 1) % 7 in days
    return local.weekday() in days and hours.start <= clock < hours.end


def explain_routes(
    session: Session, incident: Incident, routes: Sequence[Route], at: datetime
) -> list[dict[str, Any]]:
    """Each route in order: whether it holds for `incident` at `at`, and why (or why not)."""
    providers: set[str] | None = None
    tenants: set[str] | None = None
    tags: set[str] | None = None
    answers = []
    for route in routes:
        reasons: list[str] = []
        ok = incident.priority in route.priorities
        reasons.append(
            f"priority {incident.priority} {'in' if ok else 'not in'} {', '.join(route.priorities)}"
        )
        if route.incident_types:
            hit = incident.incident_type in route.incident_types
            ok = ok and hit
            reasons.append(
                f"type {incident.incident_type or '(none)'!r} {'in' if hit else 'not in'} {route.incident_types}"
            )
        if route.providers:
            providers = providers if providers is not None else _providers(session, incident.id or 0)
            hit = bool(providers & set(route.providers))
            ok = ok and hit
            reasons.append(
                f"providers {', '.join(sorted(providers)) or '(none)'} {'meet' if hit else 'miss'} {', '.join(route.providers)}"
            )
        if route.tenants:
            tenants = tenants if tenants is not None else _tenants(session, incident.id or 0)
            hit = bool(tenants & set(route.tenants))
            ok = ok and hit
            reasons.append(
                f"tenants {', '.join(sorted(tenants)) or '(none)'} {'meet' if hit else 'miss'} {', '.join(route.tenants)}"
            )
        if route.tags:
            tags = tags if tags is not None else _tags(session, incident.id or 0)
            hit = bool(tags & {t.lower() for t in route.tags})
            ok = ok and hit
            reasons.append(
                f"tags {', '.join(sorted(tags)) or '(none)'} {'meet' if hit else 'miss'} {', '.join(route.tags)}"
            )
        if route.during is not None:
            inside = _in_hours(route, at)
            hit = inside == (route.during == "business_hours")
            ok = ok and hit
            reasons.append(
                f"{as_utc(at):%a %H:%M} UTC is {'inside' if inside else 'outside'} business hours ({route.timezone})"
            )
        answers.append({"route": route.name, "policy": route.policy, "matched": ok, "reasons": reasons})
    return answers


def match_route(
    session: Session, incident: Incident, routes: Sequence[Route], at: datetime | None = None
) -> Route | None:
    """The first route whose conditions all hold for `incident` (at `at`, for business hours)."""
    by_name = {route.name: route for route in routes}
    for answer in explain_routes(session, incident, routes, at or utcnow()):
        if answer["matched"]:
            return by_name[answer["route"]]
    return None


def start_escalations(
    session: Session, settings: Any = None, actor: Actor = ONCALL_ACTOR, *, now: datetime | None = None
) -> list[Escalation]:
    """Start an escalation for each new, unacknowledged incident a route matches (P1/P2 by default).

    The policy is copied into the escalation: later edits of the policy change nothing running.
    Audited in the caller's transaction; an incident already escalated is skipped.
    """
    document = load_document(session)
    if not document.routes:
        return []
    policies = {p.name: p for p in document.policies}
    when = as_utc(now or utcnow())
    started = select(Escalation.incident_id)
    candidates = session.exec(
        select(Incident)
        .where(
            Incident.status == IncidentStatus.NEW,
            col(Incident.merged_into_id).is_(None),
            col(Incident.acknowledged_at).is_(None),
            col(Incident.id).not_in(started),
        )
        .order_by(col(Incident.id))
    ).all()
    created = []
    for incident in candidates:
        route = match_route(session, incident, document.routes, when)
        if route is None:
            continue
        policy = policies[route.policy]
        escalation = Escalation(
            incident_id=incident.id or 0,
            policy=policy.name,
            route=route.name,
            snapshot=policy.model_dump(mode="json"),
            next_at=when,
            started_at=when,
        )
        try:
            with session.begin_nested():
                session.add(escalation)
                session.flush()
        except IntegrityError:  # another worker started this one first
            continue
        record(
            session,
            actor=actor,
            action=AuditAction.ONCALL_ESCALATION_STARTED,
            object_type="incident",
            object_id=incident.id or 0,
            details={"escalation": escalation.id, "policy": policy.name, "route": route.name},
            at=when,
        )
        created.append(escalation)
    return created


def page_key(escalation: Escalation, responder: str, medium: str, address: str) -> str:
    digest = hashlib.sha256(address.encode()).hexdigest()[:16]
    return f"esc{escalation.id}/l{escalation.loop}/s{escalation.step}/{responder or '-'}/{medium}/{digest}"


def personal_media(responder: Responder, priority: str, when: datetime) -> list[tuple[Medium, timedelta]]:
    """How this person is paged for `priority` at `when`: (medium, delay) by every rule listing the
    priority (else all their media now), later for quiet-hour priorities while their quiet hours last."""
    delays: dict[Medium, timedelta] = {}
    for rule in (r for r in responder.rules if priority in r.priorities):
        for medium in rule.notify:
            delay = timedelta(minutes=rule.after_minutes)
            delays[medium] = min(delay, delays.get(medium, delay))
    chosen = list(delays.items()) if delays else [(m, timedelta(0)) for m in responder.media]
    if responder.quiet_hours is not None and priority in responder.quiet_for:
        zone = ZoneInfo(responder.timezone)
        moment = as_utc(when)
        windows = _restriction_windows([responder.quiet_hours], zone, moment, moment + timedelta(seconds=1))
        ends = [closes for opens, closes in windows if opens <= moment < closes]
        if ends:
            wait = max(ends) - moment
            chosen = [(m, max(d, wait)) for m, d in chosen]
    return chosen


def _pages_for(
    escalation: Escalation, step: Step, document: OncallDocument, when: datetime, priority: str = "P1"
) -> tuple[list[Page], list[str]]:
    people: dict[str, Responder] = {r.name: r for r in document.responders}
    schedules = {s.name: s for s in document.schedules}
    notes: list[str] = []
    wanted: list[tuple[str, str, str]] = []  # (responder, medium, address)
    delays: dict[tuple[str, str], timedelta] = {}

    def person(name: str) -> None:
        responder = people.get(name)
        if responder is None:
            notes.append(f"responder {name!r} no longer exists")
            return
        for medium, delay in personal_media(responder, priority, when):
            wanted.append((name, medium.value, responder.address(medium) or ""))
            delays[(name, medium.value)] = delay

    for target in step.targets:
        if target.type == "responder":
            person(target.name or "")
        elif target.type == "schedule":
            schedule = schedules.get(target.name or "")
            who = on_call_at(schedule, when) if schedule is not None else None
            if who is None:
                notes.append(f"schedule {target.name!r} has nobody on call")
            else:
                person(who)
        elif target.type == "slack_channel":
            wanted.append(("", Medium.SLACK.value, target.channel or ""))
        elif target.type == "teams_channel":
            wanted.append(("", Medium.TEAMS.value, target.url or ""))
        else:
            wanted.append(("", Medium.WEBHOOK.value, target.url or ""))
    pages = [
        Page(
            escalation_id=escalation.id or 0,
            incident_id=escalation.incident_id,
            step=escalation.step,
            loop=escalation.loop,
            responder=responder,
            medium=medium,
            address=address,
            next_attempt_at=when + delays.get((responder, medium), timedelta(0)),
            created_at=when,
            idempotency_key=page_key(escalation, responder, medium, address),
        )
        for responder, medium, address in dict.fromkeys(wanted)
    ]
    return pages, notes


def _stop(session: Session, escalation: Escalation, status: str, reason: str, when: datetime) -> None:
    escalation.status = status
    escalation.next_at = None
    session.add(escalation)
    record(
        session,
        actor=ONCALL_ACTOR,
        action=AuditAction.ONCALL_ESCALATION_STOPPED,
        object_type="incident",
        object_id=escalation.incident_id,
        details={"escalation": escalation.id, "status": status, "reason": reason},
        at=when,
    )


def fire_step(session: Session, escalation: Escalation, when: datetime) -> list[Page]:
    """Fire the escalation's current step: its pages into the outbox, the pointer to the next step."""
    incident = session.get(Incident, escalation.incident_id)
    if incident is None or incident.status != IncidentStatus.NEW or incident.acknowledged_at is not None:
        reason = (
            "incident acknowledged"
            if incident is not None and incident.acknowledged_at
            else "incident moved on"
        )
        _stop(session, escalation, STOPPED, f"{reason} ({incident.status if incident else 'deleted'})", when)
        return []
    policy = Policy.model_validate(escalation.snapshot)
    step = policy.steps[escalation.step]
    pages, notes = _pages_for(escalation, step, load_document(session), when, incident.priority)
    known = set(
        session.exec(
            select(Page.idempotency_key).where(
                col(Page.idempotency_key).in_([p.idempotency_key for p in pages])
            )
        ).all()
    )
    fresh = [p for p in pages if p.idempotency_key not in known]
    session.add_all(fresh)
    fired = {"escalation": escalation.id, "step": escalation.step + 1, "loop": escalation.loop}
    escalation.step += 1
    if escalation.step >= len(policy.steps):
        escalation.step = 0
        escalation.loop += 1
    if escalation.loop > policy.repeat:
        escalation.status = EXHAUSTED
        escalation.next_at = None
    else:
        escalation.next_at = when + timedelta(minutes=step.delay_minutes)
    session.add(escalation)
    session.flush()
    record(
        session,
        actor=ONCALL_ACTOR,
        action=AuditAction.ONCALL_STEP_FIRED,
        object_type="incident",
        object_id=escalation.incident_id,
        details={
            **fired,
            "policy": escalation.policy,
            "pages": [f"{p.medium}:{recipient(p.responder, p.medium, p.address)}" for p in fresh],
            "notes": notes,
            "status": escalation.status,
        },
        at=when,
    )
    who = ", ".join(dict.fromkeys(recipient(p.responder, p.medium, p.address) for p in pages)) or "nobody"
    on_timeline(
        session,
        escalation.incident_id,
        at=when,
        title=f"On-call level {fired['step']} paged: {who}" + (f" ({'; '.join(notes)})" if notes else ""),
        body={
            **fired,
            "pages": [f"{p.medium}:{recipient(p.responder, p.medium, p.address)}" for p in pages],
            "notes": notes,
        },
        actor=ONCALL_ACTOR.name,
        ref=("escalation", str(escalation.id)),
    )
    return fresh


def escalate_due(db: Database, settings: Any = None, now: datetime | None = None) -> SweepReport:
    """Fire every step that is due at `now`, one transaction per step."""
    when = as_utc(now or utcnow())
    report = SweepReport()
    for _ in range(SWEEP_LIMIT):
        with db.session() as session:
            query = (
                select(Escalation)
                .where(Escalation.status == ACTIVE, col(Escalation.next_at) <= when)
                .order_by(col(Escalation.next_at), col(Escalation.id))
                .limit(1)
            )
            if db.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            escalation = session.exec(query).first()
            if escalation is None:
                break
            position = (escalation.id or 0, escalation.loop, escalation.step + 1)
            pages = fire_step(session, escalation, when)
            if escalation.status == STOPPED:
                report.stopped.append(escalation.id or 0)
            else:
                report.fired.append(position)
                report.pages += len(pages)
    return report


def acknowledge(
    session: Session,
    *,
    incident_id: int,
    actor: Actor,
    via: str,
    now: datetime | None = None,
) -> Escalation:
    """Stop the incident's escalation (idempotent); pending pages are cancelled; audited here."""
    when = as_utc(now or utcnow())
    escalation = session.exec(select(Escalation).where(Escalation.incident_id == incident_id)).first()
    if escalation is None:
        raise OncallNotFound(f"incident {incident_id} has no escalation")
    if escalation.status in (ACKNOWLEDGED, RESOLVED):
        return escalation
    escalation.status = ACKNOWLEDGED
    escalation.next_at = None
    escalation.acknowledged_at = when
    escalation.acknowledged_by = actor.name
    escalation.acknowledged_via = via
    session.add(escalation)
    incident = session.get(Incident, incident_id)
    if incident is not None and incident.acknowledged_at is None:
        incident.acknowledged_at = when
        session.add(incident)
    pending = session.exec(
        select(Page).where(Page.escalation_id == escalation.id, Page.status == "pending")
    ).all()
    for page in pending:
        page.status = "cancelled"
        session.add(page)
    record(
        session,
        actor=actor,
        action=AuditAction.ONCALL_ESCALATION_ACKNOWLEDGED,
        object_type="incident",
        object_id=incident_id,
        details={
            "escalation": escalation.id,
            "acknowledged_via": via,
            "mtta_seconds": round((when - as_utc(escalation.started_at)).total_seconds(), 3),
            "cancelled_pages": len(pending),
        },
        at=when,
    )
    minutes = (when - as_utc(escalation.started_at)).total_seconds() / 60
    on_timeline(
        session,
        incident_id,
        at=when,
        title=f"Page acknowledged by {actor.name} via {via} after {minutes:.1f} min; escalation stopped",
        body={"escalation": escalation.id, "via": via, "cancelled_pages": len(pending)},
        actor=actor.name,
        ref=("escalation", str(escalation.id)),
    )
    session.flush()
    return escalation


def escalate_now(
    session: Session, *, incident_id: int, actor: Actor, via: str, now: datetime | None = None
) -> Escalation:
    """Fire the escalation's next step at the next sweep instead of after its delay; audited here."""
    when = as_utc(now or utcnow())
    escalation = session.exec(select(Escalation).where(Escalation.incident_id == incident_id)).first()
    if escalation is None:
        raise OncallNotFound(f"incident {incident_id} has no escalation")
    if escalation.status != ACTIVE:
        raise OncallRefused(
            f"incident {incident_id}'s escalation is {escalation.status}: nothing to escalate"
        )
    before = escalation.next_at
    escalation.next_at = when
    session.add(escalation)
    record(
        session,
        actor=actor,
        action=AuditAction.ONCALL_ESCALATED_NOW,
        object_type="incident",
        object_id=incident_id,
        before={"next_at": before.isoformat() if before else None},
        after={"next_at": when.isoformat()},
        # "channel": the audit record's own "via" is the actor's transport (API for SMS, Slack, ...).
        details={"escalation": escalation.id, "channel": via, "next_step": escalation.step + 1},
        at=when,
    )
    on_timeline(
        session,
        incident_id,
        at=when,
        title=f"Escalated now by {actor.name} via {via}: level {escalation.step + 1} next",
        body={"escalation": escalation.id, "via": via},
        actor=actor.name,
        ref=("escalation", str(escalation.id)),
    )
    session.flush()
    return escalation


def page_by_token(session: Session, token: str) -> Page:
    """The page whose message carried `token` (acknowledgement links and Slack buttons)."""
    page = None
    if len(token) <= 200:
        page = session.exec(select(Page).where(Page.ack_token_hash == token_hash(token))).first()
    if page is None:
        raise OncallNotFound("unknown or expired acknowledgement link")
    return page


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def acknowledge_by_token(
    session: Session, token: str, *, via: str, now: datetime | None = None
) -> Escalation:
    """Acknowledge with the token a page carried: it stands for the responder it was sent to."""
    from oncall.actions import page_for_link

    page = page_for_link(session, token, now=now)
    who = recipient(page.responder, page.medium, page.address)
    return acknowledge(
        session, incident_id=page.incident_id, actor=Actor(f"responder:{who}", Channel.API), via=via, now=now
    )
