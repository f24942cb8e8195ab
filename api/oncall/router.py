"""HTTP routes for on-call: configuration (as one document), who is on call, escalations, acknowledgements."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Form, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from sqlmodel import col, select

from api.context import RequestContext, require, state_of
from core.audit import Actor, Channel
from core.clock import as_utc, utcnow
from core.models.oncall import Escalation
from core.pagination import MAX_ID
from core.permissions import Permission
from oncall import acknowledge
from oncall.actions import Action, act, page_for_link
from oncall.errors import OncallInputError
from oncall.files import validate
from oncall.ical import export_ical
from oncall.journal import recipient
from oncall.schedules import coverage, next_shift, on_call_at
from oncall.service import escalation_view, pages_of, responder_load
from oncall.spec import OncallDocument
from oncall.store import apply_document, get_schedule, load_document

router = APIRouter(prefix="/oncall", tags=["oncall"])
ScheduleName = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$")]
IncidentId = Annotated[int, Path(ge=1, le=MAX_ID, description="Incident id.")]
AckToken = Annotated[str, Path(min_length=16, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")]
MAX_SPAN = timedelta(days=366)


class ApplyOut(BaseModel):
    created: list[str]
    updated: list[str]
    deleted: list[str]
    unchanged: int


def _span(start: datetime | None, end: datetime | None, default: timedelta) -> tuple[datetime, datetime]:
    lo = as_utc(start) if start else utcnow()
    hi = as_utc(end) if end else lo + default
    if hi <= lo or hi - lo > MAX_SPAN:
        raise OncallInputError("end must be after start and at most 366 days later")
    return lo, hi


@router.get("/config", summary="The whole on-call configuration, as one document")
def get_config(ctx: Annotated[RequestContext, require(Permission.ONCALL_READ)]) -> dict[str, Any]:
    with ctx.db.session(readonly=True) as session:
        return load_document(session).model_dump(mode="json")


@router.put("/config", response_model=ApplyOut, summary="Replace the on-call configuration (audited)")
def put_config(
    ctx: Annotated[RequestContext, require(Permission.ONCALL_WRITE)],
    document: Annotated[
        dict[str, Any],
        Body(description="An on-call document: responders, schedules, policies, routes, channels."),
    ],
) -> ApplyOut:
    parsed: OncallDocument = validate(document, where="request body")
    with ctx.db.session() as session:
        result = apply_document(session, parsed, actor=ctx.actor)
    return ApplyOut(**vars(result))


@router.get("/schedules/{name}/now", summary="Who is on call now, and who is next")
def schedule_now(
    ctx: Annotated[RequestContext, require(Permission.ONCALL_READ)],
    name: ScheduleName,
    at: Annotated[datetime | None, Query(description="Another moment than now (ISO 8601).")] = None,
) -> dict[str, Any]:
    moment = as_utc(at) if at else utcnow()
    with ctx.db.session(readonly=True) as session:
        schedule = get_schedule(session, name)
    upcoming = next_shift(schedule, moment)
    return {
        "schedule": name,
        "at": moment,
        "on_call": on_call_at(schedule, moment),
        "next": {"user": upcoming.user, "start": upcoming.start, "end": upcoming.end} if upcoming else None,
    }


@router.get("/schedules/{name}/coverage", summary="Shifts, gaps and double coverage over a period")
def schedule_coverage(
    ctx: Annotated[RequestContext, require(Permission.ONCALL_READ)],
    name: ScheduleName,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any]:
    lo, hi = _span(start, end, timedelta(days=14))
    with ctx.db.session(readonly=True) as session:
        schedule = get_schedule(session, name)
    found = coverage(schedule, lo, hi)

    def rows(shifts: Any) -> list[dict[str, Any]]:
        return [{"start": s.start, "end": s.end, "user": s.user} for s in shifts]

    return {
        "schedule": name,
        "shifts": rows(found.shifts),
        "gaps": rows(found.gaps),
        "double": rows(found.double),
    }


@router.get("/schedules/{name}/ical", summary="The schedule as an iCalendar feed", response_class=Response)
def schedule_ical(
    ctx: Annotated[RequestContext, require(Permission.ONCALL_READ)],
    name: ScheduleName,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Response:
    lo, hi = _span(start, end, timedelta(days=90))
    with ctx.db.session(readonly=True) as session:
        schedule = get_schedule(session, name)
    return Response(export_ical(schedule, lo, hi), media_type="text/calendar")


@router.put(
    "/schedules/{name}/ical",
    response_model=ApplyOut,
    summary="Store an iCalendar feed as a schedule (recurrences expanded; audited)",
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/calendar": {"schema": {"type": "string"}}}}
    },
)
async def import_schedule_ical(
    request: Request,
    ctx: Annotated[RequestContext, require(Permission.ONCALL_WRITE)],
    name: ScheduleName,
    start: datetime | None = None,
    end: datetime | None = None,
    timezone: Annotated[str, Query(max_length=64, description="The schedule's display zone.")] = "UTC",
) -> ApplyOut:
    from oncall.ical import MAX_ICAL_BYTES
    from oncall.store import import_schedule

    lo, hi = _span(start, end, timedelta(days=90))
    data = (await request.body())[: MAX_ICAL_BYTES + 1]

    def store() -> ApplyOut:
        with ctx.db.session() as session:
            result = import_schedule(session, name, data, lo, hi, actor=ctx.actor, timezone=timezone)
        return ApplyOut(**vars(result))

    return await run_in_threadpool(store)


@router.get("/load", summary="Load per responder: hours on call, pages, night pages, MTTA")
def load(
    ctx: Annotated[RequestContext, require(Permission.ONCALL_READ)],
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[dict[str, Any]]:
    hi = as_utc(end) if end else utcnow()
    lo, hi = _span(start or hi - timedelta(days=30), hi, timedelta(days=30))
    with ctx.db.session(readonly=True) as session:
        return responder_load(session, lo, hi)


@router.get("/report", summary="MTTA per policy and per responder over a period (default the last 30 days)")
def mtta(
    ctx: Annotated[RequestContext, require(Permission.ONCALL_READ)],
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any]:
    from oncall.service import mtta_report

    hi = as_utc(end) if end else utcnow()
    lo, hi = _span(start or hi - timedelta(days=30), hi, timedelta(days=30))
    with ctx.db.session(readonly=True) as session:
        return mtta_report(session, lo, hi)


@router.get("/escalations", summary="Escalations, newest first")
def list_escalations(
    ctx: Annotated[RequestContext, require(Permission.ONCALL_READ)],
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    with ctx.db.session(readonly=True) as session:
        rows = session.exec(select(Escalation).order_by(col(Escalation.id).desc()).limit(limit)).all()
        return [escalation_view(row) for row in rows]


@router.get("/incidents/{incident_id}/pages", summary="Who was paged about an incident, and how")
def incident_pages(
    ctx: Annotated[RequestContext, require(Permission.ONCALL_READ)], incident_id: IncidentId
) -> list[dict[str, Any]]:
    with ctx.db.session(readonly=True) as session:
        return pages_of(session, incident_id)


@router.post("/incidents/{incident_id}/acknowledge", summary="Acknowledge: stop the incident's escalation")
def acknowledge_incident(
    ctx: Annotated[RequestContext, require(Permission.ONCALL_ACK)], incident_id: IncidentId
) -> dict[str, Any]:
    with ctx.db.session() as session:
        escalation = acknowledge(session, incident_id=incident_id, actor=ctx.actor, via="api")
        return escalation_view(escalation)


class ReassignIn(BaseModel):
    responder: str


@router.post("/incidents/{incident_id}/resolve", summary="Resolve the incident and stop its escalation")
def resolve_incident(
    ctx: Annotated[RequestContext, require(Permission.ONCALL_ACK)], incident_id: IncidentId
) -> dict[str, Any]:
    with ctx.db.session() as session:
        return escalation_view(
            act(session, Action.RESOLVE, incident_id=incident_id, actor=ctx.actor, via="api")
        )


@router.post("/incidents/{incident_id}/escalate", summary="Escalate now: the next level is paged at once")
def escalate_incident(
    ctx: Annotated[RequestContext, require(Permission.ONCALL_ACK)], incident_id: IncidentId
) -> dict[str, Any]:
    with ctx.db.session() as session:
        return escalation_view(
            act(session, Action.ESCALATE, incident_id=incident_id, actor=ctx.actor, via="api")
        )


@router.post("/incidents/{incident_id}/reassign", summary="Hand the page to another responder (paged now)")
def reassign_incident(
    ctx: Annotated[RequestContext, require(Permission.ONCALL_ACK)],
    incident_id: IncidentId,
    body: Annotated[ReassignIn, Body()],
) -> dict[str, Any]:
    with ctx.db.session() as session:
        escalation = act(
            session,
            Action.REASSIGN,
            incident_id=incident_id,
            actor=ctx.actor,
            via="api",
            responder=body.responder,
        )
        return escalation_view(escalation)


@router.get("/ack/{token}", response_class=HTMLResponse, summary="The page behind an e-mail/SMS link")
def ack_form(token: AckToken) -> HTMLResponse:
    # A GET changes nothing (mail scanners follow links); each button POSTs the token back.
    buttons = "".join(
        f'<form method="post" action="/oncall/ack/{token}?action={action.value}">'
        f"<button>{action.value.capitalize()}</button></form>"
        for action in (Action.ACKNOWLEDGE, Action.RESOLVE, Action.ESCALATE)
    )
    reassign = (
        f'<form method="post" action="/oncall/ack/{token}?action=reassign">'
        '<label>Reassign to <input name="responder" required maxlength="200"></label>'
        "<button>Reassign</button></form>"
    )
    return HTMLResponse(f"<!doctype html><title>tenantguard page</title>{buttons}{reassign}")


@router.post(
    "/ack/{token}",
    summary="Act on a page with the token its e-mail/SMS link carried (it names the responder; expires)",
)
def ack_with_token(
    request: Request,
    token: AckToken,
    action: Annotated[
        Literal["acknowledge", "resolve", "escalate", "reassign"],
        Query(description="What to do (default acknowledge)."),
    ] = "acknowledge",
    responder: Annotated[
        str | None, Form(max_length=200, description="reassign: the responder to hand the page to.")
    ] = None,
) -> dict[str, Any]:
    state = state_of(request)
    with state.db.session() as session:
        page = page_for_link(session, token)
        actor = Actor(
            f"responder:{recipient(page.responder, page.medium, page.address)}",
            Channel.API,
            f"link:page{page.id}",
        )
        escalation = act(
            session, action, incident_id=page.incident_id, actor=actor, via="link", responder=responder
        )
        return escalation_view(escalation)


@router.post(
    "/twilio/voice/{token}",
    response_class=Response,
    responses={
        code: {"description": what, "content": {"text/xml": {"schema": {"type": "string"}}}}
        for code, what in (
            (200, "TwiML: what the call says next"),
            (403, "TwiML: refused (bad Twilio signature or no such page)"),
            (404, "TwiML: voice paging is not configured"),
        )
    },
    summary="Keys pressed during a voice page (signed by Twilio, no bearer token): 1 acknowledges, 9 escalates",
)
async def twilio_voice_keypress(request: Request, token: AckToken) -> Response:
    from oncall.twilio_callbacks import handle_keypress

    form, signature = await _twilio_form(request)
    state = state_of(request)

    def apply() -> Any:
        with state.db.session() as session:
            return handle_keypress(session, token, form, signature)

    result = await run_in_threadpool(apply)
    return Response(result.twiml, status_code=result.status_code, media_type="text/xml")


async def _twilio_form(request: Request) -> tuple[dict[str, str], str]:
    """The form Twilio posted and its signature, after the per-address rate limit (these routes are
    public — Twilio signs them — and every refusal is audited: bound how fast one address can try)."""
    from urllib.parse import parse_qsl

    from api.errors import RateLimited
    from api.ratelimit import retry_after_seconds

    state = state_of(request)
    client = request.client.host if request.client else "unknown"
    wait = state.limiter.acquire(f"twilio:{client}")
    if wait is not None:
        raise RateLimited(f"too many Twilio callbacks from {client}; slow down", retry_after_seconds(wait))
    body = (await request.body())[:65536]
    form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return form, request.headers.get("x-twilio-signature", "")


@router.post(
    "/twilio/sms",
    response_class=Response,
    responses={
        code: {"description": what, "content": {"text/xml": {"schema": {"type": "string"}}}}
        for code, what in (
            (200, "TwiML: the reply SMS saying what was done"),
            (403, "TwiML: refused (bad Twilio signature, unknown number)"),
            (404, "TwiML: SMS paging is not configured"),
        )
    },
    summary="A responder's SMS reply (ACK / RESOLVE / ESC): Twilio's incoming-message webhook, signed",
)
async def twilio_sms_reply(request: Request) -> Response:
    from oncall.twilio_callbacks import handle_sms_reply

    form, signature = await _twilio_form(request)
    state = state_of(request)

    def apply() -> Any:
        with state.db.session() as session:
            return handle_sms_reply(session, form, signature)

    result = await run_in_threadpool(apply)
    return Response(result.twiml, status_code=result.status_code, media_type="text/xml")


@router.post(
    "/twilio/status/{page_id}/{attempt}",
    status_code=204,
    response_class=Response,
    responses={
        code: {"description": what, "content": {"text/xml": {"schema": {"type": "string"}}}}
        for code, what in (
            (403, "Refused: bad Twilio signature or no such page attempt (empty TwiML)"),
            (404, "SMS and voice paging is not configured (empty TwiML)"),
        )
    },
    summary="Twilio status callback for one SMS/voice page attempt (signed by Twilio, no bearer token)",
)
async def twilio_status(
    request: Request,
    page_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    attempt: Annotated[int, Path(ge=1, le=1000)],
) -> Response:
    from oncall.twilio_callbacks import handle_status

    form, signature = await _twilio_form(request)
    state = state_of(request)

    def apply() -> int:
        with state.db.session() as session:
            return handle_status(session, page_id, attempt, form, signature)

    status = await run_in_threadpool(apply)
    if status == 204:
        return Response(status_code=204)
    return Response("<Response/>", status_code=status, media_type="text/xml")


@router.get("/incidents/{incident_id}/route", summary="Which routing rule an incident matches, and why")
def incident_route(
    ctx: Annotated[RequestContext, require(Permission.ONCALL_READ)],
    incident_id: IncidentId,
    at: Annotated[datetime | None, Query(description="Route as at this moment (business hours).")] = None,
) -> dict[str, Any]:
    from core.models.incident import Incident
    from oncall.errors import OncallNotFound
    from oncall.escalation import explain_routes

    moment = as_utc(at) if at else utcnow()
    with ctx.db.session(readonly=True) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise OncallNotFound(f"no incident {incident_id}")
        answers = explain_routes(session, incident, load_document(session).routes, moment)
    chosen = next((a for a in answers if a["matched"]), None)
    return {
        "incident_id": incident_id,
        "at": moment,
        "route": chosen["route"] if chosen else None,
        "policy": chosen["policy"] if chosen else None,
        "rules": answers,
    }


class OverrideIn(BaseModel):
    user: str
    start: datetime
    end: datetime
    # Swap: `user` takes only the stretches this responder is on call between start and end.
    swap_with: str | None = None
    # A two-way swap: in return, `swap_with` takes `user`'s stretches in this window.
    in_return_start: datetime | None = None
    in_return_end: datetime | None = None
    reason: str = ""


@router.post("/schedules/{name}/overrides", summary="Add an override or a swap to a schedule (audited)")
def add_schedule_override(
    ctx: Annotated[RequestContext, require(Permission.ONCALL_WRITE)],
    name: ScheduleName,
    body: Annotated[OverrideIn, Body()],
) -> dict[str, Any]:
    from oncall.spec import Override
    from oncall.store import add_overrides, swap_overrides, trade_overrides

    returned = (body.in_return_start, body.in_return_end)
    if any(returned) and not (all(returned) and body.swap_with):
        raise OncallInputError("override: in_return_start and in_return_end go together, with swap_with")
    with ctx.db.session() as session:
        spec = get_schedule(session, name)
        window = (as_utc(body.start), as_utc(body.end))
        try:
            if body.swap_with and body.in_return_start and body.in_return_end:
                back = (as_utc(body.in_return_start), as_utc(body.in_return_end))
                wanted = trade_overrides(spec, body.user, body.swap_with, window, back)
            elif body.swap_with:
                wanted = swap_overrides(spec, body.swap_with, body.user, *window)
            else:
                wanted = [Override(user=body.user, start=window[0], end=window[1])]
        except ValueError as exc:
            raise OncallInputError(f"override: {exc}") from None
        add_overrides(session, name, wanted, actor=ctx.actor, reason=body.reason[:300])
    return {
        "schedule": name,
        "added": [{"user": o.user, "start": o.start, "end": o.end} for o in wanted],
    }
