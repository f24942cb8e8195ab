"""The incident queue and the incident page: filters, SLA clocks, triage, lifecycle, merge/split, live updates.

Reads go through the API's service functions (api.incidents.service, api.actions.service); changes
through the same calls the API makes, so they are audited by timeline.lifecycle and remediation
with the signed-in caller. The incident page listens on a server-sent event stream and reloads its
timeline region when the incident changes (another analyst, the pipeline, a Slack approval).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Form, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from pydantic import Field
from sqlalchemy import func
from sqlmodel import col, select

from api.actions import service as actions_service
from api.incidents import service
from api.incidents.schemas import AssignIn, MergeIn, NoteIn, SplitIn, TransitionIn
from console.web import ConsolePage, back_to, render, signed_in
from core.clock import utcnow
from core.db import Database
from core.errors import TenantguardError
from core.models import Incident, IncidentStatus, Priority, TimelineEntry
from core.pagination import MAX_ID
from core.permissions import Permission
from timeline.lifecycle import ALLOWED

router = APIRouter(prefix="/console", include_in_schema=False)
IncidentId = Annotated[int, Path(ge=1, le=MAX_ID)]
QUEUE_LIMIT = 200
OPEN = [IncidentStatus.NEW, IncidentStatus.TRIAGED, IncidentStatus.CONTAINED]
EVENTS_POLL_SECONDS = 1.0
EVENTS_MAX_SECONDS = 300.0  # the browser reconnects by itself after this


def sla_clock(due_at: datetime | None, done: bool, now: datetime) -> tuple[str, str]:
    """('overdue'|'due'|'met'|'none', words) for an SLA deadline."""
    if due_at is None:
        return "none", "—"
    if done:
        return "met", "met"
    left = (due_at - now).total_seconds()
    days, rest = divmod(abs(int(left)), 86400)
    hours, rest = divmod(rest, 3600)
    words = f"{days}d {hours}h" if days else f"{hours}h {rest // 60:02d}m"
    return ("due", f"due in {words}") if left >= 0 else ("overdue", f"overdue by {words}")


def _queue(db: Database, statuses: list[str], priorities: list[str], assignee: str | None) -> list[Incident]:
    with db.session(readonly=True) as session:
        query = select(Incident).where(col(Incident.merged_into_id).is_(None))
        if statuses:
            query = query.where(col(Incident.status).in_(statuses))
        if priorities:
            query = query.where(col(Incident.priority).in_(priorities))
        if assignee:
            query = query.where(Incident.assignee == assignee)
        query = query.order_by(col(Incident.priority), col(Incident.created_at).desc()).limit(QUEUE_LIMIT)
        return list(session.exec(query).all())


@router.get("/incidents")
def queue(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.INCIDENTS_READ))],
    status: Annotated[list[IncidentStatus] | None, Query()] = None,
    priority: Annotated[list[Priority] | None, Query()] = None,
    assignee: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    statuses = [s.value for s in status] if status is not None else [s.value for s in OPEN]
    priorities = [p.value for p in priority or []]
    incidents = _queue(page.ctx.db, statuses, priorities, assignee or None)
    now = utcnow()
    rows = [
        (i, sla_clock(i.due_at, i.resolved_at is not None or i.status not in OPEN, now)) for i in incidents
    ]
    return render(
        page,
        page.request,
        "queue.html.j2",
        rows=rows,
        statuses=[s.value for s in IncidentStatus],
        priorities=[p.value for p in Priority],
        chosen_status=statuses,
        chosen_priority=priorities,
        assignee=assignee or "",
    )


@router.post("/incidents/bulk")
def bulk_transition(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.INCIDENTS_WRITE))],
    to: Annotated[IncidentStatus, Form()],
    incident_ids: Annotated[list[int], Form(alias="incident_id", max_length=200)],
) -> Response:
    done, failed = [], []
    for incident_id in incident_ids:
        try:
            service.transition(page.ctx, incident_id, TransitionIn(to=to))
            done.append(f"#{incident_id}")
        except TenantguardError as exc:
            failed.append(f"#{incident_id}: {exc}")
    return back_to(
        "/console/incidents",
        notice=f"{to.value}: {', '.join(done)}" if done else None,
        error="; ".join(failed) or None,
    )


@router.get("/incidents/{incident_id}")
def incident_page(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.INCIDENTS_READ))], incident_id: IncidentId
) -> Response:
    with page.ctx.db.session(readonly=True) as session:
        detail = service.incident_detail(session, incident_id)
    plan = actions_service.get_plan(page.ctx, incident_id)
    now = utcnow()
    done = detail.resolved_at is not None or detail.status not in OPEN
    return render(
        page,
        page.request,
        "incident.html.j2",
        incident=detail,
        timeline=service.timeline_page(page.ctx, incident_id, cursor=None, limit=200, kinds=None),
        plan=plan,
        transitions=sorted(s.value for s in ALLOWED[IncidentStatus(detail.status)]),
        ack_clock=sla_clock(detail.ack_due_at, detail.acknowledged_at is not None or done, now),
        due_clock=sla_clock(detail.due_at, done, now),
    )


@router.get("/incidents/{incident_id}/timeline")
def timeline_fragment(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.INCIDENTS_READ))], incident_id: IncidentId
) -> Response:
    """The timeline region alone: what the live-update script swaps in."""
    with page.ctx.db.session(readonly=True) as session:
        detail = service.incident_detail(session, incident_id)
    return render(
        page,
        page.request,
        "incident_live.html.j2",
        incident=detail,
        timeline=service.timeline_page(page.ctx, incident_id, cursor=None, limit=200, kinds=None),
        plan=actions_service.get_plan(page.ctx, incident_id),
    )


def _version(db: Database, incident_id: int) -> str:
    with db.session(readonly=True) as session:
        incident = session.get(Incident, incident_id)
        entries = session.exec(
            select(func.count(), func.max(TimelineEntry.id)).where(TimelineEntry.incident_id == incident_id)
        ).one()
    if incident is None:
        return "gone"
    return (
        f"{incident.status}|{incident.assignee}|{incident.updated_at.isoformat()}|{entries[0]}|{entries[1]}"
    )


@router.get("/incidents/{incident_id}/events")
async def incident_events(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.INCIDENTS_READ))], incident_id: IncidentId
) -> Response:
    """Server-sent events: one `changed` event each time the incident or its timeline changes."""
    db = page.ctx.db
    # Read before the response starts: a change made once the browser sees the stream open is an event.
    first = await run_in_threadpool(_version, db, incident_id)

    async def stream() -> AsyncIterator[bytes]:
        seen = first
        yield b"retry: 2000\n\n"
        loop = asyncio.get_running_loop()
        stop_at = loop.time() + EVENTS_MAX_SECONDS
        while loop.time() < stop_at and not await page.request.is_disconnected():
            await asyncio.sleep(EVENTS_POLL_SECONDS)  # polling the database, not synchronising a test
            now = await run_in_threadpool(_version, db, incident_id)
            if now != seen:
                seen = now
                yield b"event: changed\ndata: " + orjson.dumps({"incident_id": incident_id}) + b"\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


def _act(page: ConsolePage, incident_id: int, what: str, call: object) -> Response:
    target = f"/console/incidents/{incident_id}"
    try:
        assert callable(call)
        call()
    except TenantguardError as exc:
        return back_to(target, error=str(exc))
    return back_to(target, notice=what)


@router.post("/incidents/{incident_id}/transition")
def transition(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.INCIDENTS_WRITE))],
    incident_id: IncidentId,
    to: Annotated[IncidentStatus, Form()],
    note: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    body = TransitionIn(to=to, note=note or None)
    return _act(
        page, incident_id, f"moved to {to.value}", lambda: service.transition(page.ctx, incident_id, body)
    )


@router.post("/incidents/{incident_id}/assign")
def assign(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.INCIDENTS_WRITE))],
    incident_id: IncidentId,
    assignee: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    body = AssignIn(assignee=assignee.strip() or None)
    what = f"assigned to {body.assignee}" if body.assignee else "unassigned"
    return _act(page, incident_id, what, lambda: service.assign(page.ctx, incident_id, body))


@router.post("/incidents/{incident_id}/notes")
def add_note(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.INCIDENTS_WRITE))],
    incident_id: IncidentId,
    text: Annotated[str, Form(min_length=1, max_length=20_000)],
) -> Response:
    body = NoteIn(text=text)
    return _act(page, incident_id, "note added", lambda: service.add_note(page.ctx, incident_id, body))


@router.post("/incidents/{incident_id}/plan")
def propose_plan(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.ACTIONS_REQUEST))], incident_id: IncidentId
) -> Response:
    return _act(
        page, incident_id, "remediation proposed", lambda: actions_service.propose(page.ctx, incident_id)
    )


@router.post("/incidents/{incident_id}/execute")
def execute(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.ACTIONS_EXECUTE))], incident_id: IncidentId
) -> Response:
    target = f"/console/incidents/{incident_id}"
    try:
        report = actions_service.execute_incident(page.ctx, incident_id, dry_run=False)
    except TenantguardError as exc:
        return back_to(target, error=str(exc))
    outcomes = ", ".join(f"{r.action} {r.subject}: {r.outcome}" for r in report.results) or "nothing to run"
    return back_to(target, notice=f"executed — {outcomes}")


def _numbers(text: str, what: str) -> list[int]:
    """`41, #42 43` as [41, 42, 43]; anything else is named in the error."""
    numbers = []
    for part in text.replace(",", " ").split():
        value = part.removeprefix("#")
        if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_ID:
            raise ValueError(f"{what}: {part!r} is not an incident number")
        numbers.append(int(value))
    if not numbers:
        raise ValueError(f"{what}: give at least one incident number")
    return numbers


@router.post("/incidents/{incident_id}/merge")
def merge(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.INCIDENTS_WRITE))],
    incident_id: IncidentId,
    incident_ids: Annotated[str, Form(max_length=2000)],
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Fold other incidents into this one (timeline.lifecycle.merge, as `POST /incidents/{id}/merge`)."""
    target = f"/console/incidents/{incident_id}"
    try:
        body = MergeIn(incident_ids=_numbers(incident_ids, "merge"), reason=reason)
    except ValueError as exc:
        return back_to(target, error=str(exc))
    merged = ", ".join(f"#{i}" for i in body.incident_ids)
    return _act(
        page,
        incident_id,
        f"merged {merged} into this incident",
        lambda: service.merge(page.ctx, incident_id, body),
    )


@router.post("/incidents/{incident_id}/split")
def split(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.INCIDENTS_WRITE))],
    incident_id: IncidentId,
    finding_ids: Annotated[
        list[Annotated[int, Field(ge=1, le=MAX_ID)]], Form(alias="finding_id", max_length=500)
    ] = [],  # noqa: B006 (FastAPI copies defaults)
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Move the chosen findings to a new incident (timeline.lifecycle.split, as `POST /incidents/{id}/split`)."""
    if not finding_ids:
        return back_to(f"/console/incidents/{incident_id}", error="split: tick the findings to move")
    try:
        created = service.split(page.ctx, incident_id, SplitIn(finding_ids=finding_ids, reason=reason))
    except TenantguardError as exc:
        return back_to(f"/console/incidents/{incident_id}", error=str(exc))
    moved = ", ".join(f"#{f}" for f in sorted(set(finding_ids)))
    return back_to(
        f"/console/incidents/{created.id}", notice=f"split from incident #{incident_id}: findings {moved}"
    )
