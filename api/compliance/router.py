"""HTTP routes for compliance (compliance officers, auditors read; compliance officers manage exceptions
and legal holds).

Reports are built from stored snapshots as of `at` (default now), like `tenantguard report compliance`;
each export is recorded in the audit chain. Exception changes go through the compliance stage, which
writes their one audit record in the change's transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import StreamingResponse
from sqlmodel import col, select

from api.compliance.schemas import (
    ControlOut,
    ErasureIn,
    ErasureOut,
    ExceptionIn,
    ExceptionOut,
    ExpireIn,
    FrameworkOut,
    HoldIn,
    HoldOut,
    ReleaseIn,
)
from api.context import RequestContext, require
from api.errors import Conflict, Forbidden, NotFound, Unprocessable
from compliance import exceptions as stage
from compliance import holds, privacy
from compliance.errors import (
    ComplianceError,
    ExceptionConflictError,
    ExceptionError,
    ExceptionNotFoundError,
    HoldConflictError,
    HoldError,
    HoldNotFoundError,
    NotPermittedError,
    PrivacyConflictError,
    PrivacyError,
    PrivacyNotFoundError,
    UnknownFrameworkError,
)
from compliance.exports import export_report
from compliance.frameworks import Framework, load_catalogue, parse_framework
from compliance.incident_export import stream_incidents
from compliance.mappings import ItemKind, shipped_mappings
from compliance.ocsf import MEDIA_TYPES as FINDING_MEDIA_TYPES
from compliance.ocsf import FindingFormat, stream_findings
from compliance.render import MEDIA_TYPES, ReportFormat
from core.clock import as_utc
from core.models import ComplianceException
from core.pagination import MAX_ID
from core.permissions import Permission, role_allows

router = APIRouter(prefix="/compliance", tags=["compliance"])


def _framework(name: str) -> Framework:
    try:
        return parse_framework(name)
    except UnknownFrameworkError as exc:
        raise NotFound(str(exc)) from None


@router.get(
    "/frameworks", response_model=list[FrameworkOut], summary="Frameworks and how much of each is mapped"
)
def frameworks(ctx: Annotated[RequestContext, require(Permission.COMPLIANCE_READ)]) -> list[FrameworkOut]:
    mappings = shipped_mappings()
    out = []
    for framework in Framework:
        catalogue = load_catalogue(framework)
        out.append(
            FrameworkOut(
                id=framework.value,
                name=catalogue.name,
                version=catalogue.version,
                source=catalogue.source,
                controls=len(catalogue.controls),
                controls_mapped=len(mappings.items_by_control(framework)),
            )
        )
    return out


@router.get(
    "/frameworks/{framework}/controls",
    response_model=list[ControlOut],
    summary="A framework's mapped controls with their checks and rules",
)
def controls(
    ctx: Annotated[RequestContext, require(Permission.COMPLIANCE_READ)], framework: str
) -> list[ControlOut]:
    chosen = _framework(framework)
    by_control = shipped_mappings().items_by_control(chosen)
    return [
        ControlOut(
            id=control.id,
            title=control.title,
            posture_checks=[m.item_id for m in by_control[control.id] if m.kind is ItemKind.POSTURE_CHECK],
            detection_rules=[m.item_id for m in by_control[control.id] if m.kind is ItemKind.DETECTION_RULE],
        )
        for control in load_catalogue(chosen).controls
        if control.id in by_control
    ]


@router.get(
    "/frameworks/{framework}/report",
    summary="The framework report: per control its checks, results, evidence, drift and exceptions",
    response_class=Response,
    responses={
        200: {
            "description": "JSON (default), CSV, HTML or PDF, as `format` asks.",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}},
                "text/html": {"schema": {"type": "string"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
def report(
    ctx: Annotated[RequestContext, require(Permission.COMPLIANCE_READ)],
    framework: str,
    format: ReportFormat = ReportFormat.JSON,
    connection_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="One tenant.")] = None,
    at: Annotated[
        datetime | None, Query(description="Posture as it was then, from stored snapshots.")
    ] = None,
) -> Response:
    chosen = _framework(framework)
    try:
        built, body = export_report(
            ctx.db, chosen, format, actor=ctx.actor, tenant=connection_id, at=as_utc(at) if at else None
        )
    except ComplianceError as exc:
        raise Unprocessable(str(exc)) from None
    filename = f"tenantguard-{chosen.value}-{built.at[:10]}.{format.value}"
    return Response(
        body,
        media_type=MEDIA_TYPES[format],
        headers={"Content-Disposition": f'inline; filename="{filename}"'},
    )


@router.get(
    "/findings/export",
    summary="Every finding as OCSF, JSONL or CSV (streamed)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "OCSF Compliance Finding (posture, drift) / Detection Finding events, one per line.",
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
def export_findings(
    ctx: Annotated[RequestContext, require(Permission.COMPLIANCE_READ)],
    format: FindingFormat = FindingFormat.OCSF,
    since: Annotated[datetime | None, Query(description="Only findings seen at or after this time.")] = None,
) -> StreamingResponse:
    since_at = as_utc(since) if since is not None else None

    def body() -> Iterator[bytes]:
        with ctx.db.session(readonly=True) as session:
            yield from stream_findings(session, format, since=since_at)

    extension = "jsonl" if format is not FindingFormat.CSV else "csv"
    return StreamingResponse(
        body(),
        media_type=FINDING_MEDIA_TYPES[format],
        headers={
            "Content-Disposition": f'attachment; filename="tenantguard-findings.{format.value}.{extension}"'
        },
    )


@router.get(
    "/incidents/export",
    summary="Every incident as OCSF Incident Finding, JSONL or CSV (streamed)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "OCSF Incident Finding (class 2005) events, one per line; or plain JSONL / CSV.",
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
def export_incidents(
    ctx: Annotated[RequestContext, require(Permission.COMPLIANCE_READ)],
    format: FindingFormat = FindingFormat.OCSF,
    since: Annotated[
        datetime | None, Query(description="Only incidents updated at or after this time.")
    ] = None,
) -> StreamingResponse:
    since_at = as_utc(since) if since is not None else None
    base_url = ctx.settings.public_url

    def body() -> Iterator[bytes]:
        with ctx.db.session(readonly=True) as session:
            yield from stream_incidents(session, format, since=since_at, base_url=base_url)

    extension = "jsonl" if format is not FindingFormat.CSV else "csv"
    return StreamingResponse(
        body(),
        media_type=FINDING_MEDIA_TYPES[format],
        headers={
            "Content-Disposition": f'attachment; filename="tenantguard-incidents.{format.value}.{extension}"'
        },
    )


@router.get("/exceptions", response_model=list[ExceptionOut], summary="Risk-acceptance exceptions")
def list_exceptions(
    ctx: Annotated[RequestContext, require(Permission.COMPLIANCE_READ)],
    check_id: Annotated[str | None, Query(max_length=200)] = None,
) -> list[ExceptionOut]:
    with ctx.db.session(readonly=True) as session:
        query = select(ComplianceException).order_by(col(ComplianceException.id))
        if check_id:
            query = query.where(ComplianceException.check_id == check_id)
        rows = session.exec(query).all()
        return [ExceptionOut.of(stage.snapshot(r), stage.state_of(r)) for r in rows]


def _refusal(exc: ExceptionError) -> Exception:
    if isinstance(exc, ExceptionNotFoundError):
        return NotFound(str(exc))
    if isinstance(exc, ExceptionConflictError):
        return Conflict(str(exc))
    return Unprocessable(str(exc))


@router.post(
    "/exceptions",
    response_model=ExceptionOut,
    status_code=201,
    summary="Request an exception for a failing check (pending until a second person approves)",
)
def request_exception(
    ctx: Annotated[RequestContext, require(Permission.COMPLIANCE_WRITE)], body: ExceptionIn
) -> ExceptionOut:
    request = stage.ExceptionRequest(
        check_id=body.check_id,
        owner=body.owner,
        reason=body.reason,
        expires_at=as_utc(body.expires_at),
        connection_id=body.connection_id,
    )
    try:
        with ctx.db.session() as session:
            row = stage.request_exception(session, request, actor=ctx.actor)
            return ExceptionOut.of(stage.snapshot(row), stage.state_of(row))
    except ExceptionError as exc:
        raise _refusal(exc) from None


@router.post(
    "/exceptions/{exception_id}/approve",
    response_model=ExceptionOut,
    summary="Approve a pending exception (not by its requester)",
)
def approve_exception(
    ctx: Annotated[RequestContext, require(Permission.COMPLIANCE_APPROVE)],
    exception_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> ExceptionOut:
    try:
        with ctx.db.session() as session:
            row = stage.approve_exception(session, exception_id, actor=ctx.actor)
            return ExceptionOut.of(stage.snapshot(row), stage.state_of(row))
    except ExceptionError as exc:
        raise _refusal(exc) from None


@router.post("/exceptions/{exception_id}/expire", response_model=ExceptionOut, summary="End an exception now")
def expire_exception(
    ctx: Annotated[RequestContext, require(Permission.COMPLIANCE_WRITE)],
    exception_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: ExpireIn,
) -> ExceptionOut:
    try:
        with ctx.db.session() as session:
            row = stage.expire_exception(session, exception_id, actor=ctx.actor, reason=body.reason)
            return ExceptionOut.of(stage.snapshot(row), stage.state_of(row))
    except ExceptionError as exc:
        raise _refusal(exc) from None


def _role_for(ctx: RequestContext, permission: Permission) -> str | None:
    """The caller's role that carries `permission` (what the stage checks again)."""
    return next((role.value for role in sorted(ctx.caller.roles) if role_allows(role, permission)), None)


