"""HTTP routes for rules and suppressions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response

from api.context import RequestContext, require
from api.rules import service
from api.rules.schemas import (
    RuleDocumentIn,
    RuleOut,
    RuleTestIn,
    RuleTestOut,
    SuppressionIn,
    SuppressionOut,
    ValidationOut,
)
from core.models import Provider
from core.pagination import MAX_ID
from core.permissions import Permission

router = APIRouter(tags=["rules"])
SuppressionId = Annotated[int, Path(ge=1, le=MAX_ID, description="Suppression id.")]


@router.get("/rules", response_model=list[RuleOut], summary="The loaded detection rules and correlations")
def list_rules(
    ctx: Annotated[RequestContext, require(Permission.RULES_READ)], provider: Provider | None = None
) -> list[RuleOut]:
    return service.list_rules(ctx, provider.value if provider else None)


@router.post("/rules/validate", response_model=ValidationOut, summary="Validate a rule sent in the body")
def validate_rule(
    ctx: Annotated[RequestContext, require(Permission.RULES_TEST)], body: Annotated[RuleDocumentIn, Body()]
) -> ValidationOut:
    """Parses and compiles like the pipeline would; problems name the line and the reason. Nothing is stored."""
    return service.validate(body)


@router.post("/rules/test", response_model=RuleTestOut, summary="Run a rule's tests (and extra events)")
def test_rule(
    ctx: Annotated[RequestContext, require(Permission.RULES_TEST)], body: Annotated[RuleTestIn, Body()]
) -> RuleTestOut:
    """Runs the tests written in the rule, and reports whether each rule fires on `events`. Nothing is stored."""
    return service.test(body)


@router.get("/suppressions", response_model=list[SuppressionOut], summary="List suppressions")
def list_suppressions(
    ctx: Annotated[RequestContext, require(Permission.RULES_READ)],
    include_expired: Annotated[bool, Query(description="Also those past their expiry.")] = False,
) -> list[SuppressionOut]:
    with ctx.db.session(readonly=True) as session:
        return service.list_suppressions(session, include_expired)


@router.get("/suppressions/{suppression_id}", response_model=SuppressionOut, summary="One suppression")
def get_suppression(
    ctx: Annotated[RequestContext, require(Permission.RULES_READ)], suppression_id: SuppressionId
) -> SuppressionOut:
    with ctx.db.session(readonly=True) as session:
        return SuppressionOut.model_validate(service.get_suppression(session, suppression_id))


@router.post("/suppressions", response_model=SuppressionOut, status_code=201, summary="Silence a rule")
def create_suppression(
    ctx: Annotated[RequestContext, require(Permission.SUPPRESSIONS_WRITE)],
    body: Annotated[SuppressionIn, Body()],
) -> SuppressionOut:
    """For events whose fields match `match`, until `expires_at`; the reason is kept for the audit."""
    return service.create_suppression(ctx, body)


@router.delete(
    "/suppressions/{suppression_id}", status_code=204, response_class=Response, summary="Remove a suppression"
)
def delete_suppression(
    ctx: Annotated[RequestContext, require(Permission.SUPPRESSIONS_WRITE)], suppression_id: SuppressionId
) -> Response:
    service.delete_suppression(ctx, suppression_id)
    return Response(status_code=204)
