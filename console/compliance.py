"""The compliance officer's pages: framework reports, risk-acceptance exceptions, retention and legal
holds, open-format exports and the signed evidence package.

Reads and changes go through the compliance stage's functions, exactly as the API's
(api/compliance/router.py): `compliance.report.build_report` for the report on screen and
`compliance.exports.export_report` for a download (which records the export in the audit chain),
`compliance.exceptions` (request, approve — four eyes: never one's own request —, expire) and
`compliance.holds` (place, release: the stage checks `legal_hold:write` against the caller's role
again), each writing its one audit record in the change's transaction, naming the signed-in caller.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path as FsPath
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Query
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from sqlmodel import col, select

from compliance import exceptions as stage
from compliance import holds
from compliance.errors import ComplianceError, UnknownFrameworkError
from compliance.evidence import build_package
from compliance.exports import export_report
from compliance.frameworks import Framework, load_catalogue, parse_framework
from compliance.incident_export import stream_incidents
from compliance.mappings import shipped_mappings
from compliance.ocsf import MEDIA_TYPES as FINDING_MEDIA_TYPES
from compliance.ocsf import FindingFormat, stream_findings
from compliance.render import MEDIA_TYPES, ReportFormat
from compliance.report import FrameworkReport, build_report
from compliance.retention import periods
from console.web import ConsolePage, PageRefused, back_to, render, signed_in
from core.audit import AuditAction
from core.audit_keys import fingerprint, load_signing_key, public_raw
from core.clock import as_utc, utcnow
from core.models import AnalysisCursor, AuditRecord, ComplianceException, Connection
from core.pagination import MAX_ID
from core.permissions import Permission, allows, role_allows
from detectors.posture.service import shipped_checks
from pipeline.stages import RETENTION_CURSOR
from timeline.reports import incident_reports_between

router = APIRouter(prefix="/console/compliance", include_in_schema=False)
RecordId = Annotated[int, Path(ge=1, le=MAX_ID)]
DELETIONS_SHOWN = 20
PURGES = (AuditAction.DATA_PURGED.value, AuditAction.EVENTS_PURGED.value, AuditAction.AUDIT_TRUNCATED.value)
EVIDENCE_MAX_DAYS = 366


def _framework(name: str) -> Framework:
    try:
        return parse_framework(name)
    except UnknownFrameworkError as exc:
        raise PageRefused(str(exc), status=404) from None


def _tenants(page: ConsolePage) -> list[Connection]:
    with page.ctx.db.session(readonly=True) as session:
        return list(session.exec(select(Connection).order_by(col(Connection.id))).all())


def _day(value: str, what: str, *, end_of_day: bool = False) -> datetime | None:
    """A date field (YYYY-MM-DD) as a UTC moment: its start, or with `end_of_day` the next day's start."""
    value = value.strip()
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise PageRefused(f"{what}: {value!r} is not a date (YYYY-MM-DD)", status=422) from None
    moment = datetime.combine(day, time(0), tzinfo=UTC)
    return moment + timedelta(days=1) if end_of_day else moment


@router.get("")
def overview(page: Annotated[ConsolePage, Depends(signed_in(Permission.COMPLIANCE_READ))]) -> Response:
    mappings = shipped_mappings()
    frameworks = []
    for framework in Framework:
        catalogue = load_catalogue(framework)
        frameworks.append(
            {
                "id": framework.value,
                "name": catalogue.name,
                "version": catalogue.version,
                "controls": len(catalogue.controls),
                "mapped": len(mappings.items_by_control(framework)),
            }
        )
    today = utcnow().date()
    return render(
        page,
        page.request,
        "compliance.html.j2",
        frameworks=frameworks,
        tenants=_tenants(page),
        finding_formats=[f.value for f in FindingFormat],
        since_default=(today - timedelta(days=90)).isoformat(),
        until_default=today.isoformat(),
    )


@router.get("/open")
def open_report(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.COMPLIANCE_READ))],
    framework: Annotated[str, Query(max_length=40)],
    connection_id: Annotated[str, Query(max_length=20)] = "",
    at: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    """The overview's form (a plain GET form cannot choose its path): to the framework's report."""
    chosen = _framework(framework)
    query = urlencode({k: v for k, v in (("connection_id", connection_id), ("at", at)) if v})
    return RedirectResponse(
        f"/console/compliance/frameworks/{chosen.value}" + (f"?{query}" if query else ""), status_code=303
    )


@router.get("/frameworks/{framework}")
def report_page(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.COMPLIANCE_READ))],
    framework: Annotated[str, Path(max_length=40)],
    connection_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    at: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    """The report on screen (a read, as the API's JSON report is built; downloads are audited exports)."""
    chosen = _framework(framework)
    moment = _day(at, "as of", end_of_day=True)
    try:
        with page.ctx.db.session(readonly=True) as session:
            report: FrameworkReport = build_report(session, chosen, tenant=connection_id, at=moment)
    except ComplianceError as exc:
        raise PageRefused(str(exc), status=422) from None
    query = urlencode({k: v for k, v in (("connection_id", connection_id), ("at", at)) if v})
    return render(
        page,
        page.request,
        "compliance_report.html.j2",
        report=report,
        tenants=_tenants(page),
        connection_id=connection_id,
        at=at,
        query=query,
        formats=[f.value for f in ReportFormat],
    )