def _hold_refusal(exc: ComplianceError) -> Exception:
    if isinstance(exc, NotPermittedError):
        return Forbidden(str(exc))
    if isinstance(exc, HoldNotFoundError):
        return NotFound(str(exc))
    if isinstance(exc, HoldConflictError):
        return Conflict(str(exc))
    return Unprocessable(str(exc))


@router.get("/holds", response_model=list[HoldOut], summary="Legal holds (active and released)")
def list_holds(
    ctx: Annotated[RequestContext, require(Permission.COMPLIANCE_READ)],
    active: Annotated[bool, Query(description="Only holds in force.")] = False,
) -> list[HoldOut]:
    with ctx.db.session(readonly=True) as session:
        return [HoldOut(**holds.snapshot(r)) for r in holds.list_holds(session, active_only=active)]


@router.post(
    "/holds",
    response_model=HoldOut,
    status_code=201,
    summary="Put an incident or a person on legal hold (retention and erasure then delete nothing linked)",
)
def place_hold(ctx: Annotated[RequestContext, require(Permission.LEGAL_HOLD_WRITE)], body: HoldIn) -> HoldOut:
    try:
        with ctx.db.session() as session:
            row = holds.place_hold(
                session,
                body.kind,
                body.target,
                reason=body.reason,
                actor=ctx.actor,
                role=_role_for(ctx, Permission.LEGAL_HOLD_WRITE),
            )
            return HoldOut(**holds.snapshot(row))
    except HoldNotFoundError as exc:  # the body names what does not exist: 422, not 404
        raise Unprocessable(str(exc)) from None
    except (HoldError, NotPermittedError) as exc:
        raise _hold_refusal(exc) from None


