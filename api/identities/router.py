"""HTTP routes for identities."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api.context import RequestContext, require
from api.identities import service
from api.identities.schemas import AccountOut, GrantOut, PersonDetail, PersonSort, PersonSummary
from api.pagination import Page, PageRequest, page_request
from core.models import Provider
from core.pagination import MAX_ID
from core.permissions import Permission

router = APIRouter(prefix="/identities", tags=["identities"])
PersonId = Annotated[int, Path(ge=1, le=MAX_ID, description="Person id.")]
RiskLevel = Annotated[str, Query(pattern="^(low|medium|high|critical)$")]


@router.get("/people", response_model=Page[PersonSummary], summary="People, riskiest first")
def list_people(
    ctx: Annotated[RequestContext, require(Permission.IDENTITIES_READ)],
    page: Annotated[PageRequest, Depends(page_request)],
    risk_level: Annotated[list[RiskLevel] | None, Query(max_length=4)] = None,
    sort: PersonSort = PersonSort.RISKIEST,
) -> Page[PersonSummary]:
    with ctx.db.session(readonly=True) as session:
        items, next_cursor = service.list_people(
            session, risk_level=risk_level, sort=sort, limit=page.limit, cursor=page.cursor
        )
    return Page[PersonSummary](items=items, next_cursor=next_cursor)


@router.get("/people/{person_id}", response_model=PersonDetail, summary="A person: accounts and risk factors")
def get_person(
    ctx: Annotated[RequestContext, require(Permission.IDENTITIES_READ)], person_id: PersonId
) -> PersonDetail:
    """The risk score comes with its factors: what each one is, its family, its weight, and why."""
    with ctx.db.session(readonly=True) as session:
        return service.person_detail(session, person_id)


@router.get(
    "/people/{person_id}/access", response_model=list[GrantOut], summary="What this person can access"
)
def person_access(
    ctx: Annotated[RequestContext, require(Permission.IDENTITIES_READ)], person_id: PersonId
) -> list[GrantOut]:
    """Files shared with or owned by the person, and apps acting on their behalf (or for everyone)."""
    return service.access_of_person(ctx, person_id)


@router.get("/accounts", response_model=Page[AccountOut], summary="Accounts across providers")
def list_accounts(
    ctx: Annotated[RequestContext, require(Permission.IDENTITIES_READ)],
    page: Annotated[PageRequest, Depends(page_request)],
    provider: Provider | None = None,
    admin: bool | None = None,
    guest: bool | None = None,
    mfa: Annotated[bool | None, Query(description="MFA registered.")] = None,
) -> Page[AccountOut]:
    with ctx.db.session(readonly=True) as session:
        items, next_cursor = service.list_accounts(
            session,
            provider=provider.value if provider else None,
            admin=admin,
            guest=guest,
            mfa=mfa,
            limit=page.limit,
            cursor=page.cursor,
        )
    return Page[AccountOut](items=items, next_cursor=next_cursor)


@router.get("/access", response_model=list[GrantOut], summary="Who can access a file or app")
def resource_access(
    ctx: Annotated[RequestContext, require(Permission.IDENTITIES_READ)],
    resource: Annotated[str, Query(min_length=1, max_length=500, description="Resource id or name.")],
) -> list[GrantOut]:
    return service.access_to_resource(ctx, resource)