@router.get("/frameworks/{framework}/report.{format}")
def report_download(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.COMPLIANCE_READ))],
    framework: Annotated[str, Path(max_length=40)],
    format: ReportFormat,
    connection_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    at: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    chosen = _framework(framework)
    moment = _day(at, "as of", end_of_day=True)
    try:
        built, body = export_report(
            page.ctx.db, chosen, format, actor=page.ctx.actor, tenant=connection_id, at=moment
        )
    except ComplianceError as exc:
        raise PageRefused(str(exc), status=422) from None
    filename = f"tenantguard-{chosen.value}-{built.at[:10]}.{format.value}"
    return Response(
        body,
        media_type=MEDIA_TYPES[format],
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


def _stream(page: ConsolePage, what: str, format: FindingFormat) -> StreamingResponse:
    base_url = page.ctx.settings.public_url

    def body() -> Iterator[bytes]:
        with page.ctx.db.session(readonly=True) as session:
            if what == "findings":
                yield from stream_findings(session, format, since=None)
            else:
                yield from stream_incidents(session, format, since=None, base_url=base_url)

    extension = "csv" if format is FindingFormat.CSV else "jsonl"
    return StreamingResponse(
        body(),
        media_type=FINDING_MEDIA_TYPES[format],
        headers={
            "content-disposition": f'attachment; filename="tenantguard-{what}.{format.value}.{extension}"'
        },
    )


@router.get("/export/findings")
def export_findings(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.COMPLIANCE_READ))],
    format: FindingFormat = FindingFormat.OCSF,
) -> Response:
    return _stream(page, "findings", format)


@router.get("/export/incidents")
def export_incidents(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.COMPLIANCE_READ))],
    format: FindingFormat = FindingFormat.OCSF,
) -> Response:
    return _stream(page, "incidents", format)


@router.post("/evidence")
def evidence_package(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.AUDIT_EXPORT))],
    since: Annotated[str, Form(max_length=10)],
    until: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """The signed archive `tenantguard compliance evidence` writes, for the period's whole days."""
    if not page.can(Permission.COMPLIANCE_READ):
        raise PageRefused("an evidence package holds compliance reports: it needs compliance:read")
    start = _day(since, "since")
    end = _day(until, "until", end_of_day=True) or utcnow()
    if start is None or end <= start or end - start > timedelta(days=EVIDENCE_MAX_DAYS):
        raise PageRefused(
            f"the period needs a start before its end, at most {EVIDENCE_MAX_DAYS} days apart", status=422
        )
    incidents = incident_reports_between(page.ctx.db, start, end)
    key = load_signing_key(page.ctx.settings.signing_key_path)
    name = f"tenantguard-evidence-{start:%Y%m%d}-{end:%Y%m%d}.zip"
    directory = tempfile.TemporaryDirectory(prefix="tenantguard-evidence-")
    path = FsPath(directory.name) / name
    manifest = build_package(
        page.ctx.db, path, since=start, until=end, key=key, actor=page.ctx.actor, extra_files=incidents
    )

    def body() -> Iterator[bytes]:
        try:
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    yield chunk
        finally:
            directory.cleanup()

    return StreamingResponse(
        body(),
        media_type="application/zip",
        headers={
            "content-disposition": f'attachment; filename="{name}"',
            "x-tenantguard-signed-by": fingerprint(public_raw(key)),
            "x-tenantguard-files": str(len(manifest["files"])),
        },
    )


# ---- exceptions (risk acceptance) ------------------------------------------------------------------


@router.get("/exceptions")
def exceptions_page(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.COMPLIANCE_READ))],
) -> Response:
    with page.ctx.db.session(readonly=True) as session:
        rows = session.exec(select(ComplianceException).order_by(col(ComplianceException.id).desc())).all()
        items = [{**stage.snapshot(r), "state": stage.state_of(r)} for r in rows]
    tenants = _tenants(page)
    return render(
        page,
        page.request,
        "compliance_exceptions.html.j2",
        items=items,
        tenants=tenants,
        tenant_names={t.id: t.name for t in tenants},
        checks=sorted((c.id, c.title) for c in shipped_checks()),
        me=page.ctx.actor.name,
        expires_default=(utcnow().date() + timedelta(days=90)).isoformat(),
    )


EXCEPTIONS = "/console/compliance/exceptions"


