"""Remediation calls: the remediation stage functions, which audit each step with the request's actor."""

from __future__ import annotations

from typing import Any

from fastapi.encoders import jsonable_encoder

import remediation
from api.actions.schemas import DecisionOut, ExecutionOut, PlanOut, PlanStepOut
from api.context import RequestContext
from api.errors import NotFound
from core.audit import Actor, Channel
from core.models import RemediationAction
from remediation.principals import SsoActor


def actor_of(ctx: RequestContext) -> Actor:
    """Who acts on remediation: a token principal by name; a single sign-on user as ``sso:<name>``
    with the roles their identity provider granted (never the token principal of the same name —
    four eyes compares the persons behind them, remediation.principals)."""
    if ctx.caller.via.endswith("oidc"):
        return SsoActor(
            f"sso:{ctx.caller.name}", Channel.API, ctx.request_id, roles=frozenset(ctx.caller.roles)
        )
    return ctx.actor


def _plan_out(plan: remediation.Plan) -> PlanOut:
    return PlanOut.model_validate(jsonable_encoder(plan.as_dict()))


def _incident_of(ctx: RequestContext, action_id: int) -> int:
    with ctx.db.session(readonly=True) as session:
        row = session.get(RemediationAction, action_id)
        if row is None or row.incident_id is None:
            raise NotFound(f"remediation action {action_id} does not exist")
        return row.incident_id


def get_plan(ctx: RequestContext, incident_id: int) -> PlanOut:
    return _plan_out(remediation.get_plan(ctx.db, incident_id))


def get_step(ctx: RequestContext, action_id: int) -> PlanStepOut:
    plan = remediation.get_plan(ctx.db, _incident_of(ctx, action_id))
    step = next(s for s in plan.steps if s.id == action_id)
    return PlanStepOut.model_validate(jsonable_encoder(step.as_dict()))


def propose(ctx: RequestContext, incident_id: int) -> PlanOut:
    return _plan_out(remediation.plan_for_incident(ctx.db, incident_id, actor_of(ctx)))


def decide(
    ctx: RequestContext, action_id: int, *, approve: bool, comment: str, seen: str | None = None
) -> DecisionOut:
    decide_as = remediation.approve if approve else remediation.reject
    outcome = decide_as(ctx.db, action_id, actor_of(ctx), comment=comment, seen=seen)
    return DecisionOut(
        action_id=outcome.action_id,
        status=outcome.status,
        approvals=outcome.approvals,
        approvals_required=outcome.approvals_required,
        approved_by=list(outcome.approved_by),
    )


def _report(report: Any) -> ExecutionOut:
    return ExecutionOut.model_validate(jsonable_encoder(report.as_dict()))


def _contain_when_done(ctx: RequestContext, dry_run: bool) -> None:
    """An incident whose containment steps have all run and verified is contained on its own."""
    if not dry_run:
        from timeline.containment import contain_when_done

        contain_when_done(ctx.db)


def execute_incident(ctx: RequestContext, incident_id: int, *, dry_run: bool) -> ExecutionOut:
    report = remediation.execute(ctx.db, ctx.settings, incident_id, dry_run=dry_run, actor=actor_of(ctx))
    _contain_when_done(ctx, dry_run)
    return _report(report)


def execute_action(ctx: RequestContext, action_id: int, *, dry_run: bool) -> ExecutionOut:
    report = remediation.execute(
        ctx.db, ctx.settings, action_ids=[action_id], dry_run=dry_run, actor=actor_of(ctx)
    )
    _contain_when_done(ctx, dry_run)
    return _report(report)


def rollback_action(ctx: RequestContext, action_id: int, *, dry_run: bool) -> ExecutionOut:
    return _report(
        remediation.rollback(ctx.db, ctx.settings, action_id, actor=actor_of(ctx), dry_run=dry_run)
    )


def rollback_incident(ctx: RequestContext, incident_id: int, *, dry_run: bool) -> ExecutionOut:
    return _report(
        remediation.rollback(
            ctx.db, ctx.settings, incident_id=incident_id, actor=actor_of(ctx), dry_run=dry_run
        )
    )