@router.post("/holds/{hold_id}/release", response_model=HoldOut, summary="Release a legal hold")
def release_hold(
    ctx: Annotated[RequestContext, require(Permission.LEGAL_HOLD_WRITE)],
    hold_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: ReleaseIn,
) -> HoldOut:
    try:
        with ctx.db.session() as session:
            row = holds.release_hold(
                session,
                hold_id,
                reason=body.reason,
                actor=ctx.actor,
                role=_role_for(ctx, Permission.LEGAL_HOLD_WRITE),
            )
            return HoldOut(**holds.snapshot(row))
    except (HoldError, NotPermittedError) as exc:
        raise _hold_refusal(exc) from None


def _privacy_refusal(exc: ComplianceError) -> Exception:
    if isinstance(exc, NotPermittedError):
        return Forbidden(str(exc))
    if isinstance(exc, PrivacyNotFoundError):
        return NotFound(str(exc))
    if isinstance(exc, PrivacyConflictError):
        return Conflict(str(exc))
    return Unprocessable(str(exc))


@router.get(
    "/privacy/export",
    summary="Everything stored about one person, across tables (JSON lines, streamed; audited)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}}},
)
def privacy_export(
    ctx: Annotated[RequestContext, require(Permission.PRIVACY_EXPORT)],
    person: Annotated[str, Query(min_length=3, max_length=320, description="Any e-mail address of theirs.")],
) -> StreamingResponse:
    try:
        with ctx.db.session() as session:
            addresses = privacy.record_export(
                session, person, actor=ctx.actor, role=_role_for(ctx, Permission.PRIVACY_EXPORT)
            )
    except NotPermittedError as exc:
        raise Forbidden(str(exc)) from None

    def body() -> Iterator[bytes]:
        with ctx.db.session(readonly=True) as session:
            yield from privacy.export_person(session, addresses)

    return StreamingResponse(
        body(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="tenantguard-subject-export.jsonl"'},
    )


@router.get("/privacy/erasures", response_model=list[ErasureOut], summary="Erasure requests")
def list_erasures(ctx: Annotated[RequestContext, require(Permission.COMPLIANCE_READ)]) -> list[ErasureOut]:
    with ctx.db.session(readonly=True) as session:
        return [ErasureOut(**privacy.snapshot(r)) for r in privacy.list_erasures(session)]


@router.post(
    "/privacy/erasures",
    response_model=ErasureOut,
    status_code=201,
    summary="Ask for a person's erasure (runs once a second person approves; refused while on legal hold)",
)
def request_erasure(
    ctx: Annotated[RequestContext, require(Permission.PRIVACY_ERASE)], body: ErasureIn
) -> ErasureOut:
    try:
        with ctx.db.session() as session:
            row = privacy.request_erasure(
                session,
                body.person,
                reason=body.reason,
                actor=ctx.actor,
                role=_role_for(ctx, Permission.PRIVACY_ERASE),
            )
            return ErasureOut(**privacy.snapshot(row))
    except (PrivacyError, NotPermittedError) as exc:
        raise _privacy_refusal(exc) from None


@router.post(
    "/privacy/erasures/{request_id}/approve",
    response_model=ErasureOut,
    summary="Approve an erasure (not by its requester): it runs at once",
)
def approve_erasure(
    ctx: Annotated[RequestContext, require(Permission.PRIVACY_ERASE)],
    request_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> ErasureOut:
    try:
        with ctx.db.session() as session:
            row = privacy.approve_erasure(
                session, request_id, actor=ctx.actor, role=_role_for(ctx, Permission.PRIVACY_ERASE)
            )
            return ErasureOut(**privacy.snapshot(row))
    except (PrivacyError, NotPermittedError) as exc:
        raise _privacy_refusal(exc) from None
