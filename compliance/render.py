"""A framework report as JSON, CSV (one row per control x check x tenant), HTML (Jinja2, autoescaped) or PDF (fpdf2)."""

from __future__ import annotations

import csv
import io
from enum import StrEnum

import orjson
from jinja2 import Environment, PackageLoader, StrictUndefined

from compliance.report import FrameworkReport
from core.spreadsheet import escape_cell

CSV_FIELDS = (
    "framework",
    "at",
    "control_id",
    "control_title",
    "control_status",
    "check_id",
    "tenant",
    "check_status",
    "excepted",
    "objects_failing",
    "objects_total",
    "evidence_collected_at",
    "evidence",
    "drift_count",
    "last_drift_at",
    "exceptions",
)


class ReportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    HTML = "html"
    PDF = "pdf"


MEDIA_TYPES = {
    ReportFormat.JSON: "application/json",
    ReportFormat.CSV: "text/csv; charset=utf-8",
    ReportFormat.HTML: "text/html; charset=utf-8",
    ReportFormat.PDF: "application/pdf",
}

_HTML = Environment(
    loader=PackageLoader("compliance", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_json(report: FrameworkReport) -> bytes:
    return orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2)


def csv_rows(report: FrameworkReport) -> list[dict[str, str]]:
    rows = []
    for control in report.controls:
        base = {
            "framework": report.framework,
            "at": report.at,
            "control_id": control.control_id,
            "control_title": control.title,
            "control_status": control.status.value,
        }
        if not control.checks:
            rows.append({**base, "check_id": "", "check_status": "", "tenant": ""})
        for check in control.checks:
            rows.append(
                {
                    **base,
                    "check_id": check.check_id,
                    "tenant": check.connection,
                    "check_status": check.status,
                    "excepted": "yes" if check.excepted else "no",
                    "objects_failing": str(check.objects_failing),
                    "objects_total": str(check.objects_total),
                    "evidence_collected_at": max((e.collected_at or "" for e in check.evidence), default=""),
                    "evidence": orjson.dumps(
                        [{"object": e.object_id, "values": e.values} for e in check.evidence], default=str
                    ).decode(),
                    "drift_count": str(len(check.drift)),
                    "last_drift_at": check.drift[0]["at"] if check.drift else "",
                    "exceptions": "; ".join(
                        f"#{x['id']} {x['state']} owner={x['owner']} until={x['expires_at']} reason={x['reason']}"
                        for x in check.exceptions
                    ),
                }
            )
    return rows


def render_csv(report: FrameworkReport) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: escape_cell(v) for k, v in row.items()} for row in csv_rows(report))
    return out.getvalue().encode("utf-8")


def render_html(report: FrameworkReport) -> bytes:
    return _HTML.get_template("report.html.j2").render(report=report.as_dict()).encode("utf-8")


def render_pdf(report: FrameworkReport) -> bytes:
    """A plain PDF of the same content: the summary, then each control and its checks."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    def line(text: str, size: int = 9, style: str = "") -> None:
        pdf.set_font("Helvetica", style=style, size=size)
        pdf.set_x(pdf.l_margin)
        # the core fonts are Latin-1: anything else prints as '?', never fails the report
        pdf.multi_cell(width, size * 0.5, text.encode("latin-1", "replace").decode("latin-1"))

    line(f"{report.name} {report.version}".strip(), 14, "B")
    line(f"Posture as of {report.at} (from stored snapshots); generated {report.generated_at}")
    line("Tenants: " + (", ".join(f"{t['name']} ({t['provider']})" for t in report.tenants) or "none"))
    line("Summary: " + ", ".join(f"{k} {v}" for k, v in report.summary.items()))
    for control in report.controls:
        pdf.ln(2)
        line(f"{control.control_id} {control.title}: {control.status.value}", 11, "B")
        for check in control.checks:
            line(
                f"  {check.check_id} on {check.connection}: {check.status}"
                + (" (excepted)" if check.excepted else "")
                + (f", {check.objects_failing}/{check.objects_total} failing" if check.objects_total else "")
            )
            for evidence in check.evidence[:3]:
                values = orjson.dumps(evidence.values, default=str).decode()
                line(f"    {evidence.object_id} at {evidence.collected_at}: {values[:300]}", 8)
            for drift in check.drift[:3]:
                line(f"    drift {drift['at']}: {drift['title'][:200]}", 8)
            for exc in check.exceptions:
                line(
                    f"    exception #{exc['id']} {exc['state']}: {exc['owner']} until {exc['expires_at']}: {exc['reason']}",
                    8,
                )
        if control.rules:
            line("  monitoring: " + ", ".join(f"{r.rule_id} {r.findings}" for r in control.rules), 8)
    return bytes(pdf.output())


def render(report: FrameworkReport, format: ReportFormat) -> bytes:
    return {
        ReportFormat.JSON: render_json,
        ReportFormat.CSV: render_csv,
        ReportFormat.HTML: render_html,
        ReportFormat.PDF: render_pdf,
    }[format](report)
