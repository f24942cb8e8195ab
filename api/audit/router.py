"""HTTP routes for the audit trail (auditors and admins only)."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from api.audit import service
from api.audit.schemas import ExportFormat, VerifyOut
from api.context import RequestContext, require
from core.audit import AuditAction
from core.clock import as_utc, isoformat, utcnow
from core.permissions import Permission

router = APIRouter(prefix="/audit", tags=["audit"])
UPLOAD_PATH = "/audit/verify"
_MEDIA = {ExportFormat.JSONL: "application/x-ndjson", ExportFormat.CSV: "text/csv; charset=utf-8"}


@router.get(
    "/export",
    summary="Export the audit chain (streamed)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The chain in seq order; verify it with `tenantguard audit verify FILE`.",
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
def export_audit(
    ctx: Annotated[RequestContext, require(Permission.AUDIT_EXPORT)],
    format: ExportFormat = ExportFormat.JSONL,
    since: Annotated[datetime | None, Query(description="Only records at or after this time.")] = None,
) -> StreamingResponse:
    """Each record carries the hash of the one before: an export from `since` verifies on its own."""
    since_at = as_utc(since) if since is not None else None
    with ctx.db.session() as session:
        ctx.audit(
            session,
            action=AuditAction.AUDIT_EXPORTED,
            object_type="audit",
            object_id="chain",
            after={"format": format.value, "since": isoformat(since_at) if since_at else None},
        )
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        service.stream_export(ctx.db, format, since_at),
        media_type=_MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="tenantguard-audit-{stamp}.{format.value}"'},
    )


@router.get("/verify", response_model=VerifyOut, summary="Verify the live audit chain")
def verify_chain(ctx: Annotated[RequestContext, require(Permission.AUDIT_EXPORT)]) -> VerifyOut:
    return service.verify_live(ctx.db)


@router.post(
    "/verify",
    response_model=VerifyOut,
    summary="Verify an uploaded export",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "A JSONL or CSV export, as produced by GET /audit/export.",
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
async def verify_upload(
    ctx: Annotated[RequestContext, require(Permission.AUDIT_EXPORT)], request: Request
) -> VerifyOut:
    """The same check as `tenantguard audit verify FILE`: names the first altered, missing or reordered record."""
    with tempfile.TemporaryDirectory(prefix="tenantguard-verify-") as tmp:
        path = await service.spool_body(request, Path(tmp))
        return await run_in_threadpool(service.verify_file, path, ctx.db)