@router.post("/exceptions")
def request_exception(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.COMPLIANCE_WRITE))],
    check_id: Annotated[str, Form(min_length=1, max_length=200)],
    owner: Annotated[str, Form(max_length=200)],
    reason: Annotated[str, Form(max_length=2000)],
    expires: Annotated[str, Form(max_length=10)],
    connection_id: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    expires_at = _day(expires, "expires")
    if expires_at is None:
        return back_to(EXCEPTIONS, error="an exception needs an expiry date")
    request = stage.ExceptionRequest(
        check_id=check_id.strip(),
        owner=owner,
        reason=reason,
        expires_at=expires_at,
        connection_id=int(connection_id) if connection_id.isascii() and connection_id.isdigit() else None,
    )
    try:
        with page.ctx.db.session() as session:
            row = stage.request_exception(session, request, actor=page.ctx.actor)
            number = row.id
    except ComplianceError as exc:
        return back_to(EXCEPTIONS, error=str(exc))
    return back_to(
        EXCEPTIONS, notice=f"exception {number} requested: it counts once someone else approves it"
    )


@router.post("/exceptions/{exception_id}/approve")
def approve_exception(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.COMPLIANCE_APPROVE))], exception_id: RecordId
) -> Response:
    try:
        with page.ctx.db.session() as session:
            stage.approve_exception(session, exception_id, actor=page.ctx.actor)
    except ComplianceError as exc:
        return back_to(EXCEPTIONS, error=str(exc))
    return back_to(EXCEPTIONS, notice=f"exception {exception_id} approved")


@router.post("/exceptions/{exception_id}/expire")
def expire_exception(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.COMPLIANCE_WRITE))],
    exception_id: RecordId,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    try:
        with page.ctx.db.session() as session:
            stage.expire_exception(session, exception_id, actor=page.ctx.actor, reason=reason)
    except ComplianceError as exc:
        return back_to(EXCEPTIONS, error=str(exc))
    return back_to(EXCEPTIONS, notice=f"exception {exception_id} ended")


# ---- retention and legal holds --------------------------------------------------------------------


def _words(period: timedelta) -> str:
    if period <= timedelta(0):
        return "kept for ever"
    days, seconds = period.days, period.seconds
    if days and not seconds:
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{int(period.total_seconds() // 3600)} h" if period >= timedelta(hours=1) else f"{seconds} s"


def _role_for(page: ConsolePage, permission: Permission) -> str | None:
    """The caller's role that carries `permission` (what the stage checks again), as the API passes it."""
    return next((r.value for r in sorted(page.ctx.caller.roles) if role_allows(r, permission)), None)


@router.get("/retention")
def retention_page(page: Annotated[ConsolePage, Depends(signed_in(Permission.COMPLIANCE_READ))]) -> Response:
    settings = page.ctx.settings
    with page.ctx.db.session(readonly=True) as session:
        cursor = session.get(AnalysisCursor, RETENTION_CURSOR)
        deletions = session.exec(
            select(AuditRecord)
            .where(col(AuditRecord.action).in_(PURGES))
            .order_by(col(AuditRecord.seq).desc())
            .limit(DELETIONS_SHOWN)
        ).all()
        hold_rows = [holds.snapshot(r) for r in holds.list_holds(session)]
    last_pass = as_utc(cursor.updated_at) if cursor is not None else None
    return render(
        page,
        page.request,
        "compliance_retention.html.j2",
        classes=[(name.value, _words(period)) for name, period in periods(settings).items()],
        interval=_words(settings.retention.interval),
        last_pass=last_pass,
        deletions=deletions,
        holds=sorted(hold_rows, key=lambda h: (not h["active"], -(h["id"] or 0))),
        can_hold=allows(page.ctx.caller.roles, Permission.LEGAL_HOLD_WRITE),
    )


RETENTION = "/console/compliance/retention"


@router.post("/holds")
def place_hold(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.LEGAL_HOLD_WRITE))],
    kind: Annotated[holds.HoldKind, Form()],
    target: Annotated[str, Form(min_length=1, max_length=320)],
    reason: Annotated[str, Form(max_length=2000)],
) -> Response:
    try:
        with page.ctx.db.session() as session:
            row = holds.place_hold(
                session,
                kind,
                target,
                reason=reason,
                actor=page.ctx.actor,
                role=_role_for(page, Permission.LEGAL_HOLD_WRITE),
            )
            number, what = row.id, f"{row.kind} {row.target}"
    except ComplianceError as exc:
        return back_to(RETENTION, error=str(exc))
    return back_to(RETENTION, notice=f"legal hold {number} placed on {what}")


@router.post("/holds/{hold_id}/release")
def release_hold(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.LEGAL_HOLD_WRITE))],
    hold_id: RecordId,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    try:
        with page.ctx.db.session() as session:
            holds.release_hold(
                session,
                hold_id,
                reason=reason,
                actor=page.ctx.actor,
                role=_role_for(page, Permission.LEGAL_HOLD_WRITE),
            )
    except ComplianceError as exc:
        return back_to(RETENTION, error=str(exc))
    return back_to(RETENTION, notice=f"legal hold {hold_id} released")
