"""HTTP routes for declared change windows: list, declare, cancel (each mutation audited)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from api.context import RequestContext, require
from api.errors import NotFound
from core.pagination import MAX_ID
from core.permissions import Permission
from timeline import changes

router = APIRouter(prefix="/change-windows", tags=["incidents"])
WindowId = Annotated[int, Path(ge=1, le=MAX_ID, description="Change window id.")]


class ChangeWindowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: str = Field(min_length=1, max_length=200, description="The change's id, e.g. CHG-5102.")
    actor: str = Field(min_length=3, max_length=320, description="Email of who carries out the change.")
    starts_at: datetime
    ends_at: datetime
    description: str = Field(default="", max_length=2000)


class ChangeWindowOut(BaseModel):
    id: int
    reference: str
    actor: str
    starts_at: datetime
    ends_at: datetime
    description: str
    created_by: str
    created_at: datetime
    cancelled_at: datetime | None
    cancelled_by: str | None


@router.get("", response_model=list[ChangeWindowOut], summary="Declared change windows")
def list_change_windows(
    ctx: Annotated[RequestContext, require(Permission.INCIDENTS_READ)],
    include_cancelled: bool = False,
) -> list[dict[str, Any]]:
    return changes.list_change_windows(ctx.db, include_cancelled=include_cancelled)


@router.post("", response_model=ChangeWindowOut, status_code=201, summary="Declare a change window")
def declare_change_window(
    ctx: Annotated[RequestContext, require(Permission.INCIDENTS_WRITE)], body: ChangeWindowIn
) -> dict[str, Any]:
    """Drifts inside the window by its declared actor are recorded with the reference (in the
    daily digest) and open no incident; outside it, or by anyone else, they still do."""
    return changes.declare_change_window(
        ctx.db,
        reference=body.reference,
        actor_email=body.actor,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        description=body.description,
        actor=ctx.actor,
    )


@router.post("/{window_id}/cancel", response_model=ChangeWindowOut, summary="Cancel a change window")
def cancel_change_window(
    ctx: Annotated[RequestContext, require(Permission.INCIDENTS_WRITE)], window_id: WindowId
) -> dict[str, Any]:
    cancelled = changes.cancel_change_window(ctx.db, window_id, actor=ctx.actor)
    if cancelled is None:
        raise NotFound(f"change window {window_id} does not exist")
    return cancelled
