"""HTTP routes for the daily digests: low-signal findings that joined no incident (read only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlmodel import col

from api.context import RequestContext, require
from api.errors import NotFound
from core.models.finding import Finding
from core.models.noise import Digest
from core.pagination import MAX_ID
from core.permissions import Permission

router = APIRouter(prefix="/digests", tags=["incidents"])
DigestId = Annotated[int, Path(ge=1, le=MAX_ID, description="Digest id.")]


class DigestSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    day: datetime
    connection_id: int = Field(description="The tenant (connection) whose findings it holds; 0: none.")
    tenant: str = Field(description="That connection's name.")
    finding_count: int
    people_count: int
    summary: str
    created_at: datetime
    notifications: dict[str, Any]


class DigestDetail(DigestSummary):
    items: list[dict[str, Any]]
    # Findings of the digest that joined an incident since (a stronger finding arrived later).
    joined_incidents: dict[str, int] = Field(default_factory=dict)


@router.get("", response_model=list[DigestSummary], summary="Daily digests, newest first")
def list_digests(
    ctx: Annotated[RequestContext, require(Permission.INCIDENTS_READ)],
    limit: Annotated[int, Query(ge=1, le=366, description="How many days.")] = 30,
) -> list[DigestSummary]:
    """Low-signal findings that joined no incident, one digest per day that has ended."""
    with ctx.db.session(readonly=True) as session:
        rows = session.execute(select(Digest).order_by(col(Digest.day).desc()).limit(limit)).scalars()
        return [DigestSummary.model_validate(row) for row in rows]


@router.get("/{digest_id}", response_model=DigestDetail, summary="One digest with its lines")
def get_digest(
    ctx: Annotated[RequestContext, require(Permission.INCIDENTS_READ)], digest_id: DigestId
) -> DigestDetail:
    with ctx.db.session(readonly=True) as session:
        digest = session.get(Digest, digest_id)
        if digest is None:
            raise NotFound(f"digest {digest_id} does not exist")
        joined = session.execute(
            select(col(Finding.id), col(Finding.incident_id)).where(
                col(Finding.digest_id) == digest_id, col(Finding.incident_id).is_not(None)
            )
        ).all()
        detail = DigestDetail.model_validate(digest)
        detail.items = list(digest.items)
        detail.joined_incidents = {str(f): int(i) for f, i in joined}
        return detail
