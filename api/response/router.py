"""HTTP routes for response collaboration.

Public on purpose: ``POST /response/alerts`` (Standard Webhooks signature, no bearer token),
``POST /response/pagerduty/v2/enqueue`` and ``POST /response/alertmanager`` (the routing key), and the
status page (``/status``, ``/status/api/v2/summary.json``, ``/status/api/v2/incidents.json``),
which shows only what was published for the public. The rest names a permission.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field

from api.context import RequestContext, require, state_of
from core.models.response import Drill, StakeholderUpdate
from core.pagination import MAX_ID
from core.permissions import Permission
from response.config import load_config
from response.errors import AlertRefused

router = APIRouter(tags=["response"])
IncidentId = Annotated[int, Path(ge=1, le=MAX_ID, description="Incident id.")]
UpdateId = Annotated[int, Path(ge=1, le=MAX_ID, description="Stakeholder update id.")]
MAX_ALERT_BYTES = 256 * 1024
# The signed public endpoints refuse a bad signature (401) and throttle one address (429).
_PROBLEM = {"content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
SIGNED_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Bad, missing or stale signature", **_PROBLEM},
    429: {"description": "Too many requests from this address", **_PROBLEM},
}


class UpdateIn(BaseModel):
    audience: Literal["responders", "executives", "customers"]
    text: str = Field(min_length=1, max_length=4000)
    state: Literal["investigating", "identified", "monitoring", "resolved"] = "investigating"
    components: list[str] = Field(default_factory=list, max_length=20)


class DrillIn(BaseModel):
    scenario: str = Field(min_length=1, max_length=100)


def _update_view(update: StakeholderUpdate) -> dict[str, Any]:
    return update.model_dump(mode="json")


def _throttle(request: Request) -> None:
    from api.errors import RateLimited
    from api.ratelimit import retry_after_seconds

    client = request.client.host if request.client else "unknown"
    wait = state_of(request).limiter.acquire(f"alerts:{client}")
    if wait is not None:
        raise RateLimited(f"too many alerts from {client}; slow down", retry_after_seconds(wait))


def _take_alerts(request: Request, check: Any, message_id: str) -> list[dict[str, Any]]:
    """Authenticate (`check` returns the payload or raises AlertRefused, audited), then ingest every
    alert in the payload in one transaction; the results, one per alert."""
    from response.intake import ingest, intake_actor, parse_alerts, record_refusal

    state = state_of(request)
    config = load_config(state.settings)
    try:
        alerts = parse_alerts(check(config))
    except AlertRefused as exc:
        with state.db.session() as session:
            record_refusal(session, str(exc), message_id=message_id)
        raise
    with state.db.session() as session:
        results = [
            ingest(
                session,
                alert,
                actor=intake_actor(alert.source, message_id),
                dedup_hours=config.intake.dedup_hours,
            )
            for alert in alerts
        ]
    return [
        {
            "action": r.action,
            "dedup_key": r.dedup_key,
            "finding_id": r.finding_id,
            "created": r.created,
            "key": alert.dedup_key,
        }
        for r, alert in zip(results, alerts, strict=True)
    ]


@router.post(
    "/response/alerts",
    status_code=202,
    responses=SIGNED_REFUSALS,
    summary="Inbound alert (generic, PagerDuty Events v2 or Alertmanager), signed with Standard Webhooks; no bearer token",
)
async def receive_alert(request: Request) -> dict[str, Any]:
    from fastapi.concurrency import run_in_threadpool

    from providers.credentials import resolve_reference
    from response.intake import verify

    _throttle(request)
    body = (await request.body())[:MAX_ALERT_BYTES]
    headers = dict(request.headers)
    message_id = str(headers.get("webhook-id", ""))[:100]

    def check(config: Any) -> dict[str, Any]:
        if not config.intake.secret_ref:
            raise AlertRefused("alert intake has no secret configured (intake.secret_ref): refused")
        return verify(body, headers, resolve_reference("intake secret", config.intake.secret_ref))

    def apply() -> dict[str, Any]:
        views = [
            {k: v for k, v in view.items() if k != "key"} for view in _take_alerts(request, check, message_id)
        ]
        # One alert: its fields at the top as well (the generic and PagerDuty shapes).
        return {"status": "accepted", **(views[0] if len(views) == 1 else {}), "alerts": views}

    return await run_in_threadpool(apply)


def _json_object(body: bytes) -> dict[str, Any]:
    import orjson

    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise AlertRefused("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise AlertRefused("the body is not a JSON object")
    return payload


def _routing_key(config: Any) -> str:
    from providers.credentials import resolve_reference

    ref = config.intake.routing_key_ref
    return resolve_reference("intake routing key", ref) if ref else ""


@router.post(
    "/response/pagerduty/v2/enqueue",
    status_code=202,
    responses={
        400: {"description": "Invalid event (PagerDuty's shape: status, message, errors)"},
        429: SIGNED_REFUSALS[429],
    },
    summary="PagerDuty Events API v2 (trigger, acknowledge, resolve); the routing key is the credential",
)
async def pagerduty_enqueue(request: Request) -> JSONResponse:
    """What any tool with a PagerDuty integration can send: set its Events API URL to this one and
    its routing (integration) key to ``intake.routing_key_ref``. Answers as PagerDuty does."""
    from fastapi.concurrency import run_in_threadpool

    from response.intake import check_routing_key

    _throttle(request)
    body = (await request.body())[:MAX_ALERT_BYTES]

    def check(config: Any) -> dict[str, Any]:
        payload = _json_object(body)
        if "event_action" not in payload:
            raise AlertRefused("event_action is required (trigger, acknowledge or resolve)")
        check_routing_key(payload.get("routing_key"), _routing_key(config))
        return payload

    def apply() -> JSONResponse:
        try:
            [view] = _take_alerts(request, check, "pagerduty")
        except AlertRefused as exc:
            return JSONResponse(
                {"status": "invalid event", "message": "Event object is invalid", "errors": [str(exc)]},
                status_code=400,
            )
        return JSONResponse(
            {"status": "success", "message": "Event processed", "dedup_key": view["key"]}, status_code=202
        )

    return await run_in_threadpool(apply)


@router.post(
    "/response/alertmanager",
    status_code=202,
    responses=SIGNED_REFUSALS,
    summary="Prometheus Alertmanager webhook (one finding per alert); Authorization: Bearer <routing key>",
)
async def alertmanager_webhook(request: Request) -> dict[str, Any]:
    """Alertmanager's ``webhook_configs`` with ``http_config.authorization.credentials`` set to the
    routing key (``intake.routing_key_ref``)."""
    from fastapi.concurrency import run_in_threadpool

    from response.intake import check_routing_key

    _throttle(request)
    body = (await request.body())[:MAX_ALERT_BYTES]
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")

    def check(config: Any) -> dict[str, Any]:
        check_routing_key(token.strip() if scheme.lower() == "bearer" else None, _routing_key(config))
        payload = _json_object(body)
        if not isinstance(payload.get("alerts"), list) or "groupKey" not in payload:
            raise AlertRefused("not an Alertmanager webhook (alerts[] and groupKey are required)")
        return payload

    def apply() -> dict[str, Any]:
        views = _take_alerts(request, check, "alertmanager")
        return {"status": "accepted", "alerts": [{k: v for k, v in x.items() if k != "key"} for x in views]}

    return await run_in_threadpool(apply)


@router.get("/status", response_class=HTMLResponse, summary="The public status page (HTML)")
def status_page(request: Request) -> HTMLResponse:
    from response.statuspage import render_html

    state = state_of(request)
    with state.db.session(readonly=True) as session:
        return HTMLResponse(render_html(session, load_config(state.settings)))


@router.get("/status/api/v2/summary.json", summary="Status page summary (Atlassian Statuspage shape)")
def status_summary(request: Request) -> dict[str, Any]:
    from response.statuspage import summary

    state = state_of(request)
    with state.db.session(readonly=True) as session:
        return summary(session, load_config(state.settings))


@router.get("/status/api/v2/incidents.json", summary="Public incidents with their updates (Statuspage shape)")
def status_incidents(request: Request) -> dict[str, Any]:
    from response.statuspage import incidents_document

    state = state_of(request)
    with state.db.session(readonly=True) as session:
        return incidents_document(session, load_config(state.settings))


@router.get(
    "/status/history.atom",
    response_class=PlainTextResponse,
    responses={200: {"content": {"application/atom+xml": {}}}},
    summary="The status page's published updates as an Atom feed",
)
def status_feed(request: Request) -> PlainTextResponse:
    from response.statuspage import atom_feed

    state = state_of(request)
    config = load_config(state.settings)
    with state.db.session(readonly=True) as session:
        text = atom_feed(session, config, config.public_url)
    return PlainTextResponse(text, media_type="application/atom+xml")


@router.get(
    "/response/incidents/{incident_id}",
    summary="An incident's response: channel, ticket, updates, postmortem",
)
def incident_response(
    ctx: Annotated[RequestContext, require(Permission.INCIDENTS_READ)], incident_id: IncidentId
) -> dict[str, Any]:
    from core.errors import IncidentNotFoundError
    from core.models.incident import Incident
    from response.journal import state_for
    from response.updates import updates_of

    with ctx.db.session() as session:
        if session.get(Incident, incident_id) is None:
            raise IncidentNotFoundError(f"incident {incident_id} does not exist")
        row = state_for(session, incident_id)
        view = row.model_dump(mode="json", exclude={"own_ts", "postmortem_markdown"})
        view["has_postmortem"] = bool(row.postmortem_markdown)
        view["updates"] = [_update_view(u) for u in updates_of(session, incident_id)]
        return view


@router.post(
    "/response/incidents/{incident_id}/updates",
    status_code=201,
    summary="Write a stakeholder update (customers' wording waits for approval; audited)",
)
def write_stakeholder_update(
    ctx: Annotated[RequestContext, require(Permission.INCIDENTS_WRITE)],
    incident_id: IncidentId,
    body: Annotated[UpdateIn, Body()],
) -> dict[str, Any]:
    from response.updates import write_update

    config = load_config(ctx.settings)
    with ctx.db.session() as session:
        update = write_update(
            session,
            incident_id,
            audience=body.audience,
            text=body.text,
            actor=ctx.actor,
            config=config,
            state=body.state,
            components=body.components,
        )
        return _update_view(update)


@router.post(
    "/response/updates/{update_id}/publish",
    summary="Approve a public update's wording: it shows on the status page (four eyes; audited)",
)
def publish_stakeholder_update(
    ctx: Annotated[RequestContext, require(Permission.STATUS_PUBLISH)], update_id: UpdateId
) -> dict[str, Any]:
    from response.updates import publish_update

    with ctx.db.session() as session:
        return _update_view(publish_update(session, update_id, actor=ctx.actor))


@router.get(
    "/response/incidents/{incident_id}/postmortem",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/markdown": {}, "text/html": {}, "application/pdf": {}}}},
    summary="The postmortem drafted from the timeline (Markdown, HTML or PDF)",
)
def postmortem(
    ctx: Annotated[RequestContext, require(Permission.INCIDENTS_READ)],
    incident_id: IncidentId,
    format: Annotated[Literal["markdown", "html", "pdf"], Query()] = "markdown",
) -> Response:
    from response.postmortem import render, render_pdf

    config = load_config(ctx.settings)
    with ctx.db.session(readonly=True) as session:
        if format == "pdf":
            return Response(
                render_pdf(session, incident_id, config),
                media_type="application/pdf",
                headers={"content-disposition": f'attachment; filename="postmortem-{incident_id}.pdf"'},
            )
        text = render(session, incident_id, config, format)
    return PlainTextResponse(text, media_type="text/html" if format == "html" else "text/markdown")


class ReviewIn(BaseModel):
    comment: str = Field(default="", max_length=1000)


@router.post(
    "/response/incidents/{incident_id}/postmortem/review",
    summary="Review the postmortem; signed off once every required reviewer reviewed (audited)",
)
def review_postmortem(
    ctx: Annotated[RequestContext, require(Permission.INCIDENTS_WRITE)],
    incident_id: IncidentId,
    body: Annotated[ReviewIn, Body()],
) -> dict[str, Any]:
    from response.postmortem import review

    with ctx.db.session() as session:
        row = review(session, incident_id, load_config(ctx.settings), actor=ctx.actor, comment=body.comment)
        return {
            "incident_id": incident_id,
            "reviews": row.postmortem_reviews,
            "signed_off_at": row.postmortem_signed_off_at,
        }


@router.post(
    "/response/incidents/{incident_id}/postmortem",
    summary="(Re)draft the postmortem from the timeline now and keep it (audited)",
)
def redraft_postmortem(
    ctx: Annotated[RequestContext, require(Permission.INCIDENTS_WRITE)], incident_id: IncidentId
) -> dict[str, Any]:
    from core.errors import IncidentNotFoundError
    from core.models.incident import Incident
    from response.postmortem import draft

    with ctx.db.session() as session:
        if session.get(Incident, incident_id) is None:
            raise IncidentNotFoundError(f"incident {incident_id} does not exist")
        row = draft(session, incident_id, load_config(ctx.settings), actor=ctx.actor)
        return {
            "incident_id": incident_id,
            "postmortem_at": row.postmortem_at,
            "markdown": row.postmortem_markdown,
        }


@router.post(
    "/response/drills",
    status_code=201,
    summary="Start a drill: a simulated incident marked a drill everywhere",
)
def start_drill_endpoint(
    ctx: Annotated[RequestContext, require(Permission.INCIDENTS_WRITE)], body: Annotated[DrillIn, Body()]
) -> dict[str, Any]:
    from response.drills import start_drill

    with ctx.db.session() as session:
        return start_drill(session, body.scenario, actor=ctx.actor).model_dump(mode="json")


@router.get("/response/drills", summary="Drills, newest first, with their reports")
def list_drills(ctx: Annotated[RequestContext, require(Permission.INCIDENTS_READ)]) -> list[dict[str, Any]]:
    from sqlmodel import col, select

    with ctx.db.session(readonly=True) as session:
        rows = session.exec(select(Drill).order_by(col(Drill.id).desc()).limit(100)).all()
        return [row.model_dump(mode="json") for row in rows]


@router.post(
    "/integrations/slack/commands",
    responses=SIGNED_REFUSALS,
    summary="Slack slash command /tenantguard status|note|assign|severity|resolve|declare (signed by Slack; no bearer token)",
)
async def slack_command(request: Request) -> dict[str, Any]:
    from fastapi.concurrency import run_in_threadpool

    from api.errors import RateLimited
    from api.ratelimit import retry_after_seconds
    from core.errors import TenantguardError
    from providers.credentials import resolve_reference
    from response.commands import run_command, verify_command

    state = state_of(request)
    client = request.client.host if request.client else "unknown"
    wait = state.limiter.acquire(f"slack-commands:{client}")
    if wait is not None:
        raise RateLimited(f"too many Slack commands from {client}; slow down", retry_after_seconds(wait))
    body = (await request.body())[:65536]
    headers = dict(request.headers)
    config = load_config(state.settings)

    def apply() -> dict[str, Any]:
        if not config.channels.signing_secret_ref:
            raise AlertRefused("no Slack signing secret configured (channels.signing_secret_ref): refused")
        command = verify_command(
            body, headers, resolve_reference("slack signing secret", config.channels.signing_secret_ref)
        )
        try:
            text = run_command(state.db, command)
        except AlertRefused:
            raise
        except TenantguardError as exc:  # the caller's mistake: said to them, in Slack
            text = str(exc)
        return {"response_type": "ephemeral", "text": text}

    return await run_in_threadpool(apply)


def handle_declare_shortcut(state: Any, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """The "declare an incident" message shortcut (routed here from the one Slack interactivity URL,
    whose front door already checked the signature against every configured secret)."""
    from core.errors import TenantguardError
    from providers.credentials import resolve_reference
    from response.commands import declare_from_message

    config = load_config(state.settings)
    try:
        if not config.channels.signing_secret_ref:
            raise AlertRefused("no Slack signing secret configured (channels.signing_secret_ref): refused")
        secret = resolve_reference("slack signing secret", config.channels.signing_secret_ref)
        text = declare_from_message(state.db, body, headers, secret)
    except AlertRefused as exc:
        return 401, {"response_type": "ephemeral", "replace_original": False, "text": f"Refused: {exc}"}
    except TenantguardError as exc:  # the caller's mistake: said to them, in Slack
        return 200, {"response_type": "ephemeral", "replace_original": False, "text": str(exc)}
    return 200, {"response_type": "ephemeral", "replace_original": False, "text": text}
