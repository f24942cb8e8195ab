"""What the service and the people ask of on-call: the cycle's tick, who was paged, responder load, MTTA."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from statistics import median
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, func, select

from core.clock import as_utc, utcnow
from core.db import Database
from core.models.oncall import Escalation, Page
from oncall.escalation import ACTIVE, ONCALL_ACTOR, SENDING, SweepReport, escalate_due, start_escalations
from oncall.outbox import OutboxReport, deliver_pages
from oncall.schedules import coverage
from oncall.store import load_document

NIGHT_START, NIGHT_END = 22, 7


@dataclass
class TickReport:
    started: int
    sweep: SweepReport
    outbox: OutboxReport


def run_due(db: Database, settings: Any = None, now: datetime | None = None) -> TickReport:
    """Start escalations for new incidents, fire due steps, send due pages."""
    when = as_utc(now or utcnow())
    with db.session() as session:
        started = len(start_escalations(session, settings, ONCALL_ACTOR, now=when))
    sweep = escalate_due(db, settings, when)
    outbox = deliver_pages(db, settings, when)
    return TickReport(started, sweep, outbox)


def next_due_at(db: Database) -> datetime | None:
    """When `run_due` next has something to do: the earliest escalation step, page retry or
    in-flight page's lease end that is waiting (a task engine schedules a delayed job for that moment)."""
    with db.session(readonly=True) as session:
        step = session.exec(select(func.min(Escalation.next_at)).where(Escalation.status == ACTIVE)).one()
        retry = session.exec(
            select(func.min(Page.next_attempt_at)).where(col(Page.status).in_(["pending", SENDING]))
        ).one()
    moments = [as_utc(m) for m in (step, retry) if m is not None]
    return min(moments) if moments else None


def pages_of(session: Session, incident_id: int) -> list[dict[str, Any]]:
    """Who was paged about an incident, how, and what became of it."""
    rows = session.exec(select(Page).where(Page.incident_id == incident_id).order_by(col(Page.id))).all()
    return [
        {
            "id": p.id,
            "step": p.step + 1,
            "loop": p.loop,
            "responder": p.responder,
            "medium": p.medium,
            "address": p.address if not p.responder else "",
            "status": p.status,
            "attempts": p.attempts,
            "error": p.last_error or None,
            "sent_at": p.sent_at,
        }
        for p in rows
    ]


def escalation_view(escalation: Escalation) -> dict[str, Any]:
    mtta = None
    if escalation.acknowledged_at is not None:
        mtta = (as_utc(escalation.acknowledged_at) - as_utc(escalation.started_at)).total_seconds()
    return {
        "id": escalation.id,
        "incident_id": escalation.incident_id,
        "policy": escalation.policy,
        "route": escalation.route,
        "status": escalation.status,
        "next_step": escalation.step + 1,
        "loop": escalation.loop,
        "next_at": escalation.next_at,
        "started_at": escalation.started_at,
        "acknowledged_at": escalation.acknowledged_at,
        "acknowledged_by": escalation.acknowledged_by,
        "acknowledged_via": escalation.acknowledged_via,
        "mtta_seconds": mtta,
    }


def _is_night(moment: datetime, zone: str) -> bool:
    hour = as_utc(moment).astimezone(ZoneInfo(zone)).hour
    return hour >= NIGHT_START or hour < NIGHT_END


def responder_load(session: Session, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Per responder over [start, end): hours on call (all schedules), pages, night pages, MTTA."""
    document = load_document(session)
    zones = {r.name: r.timezone for r in document.responders}
    hours: dict[str, float] = defaultdict(float)
    for schedule in document.schedules:
        for shift in coverage(schedule, start, end).shifts:
            if shift.user:
                hours[shift.user] += shift.hours
    pages: dict[str, int] = defaultdict(int)
    nights: dict[str, int] = defaultdict(int)
    sent = session.exec(
        select(Page).where(
            Page.status == "sent",
            col(Page.responder) != "",
            col(Page.sent_at) >= as_utc(start),
            col(Page.sent_at) < as_utc(end),
        )
    ).all()
    # Several media of one step are one page for a person.
    seen = set()
    for page in sent:
        key = (page.responder, page.escalation_id, page.loop, page.step)
        if key in seen or page.sent_at is None:
            continue
        seen.add(key)
        pages[page.responder] += 1
        if _is_night(page.sent_at, zones.get(page.responder, "UTC")):
            nights[page.responder] += 1
    acks: dict[str, list[float]] = defaultdict(list)
    acked = session.exec(
        select(Escalation).where(
            col(Escalation.acknowledged_at) >= as_utc(start), col(Escalation.acknowledged_at) < as_utc(end)
        )
    ).all()
    for escalation in acked:
        who = _who(escalation.acknowledged_by)
        if escalation.acknowledged_at is not None:
            acks[who].append(
                (as_utc(escalation.acknowledged_at) - as_utc(escalation.started_at)).total_seconds()
            )
    names = sorted(set(zones) | set(hours) | set(pages))
    return [
        {
            "responder": name,
            "hours_on_call": round(hours.get(name, 0.0), 2),
            "pages": pages.get(name, 0),
            "night_pages": nights.get(name, 0),
            "acknowledged": len(acks.get(name, [])),
            "mtta_seconds": round(sum(acks[name]) / len(acks[name]), 1) if acks.get(name) else None,
        }
        for name in names
    ]


def _who(acknowledged_by: str | None) -> str:
    name = acknowledged_by or ""
    for prefix in ("responder:", "principal:"):
        name = name.removeprefix(prefix)
    return name


def _mtta_row(seconds: list[float], started: int) -> dict[str, Any]:
    ordered = sorted(seconds)
    return {
        "escalations": started,
        "acknowledged": len(ordered),
        "mtta_seconds": round(sum(ordered) / len(ordered), 1) if ordered else None,
        "median_seconds": round(median(ordered), 1) if ordered else None,
        "max_seconds": round(ordered[-1], 1) if ordered else None,
    }


def mtta_report(session: Session, start: datetime, end: datetime) -> dict[str, Any]:
    """MTTA (escalation start to acknowledgement) per policy and per responder, over the
    escalations started in [start, end); an incident resolved from a page counts as acknowledged then."""
    rows = session.exec(
        select(Escalation).where(
            col(Escalation.started_at) >= as_utc(start), col(Escalation.started_at) < as_utc(end)
        )
    ).all()
    by_policy: dict[str, list[float]] = defaultdict(list)
    started: dict[str, int] = defaultdict(int)
    by_responder: dict[str, list[float]] = defaultdict(list)
    for escalation in rows:
        started[escalation.policy] += 1
        if escalation.acknowledged_at is None:
            continue
        seconds = (as_utc(escalation.acknowledged_at) - as_utc(escalation.started_at)).total_seconds()
        by_policy[escalation.policy].append(seconds)
        by_responder[_who(escalation.acknowledged_by)].append(seconds)
    return {
        "start": as_utc(start),
        "end": as_utc(end),
        "policies": [
            {"policy": name, **_mtta_row(by_policy[name], started[name])} for name in sorted(started)
        ],
        "responders": [
            {"responder": name, **_mtta_row(times, len(times))}
            for name, times in sorted(by_responder.items())
        ],
    }
