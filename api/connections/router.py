"""HTTP routes for connections."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path

from api.connections import service
from api.connections.schemas import ConnectionCheckOut, ConnectionCreate, ConnectionOut, ConnectionUpdate
from api.context import RequestContext, require
from core.pagination import MAX_ID
from core.permissions import Permission

router = APIRouter(prefix="/connections", tags=["connections"])
ConnectionId = Annotated[int, Path(ge=1, le=MAX_ID, description="Connection id.")]


@router.get("", response_model=list[ConnectionOut], summary="Connected tenants with health per stream")
def list_connections(
    ctx: Annotated[RequestContext, require(Permission.CONNECTIONS_READ)],
) -> list[ConnectionOut]:
    with ctx.db.session(readonly=True) as session:
        return service.list_connections(session)


@router.get("/{connection_id}", response_model=ConnectionOut, summary="One connection")
def get_connection(
    ctx: Annotated[RequestContext, require(Permission.CONNECTIONS_READ)], connection_id: ConnectionId
) -> ConnectionOut:
    with ctx.db.session(readonly=True) as session:
        return service.get_connection(session, connection_id)


@router.post("", response_model=ConnectionOut, status_code=201, summary="Connect a tenant")
def create_connection(
    ctx: Annotated[RequestContext, require(Permission.CONNECTIONS_WRITE)],
    body: Annotated[ConnectionCreate, Body()],
) -> ConnectionOut:
    """Secrets are never sent here: `secret_refs` say where the collector reads each credential."""
    return service.create_connection(ctx, body)


@router.patch("/{connection_id}", response_model=ConnectionOut, summary="Enable, disable or reconfigure")
def update_connection(
    ctx: Annotated[RequestContext, require(Permission.CONNECTIONS_WRITE)],
    connection_id: ConnectionId,
    body: Annotated[ConnectionUpdate, Body()],
) -> ConnectionOut:
    return service.update_connection(ctx, connection_id, body)


@router.post(
    "/{connection_id}/check", response_model=ConnectionCheckOut, summary="Probe credentials and permissions"
)
def check_connection(
    ctx: Annotated[RequestContext, require(Permission.CONNECTIONS_WRITE)], connection_id: ConnectionId
) -> ConnectionCheckOut:
    """Reads at most one page of every configured stream from the provider and says what fails and why."""
    return service.check(ctx, connection_id)
