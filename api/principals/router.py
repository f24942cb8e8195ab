"""HTTP routes for principals (admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path

from api.context import RequestContext, require
from api.principals import service
from api.principals.schemas import NAME_PATTERN, PrincipalCreate, PrincipalCreated, PrincipalOut
from core.permissions import Permission

router = APIRouter(prefix="/principals", tags=["principals"])
PrincipalName = Annotated[str, Path(pattern=NAME_PATTERN, description="Principal name.")]


@router.get("", response_model=list[PrincipalOut], summary="List principals (never their tokens)")
def list_principals(
    ctx: Annotated[RequestContext, require(Permission.PRINCIPALS_ADMIN)],
) -> list[PrincipalOut]:
    with ctx.db.session(readonly=True) as session:
        return [PrincipalOut.model_validate(p) for p in service.list_principals(session)]


@router.post("", response_model=PrincipalCreated, status_code=201, summary="Create a principal and its token")
def create_principal(
    ctx: Annotated[RequestContext, require(Permission.PRINCIPALS_ADMIN)],
    body: Annotated[PrincipalCreate, Body()],
) -> PrincipalCreated:
    """The token is in this response only; it cannot be shown again (create a new principal instead)."""
    principal, token = service.create_principal(
        ctx.db,
        ctx.state.tokens.pepper,
        name=body.name,
        role=body.role,
        actor=ctx.actor,
        person=body.person,
    )
    return PrincipalCreated(**PrincipalOut.model_validate(principal).model_dump(), token=token)


@router.post("/{name}/disable", response_model=PrincipalOut, summary="Disable a principal")
def disable_principal(
    ctx: Annotated[RequestContext, require(Permission.PRINCIPALS_ADMIN)], name: PrincipalName
) -> PrincipalOut:
    principal = service.disable_principal(ctx.db, name=name, actor=ctx.actor)
    if principal.id is not None:
        ctx.state.tokens.forget(principal.id)
    return PrincipalOut.model_validate(principal)
