"""A framework report built, rendered and its export recorded in the audit chain, in one transaction."""

from __future__ import annotations

from datetime import datetime

from compliance.frameworks import Framework
from compliance.render import ReportFormat, render
from compliance.report import FrameworkReport, build_report
from core.audit import Actor, AuditAction, record
from core.db import Database


def export_report(
    db: Database,
    framework: Framework,
    format: ReportFormat,
    *,
    actor: Actor,
    tenant: int | None = None,
    at: datetime | None = None,
) -> tuple[FrameworkReport, bytes]:
    with db.session() as session:
        report = build_report(session, framework, tenant=tenant, at=at)
        body = render(report, format)
        record(
            session,
            actor=actor,
            action=AuditAction.COMPLIANCE_REPORT_EXPORTED,
            object_type="compliance_report",
            object_id=framework.value,
            details={
                "format": format.value,
                "tenant": tenant,
                "at": report.at,
                "summary": report.summary,
                "bytes": len(body),
            },
        )
    return report, body
