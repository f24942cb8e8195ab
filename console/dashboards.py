"""Posture and metrics dashboards, and the audit page: charts and verdicts for people, not JSON.

Posture: the current score per tenant and category, each connection's overall score history, and
the drift findings (old -> new, who, when). Metrics: timeline.metrics over the last 30 days.
Audit: export the chain (JSONL or CSV) and verify it, live or an uploaded export, with a verdict.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path as FsPath
from typing import Annotated

from fastapi import APIRouter, Depends, Query, UploadFile
from fastapi.responses import Response, StreamingResponse

from api.audit import service as audit_service
from api.audit.schemas import ExportFormat
from api.findings import service as findings_service
from api.findings.schemas import FindingFilters, FindingSort, FindingSummary
from api.posture import service as posture_service
from console.charts import bar_chart, line_chart
from console.web import ConsolePage, render, signed_in
from core.clock import utcnow
from core.errors import TenantguardError
from core.models import FindingKind
from core.permissions import Permission
from timeline.metrics import compute_metrics

router = APIRouter(prefix="/console", include_in_schema=False)
HISTORY_POINTS = 60
DRIFT_ROWS = 50


@router.get("/posture")
def posture(page: Annotated[ConsolePage, Depends(signed_in(Permission.POSTURE_READ))]) -> Response:
    scores = posture_service.scores(page.ctx)
    tenants: dict[tuple[int | None, str], list[tuple[str, float]]] = {}
    for s in scores:
        tenants.setdefault((s.connection_id, s.provider), []).append((s.category, s.score))
    charts = []
    for (connection_id, provider), bars in sorted(tenants.items()):
        history = posture_service.history(
            page.ctx, connection_id=connection_id, category="overall", limit=HISTORY_POINTS
        )
        charts.append(
            (
                f"{provider} (connection {connection_id})",
                bar_chart(
                    f"Score by category, {provider} {connection_id}", sorted(bars), maximum=100, unit="%"
                ),
                line_chart(
                    f"Overall score history, {provider} {connection_id}",
                    [(h.evaluated_at.strftime("%Y-%m-%d %H:%M"), h.score) for h in history],
                ),
            )
        )
    with page.ctx.db.session(readonly=True) as session:
        drift_rows, _ = findings_service.list_findings(
            session,
            FindingFilters(kind=[FindingKind.DRIFT]),
            sort=FindingSort.NEWEST,
            limit=DRIFT_ROWS,
            cursor=None,
        )
        drift = [FindingSummary.model_validate(r) for r in drift_rows]
    return render(page, page.request, "posture.html.j2", charts=charts, drift=drift)


@router.get("/metrics")
def metrics(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.METRICS_READ))],
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> Response:
    until = utcnow()
    result = compute_metrics(page.ctx.db, until - timedelta(days=days), until)

    def hours(stats: object) -> float:
        mean = getattr(stats, "mean_seconds", None)
        return round(mean / 3600, 1) if mean else 0.0

    durations = [
        ("MTTD", hours(result.mttd)),
        ("MTTA", hours(result.mtta)),
        ("MTTC", hours(result.mttc)),
        ("MTTR", hours(result.mttr)),
    ]
    sla = [
        ("acknowledge", (result.sla_acknowledge.compliance or 0.0) * 100),
        ("resolve", (result.sla_resolve.compliance or 0.0) * 100),
    ]
    return render(
        page,
        page.request,
        "metrics.html.j2",
        days=days,
        result=result,
        durations_chart=bar_chart(
            "Mean time to detect, acknowledge, contain, resolve (hours)", durations, unit=" h"
        ),
        priority_chart=bar_chart("Incidents by priority", sorted(result.by_priority.items())),
        status_chart=bar_chart("Incidents by status", sorted(result.by_status.items())),
        sla_chart=bar_chart("SLA compliance", sla, maximum=100, unit="%"),
        types=sorted(result.by_type.items(), key=lambda kv: -kv[1].count),
    )


@router.get("/audit")
def audit(page: Annotated[ConsolePage, Depends(signed_in(Permission.AUDIT_EXPORT))]) -> Response:
    return render(page, page.request, "audit.html.j2", verdict=None, source=None)


@router.get("/audit/export")
def audit_export(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.AUDIT_EXPORT))],
    format: ExportFormat = ExportFormat.JSONL,
) -> Response:
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        audit_service.stream_export(page.ctx.db, format, None),
        media_type="application/x-ndjson" if format is ExportFormat.JSONL else "text/csv",
        headers={"content-disposition": f'attachment; filename="tenantguard-audit-{stamp}.{format.value}"'},
    )


@router.post("/audit/verify")
def audit_verify_live(page: Annotated[ConsolePage, Depends(signed_in(Permission.AUDIT_EXPORT))]) -> Response:
    verdict = audit_service.verify_live(page.ctx.db)
    return render(page, page.request, "audit.html.j2", verdict=verdict, source="the live audit chain")


@router.post("/audit/verify-file")
def audit_verify_file(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.AUDIT_EXPORT))], export: UploadFile
) -> Response:
    with tempfile.TemporaryDirectory() as directory:
        path = FsPath(directory) / "upload"
        with path.open("wb") as handle:
            while chunk := export.file.read(1 << 20):
                handle.write(chunk)
        try:
            verdict = audit_service.verify_file(path, page.ctx.db)
        except TenantguardError as exc:
            return render(
                page, page.request, "audit.html.j2", status=422, verdict=None, source=None, failure=str(exc)
            )
    return render(
        page, page.request, "audit.html.j2", verdict=verdict, source=f"the uploaded file {export.filename}"
    )
