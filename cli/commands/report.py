"""`tenantguard report ...`: response metrics, incident reports (Markdown or HTML), framework compliance reports."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from cli.context import cli_actor, console, database, err_console, when

GROUP_NAME = "report"
app = typer.Typer(help="Reports: response metrics, incident postmortems, compliance.", no_args_is_help=True)


def parse_since(value: str, option: str = "--since", now: datetime | None = None) -> datetime:
    """A time typed at `option`: a span back from now (30m, 24h, 7d), yesterday, a date, ISO 8601."""
    return when(value, option, now=now)


@app.command("metrics")
def metrics(
    since: Annotated[
        str, typer.Option("--since", help="Incidents opened since: ISO time or 7d, 24h, ...")
    ] = "30d",
    until: Annotated[
        str | None, typer.Option("--until", help="... and before this time (default: now).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """MTTD, MTTA, MTTC, MTTR, volume and recurrence by type, SLA compliance."""
    from timeline.metrics import compute_metrics, describe_seconds

    start = parse_since(since)
    end = parse_since(until, "--until") if until else None
    report = compute_metrics(database(), start, end)
    if as_json:
        console.print_json(orjson.dumps(report.as_dict()).decode())
        return
    console.print(
        f"{report.incidents} incident(s) opened {start:%Y-%m-%d %H:%M} – {report.until:%Y-%m-%d %H:%M} UTC"
    )
    table = Table(title="response times")
    for column in ("metric", "incidents", "mean", "median", "p90"):
        table.add_column(column)
    for name, stats in (
        ("MTTD", report.mttd),
        ("MTTA", report.mtta),
        ("MTTC", report.mttc),
        ("MTTR", report.mttr),
    ):
        table.add_row(
            name,
            str(stats.count),
            describe_seconds(stats.mean_seconds),
            describe_seconds(stats.median_seconds),
            describe_seconds(stats.p90_seconds),
        )
    console.print(table)
    per_priority = Table(title="response times by priority (median; incidents)")
    for column in ("priority", "MTTD", "MTTA", "MTTC", "MTTR"):
        per_priority.add_column(column)
    for priority, times in report.by_priority_times.items():
        per_priority.add_row(
            priority,
            *(
                f"{describe_seconds(times[name].median_seconds)} ({times[name].count})"
                for name in ("mttd", "mtta", "mttc", "mttr")
            ),
        )
    console.print(per_priority)
    sla = Table(title="SLA compliance")
    for column in ("target", "met", "breached", "pending", "compliance"):
        sla.add_column(column)
    for name, sla_stats in (("acknowledge", report.sla_acknowledge), ("resolve", report.sla_resolve)):
        rate = "—" if sla_stats.compliance is None else f"{sla_stats.compliance:.0%}"
        sla.add_row(name, str(sla_stats.met), str(sla_stats.breached), str(sla_stats.pending), rate)
    console.print(sla)
    kinds = Table(title="volume and recurrence by type")
    for column in ("type", "incidents", "recurrences", "by priority"):
        kinds.add_column(column)
    for name, kind in report.by_type.items():
        spread = ", ".join(f"{p} {n}" for p, n in sorted(kind.by_priority.items()))
        kinds.add_row(name, str(kind.count), str(kind.recurrences), spread)
    console.print(kinds)
    console.print("by priority: " + ", ".join(f"{p} {n}" for p, n in report.by_priority.items()))
    console.print("by status: " + (", ".join(f"{s} {n}" for s, n in sorted(report.by_status.items())) or "—"))


@app.command("incident")
def incident(
    incident_id: Annotated[int, typer.Argument(help="Incident id.")],
    format: Annotated[str, typer.Option("--format", "-f", help="md, html or json")] = "md",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    excerpts: Annotated[
        bool, typer.Option("--excerpts/--no-excerpts", help="Include conversation excerpts.")
    ] = True,
) -> None:
    """The incident report / postmortem: summary, impact, timeline, root cause, lessons, actions."""
    from timeline.reports import build_report, render_html, render_markdown, report_document

    if format not in ("md", "html", "json"):
        raise typer.BadParameter(f"must be md, html or json, not {format!r}", param_hint="--format")
    report = build_report(database(), incident_id, include_excerpts=excerpts)
    if format == "json":
        text = orjson.dumps(report_document(report), option=orjson.OPT_INDENT_2, default=str).decode()
    else:
        text = render_markdown(report) if format == "md" else render_html(report)
    if output is None:
        print(text)
        return
    output.write_text(text, encoding="utf-8")
    err_console.print(f"wrote {output}")


@app.command("compliance")
def compliance(
    framework: Annotated[
        str,
        typer.Option(
            "--framework", help="cis-m365, cis-gws, scuba-m365, scuba-gws, soc2, iso27001 or nist-800-53."
        ),
    ],
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="One tenant: connection id or name (default: all).")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at", help="Posture as it was then (ISO time or 7d, 24h back), from stored snapshots."
        ),
    ] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="json, csv, html or pdf")] = "html",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Per control: the mapped checks, pass/fail, evidence, drift history and exceptions."""
    import sys

    from compliance.exports import export_report
    from compliance.frameworks import parse_framework
    from compliance.render import ReportFormat
    from compliance.report import resolve_tenant

    try:
        chosen = ReportFormat(format.lower())
    except ValueError:
        raise typer.BadParameter(f"--format must be json, csv, html or pdf, not {format!r}") from None
    fw = parse_framework(framework)
    at_time = parse_since(at, "--at") if at else None
    db = database()
    with db.session(readonly=True) as session:
        tenant_id = resolve_tenant(session, tenant)
    report, body = export_report(
        db, fw, chosen, actor=cli_actor(permission="compliance:read"), tenant=tenant_id, at=at_time
    )
    if output is None:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    else:
        output.write_bytes(body)
        summary = ", ".join(f"{k} {v}" for k, v in report.summary.items())
        err_console.print(f"wrote {output}: {report.name} as of {report.at}: {summary}")
