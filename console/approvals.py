"""The approvals inbox: remediation steps waiting for a decision, each with its dry run.

The dry run is the executor's (api.actions.service.execute_action with dry_run=True): it reads the
target and lists the exact calls the step would make, writing nothing. Decisions go through
remediation.approve/reject, which enforce four eyes server-side (never on one's own request).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path
from fastapi.responses import Response
from sqlmodel import col, select

from api.actions import service as actions_service
from console.web import ConsolePage, back_to, render, signed_in
from core.errors import TenantguardError
from core.models import ActionStatus, Incident, RemediationAction
from core.pagination import MAX_ID
from core.permissions import Permission

router = APIRouter(prefix="/console", include_in_schema=False)
ActionId = Annotated[int, Path(ge=1, le=MAX_ID)]
INBOX_LIMIT = 200


def _waiting(page: ConsolePage) -> list[tuple[RemediationAction, Incident | None]]:
    with page.ctx.db.session(readonly=True) as session:
        rows = session.exec(
            select(RemediationAction, Incident)
            .join(Incident, col(Incident.id) == col(RemediationAction.incident_id), isouter=True)
            .where(RemediationAction.status == ActionStatus.PROPOSED)
            .order_by(col(RemediationAction.incident_id).desc(), col(RemediationAction.position))
            .limit(INBOX_LIMIT)
        ).all()
        return [(action, incident) for action, incident in rows]


@router.get("/approvals")
def inbox(page: Annotated[ConsolePage, Depends(signed_in(Permission.ACTIONS_READ))]) -> Response:
    steps = [(actions_service.get_step(page.ctx, a.id or 0), a.requested_by, i) for a, i in _waiting(page)]
    return render(page, page.request, "approvals.html.j2", steps=steps)


@router.get("/approvals/{action_id}")
def step_page(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.ACTIONS_READ))], action_id: ActionId
) -> Response:
    step = actions_service.get_step(page.ctx, action_id)
    with page.ctx.db.session(readonly=True) as session:
        row = session.get(RemediationAction, action_id)
        requested_by = row.requested_by if row else ""
    preview, preview_error = None, None
    if page.can(Permission.ACTIONS_EXECUTE) and step.status in (ActionStatus.PROPOSED, ActionStatus.APPROVED):
        try:
            preview = actions_service.execute_action(page.ctx, action_id, dry_run=True)
        except TenantguardError as exc:
            preview_error = str(exc)
    return render(
        page,
        page.request,
        "step.html.j2",
        step=step,
        requested_by=requested_by,
        preview=preview,
        preview_error=preview_error,
    )


def _decide(
    page: ConsolePage, action_id: int, *, approve: bool, comment: str, fingerprint: str | None
) -> Response:
    """The decision is bound to the version of the step the page showed (its fingerprint)."""
    target = f"/console/approvals/{action_id}"
    try:
        outcome = actions_service.decide(
            page.ctx, action_id, approve=approve, comment=comment, seen=fingerprint or None
        )
    except TenantguardError as exc:
        return back_to(target, error=str(exc))
    return back_to(
        target,
        notice=f"{'approved' if approve else 'rejected'}: step is {outcome.status} "
        f"({outcome.approvals}/{outcome.approvals_required} approvals)",
    )


@router.post("/approvals/{action_id}/approve")
def approve(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.ACTIONS_DECIDE))],
    action_id: ActionId,
    comment: Annotated[str, Form(max_length=2000)] = "",
    fingerprint: Annotated[str, Form(max_length=64, pattern=r"^[0-9a-f]*$")] = "",
) -> Response:
    return _decide(page, action_id, approve=True, comment=comment, fingerprint=fingerprint)


@router.post("/approvals/{action_id}/reject")
def reject(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.ACTIONS_DECIDE))],
    action_id: ActionId,
    comment: Annotated[str, Form(max_length=2000)] = "",
    fingerprint: Annotated[str, Form(max_length=64, pattern=r"^[0-9a-f]*$")] = "",
) -> Response:
    return _decide(page, action_id, approve=False, comment=comment, fingerprint=fingerprint)


@router.post("/approvals/{action_id}/execute")
def execute(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.ACTIONS_EXECUTE))], action_id: ActionId
) -> Response:
    target = f"/console/approvals/{action_id}"
    try:
        report = actions_service.execute_action(page.ctx, action_id, dry_run=False)
    except TenantguardError as exc:
        return back_to(target, error=str(exc))
    return back_to(target, notice="; ".join(f"{r.outcome}: {r.message}" for r in report.results))
