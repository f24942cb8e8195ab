"""HTTP routes for remediation: plans per incident, and decisions/execution per action."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

import remediation
from api.actions import service
from api.actions.schemas import (
    DecisionIn,
    DecisionOut,
    ExecutionOut,
    PlanOut,
    PlanStepOut,
    RunIn,
    SlackAnswer,
)
from api.context import RequestContext, require, state_of
from api.errors import RateLimited
from api.oncall.slack import handle_oncall_click
from api.ratelimit import retry_after_seconds
from api.response.router import handle_declare_shortcut
from api.slack_requests import unsigned_refusal
from core.pagination import MAX_ID
from core.permissions import Permission
from oncall.slack import is_oncall_click
from response.commands import is_declare_shortcut

router = APIRouter(tags=["remediation"])
IncidentId = Annotated[int, Path(ge=1, le=MAX_ID, description="Incident id.")]
ActionId = Annotated[int, Path(ge=1, le=MAX_ID, description="Remediation action id.")]


@router.get(
    "/incidents/{incident_id}/plan", response_model=PlanOut, summary="The incident's remediation plan"
)
def get_plan(
    ctx: Annotated[RequestContext, require(Permission.ACTIONS_READ)], incident_id: IncidentId
) -> PlanOut:
    return service.get_plan(ctx, incident_id)


@router.post(
    "/incidents/{incident_id}/plan", response_model=PlanOut, summary="Propose (or re-plan) remediation"
)
def propose_plan(
    ctx: Annotated[RequestContext, require(Permission.ACTIONS_REQUEST)], incident_id: IncidentId
) -> PlanOut:
    """The caller becomes the requester: someone else must approve each step (four eyes)."""
    return service.propose(ctx, incident_id)


@router.post(
    "/incidents/{incident_id}/execute", response_model=ExecutionOut, summary="Run the approved steps"
)
def execute_incident(
    ctx: Annotated[RequestContext, require(Permission.ACTIONS_EXECUTE)],
    incident_id: IncidentId,
    body: Annotated[RunIn, Body()],
) -> ExecutionOut:
    """Only approved steps run, in plan order, each verified by reading the state back."""
    return service.execute_incident(ctx, incident_id, dry_run=body.dry_run)


@router.post(
    "/incidents/{incident_id}/rollback", response_model=ExecutionOut, summary="Undo the incident's steps"
)
def rollback_incident(
    ctx: Annotated[RequestContext, require(Permission.ACTIONS_ROLLBACK)],
    incident_id: IncidentId,
    body: Annotated[RunIn, Body()],
) -> ExecutionOut:
    return service.rollback_incident(ctx, incident_id, dry_run=body.dry_run)


@router.get("/actions/{action_id}", response_model=PlanStepOut, summary="One remediation step")
def get_action(
    ctx: Annotated[RequestContext, require(Permission.ACTIONS_READ)], action_id: ActionId
) -> PlanStepOut:
    return service.get_step(ctx, action_id)


@router.post("/actions/{action_id}/approve", response_model=DecisionOut, summary="Approve a step")
def approve(
    ctx: Annotated[RequestContext, require(Permission.ACTIONS_DECIDE)],
    action_id: ActionId,
    body: Annotated[DecisionIn, Body()],
) -> DecisionOut:
    """Never by the requester; some steps need two approvers (policy). 409 with a `code` when refused."""
    return service.decide(ctx, action_id, approve=True, comment=body.comment, seen=body.fingerprint)


@router.post("/actions/{action_id}/reject", response_model=DecisionOut, summary="Reject a step")
def reject(
    ctx: Annotated[RequestContext, require(Permission.ACTIONS_DECIDE)],
    action_id: ActionId,
    body: Annotated[DecisionIn, Body()],
) -> DecisionOut:
    return service.decide(ctx, action_id, approve=False, comment=body.comment, seen=body.fingerprint)


@router.post("/actions/{action_id}/execute", response_model=ExecutionOut, summary="Run one approved step")
def execute_action(
    ctx: Annotated[RequestContext, require(Permission.ACTIONS_EXECUTE)],
    action_id: ActionId,
    body: Annotated[RunIn, Body()],
) -> ExecutionOut:
    return service.execute_action(ctx, action_id, dry_run=body.dry_run)


@router.post("/actions/{action_id}/rollback", response_model=ExecutionOut, summary="Undo one step")
def rollback_action(
    ctx: Annotated[RequestContext, require(Permission.ACTIONS_ROLLBACK)],
    action_id: ActionId,
    body: Annotated[RunIn, Body()],
) -> ExecutionOut:
    return service.rollback_action(ctx, action_id, dry_run=body.dry_run)


@router.post(
    "/integrations/slack/interactions",
    response_model=SlackAnswer,
    summary="Slack buttons: approvals and on-call pages (signed by Slack, no bearer token)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}},
        }
    },
    responses={
        401: {"model": SlackAnswer},
        403: {"model": SlackAnswer},
        404: {"model": SlackAnswer},
        409: {"model": SlackAnswer},
    },
)
async def slack_interactions(request: Request) -> JSONResponse:
    """Authenticated by Slack's request signature; the Slack user must map to a principal (an approver
    for remediation buttons, a role with oncall:ack for on-call Acknowledge / Escalate buttons)."""
    state = state_of(request)
    client = request.client.host if request.client else "unknown"
    # Public (Slack signs it): bound how fast one address can try; unsigned ones are charged again below.
    wait = state.limiter.acquire(f"slack:{client}")
    if wait is not None:
        raise RateLimited(f"too many Slack interactions from {client}; slow down", retry_after_seconds(wait))
    body = await request.body()
    headers = {key.lower(): value for key, value in request.headers.items()}
    refusal = await run_in_threadpool(unsigned_refusal, state, client, body, headers)
    if refusal is not None:
        return JSONResponse(
            {"response_type": "ephemeral", "replace_original": False, "text": f"Refused: {refusal}"},
            status_code=401,
        )
    if is_oncall_click(body):  # one Slack app, one interactivity URL: on-call buttons go to on-call
        status, answer = await run_in_threadpool(handle_oncall_click, state.db, body, headers)
        return JSONResponse(answer, status_code=status)
    if is_declare_shortcut(body):  # the "declare an incident" message shortcut goes to response
        status, answer = await run_in_threadpool(handle_declare_shortcut, state, body, headers)
        return JSONResponse(answer, status_code=status)
    result = await run_in_threadpool(remediation.handle_interaction, state.db, body, headers)
    return JSONResponse(result.as_response(), status_code=result.status_code)
