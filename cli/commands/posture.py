"""`tenantguard posture`: the posture score per tenant and category as a table (with history)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.context import console, database, err_console, settings
from cli.output import JsonOption, Output, OutputOption, chosen, emit

app = typer.Typer(help="posture", no_args_is_help=True)


def _colour(score: float) -> str:
    return "green" if score >= 80 else "yellow" if score >= 50 else "red"


def _cell(cells: dict[str, Any], category: str) -> str:
    s = cells.get(category)
    if s is None:
        return ""
    return f"[{_colour(s.score)}]{s.score:.0f}[/] ({s.checks_passed}/{s.checks_passed + s.checks_failed})"


def posture(
    evaluate: Annotated[
        bool,
        typer.Option("--evaluate/--no-evaluate", help="Evaluate the checks on the newest snapshots first."),
    ] = True,
    history: Annotated[
        int, typer.Option("--history", help="Also show the last N overall scores per tenant.")
    ] = 0,
    failing: Annotated[bool, typer.Option("--failing", help="List the failing checks too.")] = False,
    output: OutputOption = Output.TABLE,
    as_json: JsonOption = False,
) -> None:
    """Show the posture score per tenant and per category (evaluating the checks first by default)."""
    from sqlmodel import select

    from core.models import Connection, PostureResult
    from detectors.posture import evaluate as evaluate_posture
    from detectors.posture import latest_scores, score_history

    fmt = chosen(output, as_json)
    db = database()
    if evaluate:
        report = evaluate_posture(db, settings())
        (console if fmt is Output.TABLE else err_console).print(
            f"evaluated {report.results} check results: {report.failing} failing, "
            f"{report.drift_findings} drift finding(s), {report.resolved} resolved",
            highlight=False,
        )
    scores = latest_scores(db)
    if fmt is not Output.TABLE:
        with db.session(readonly=True) as session:
            names = {c.id: c.name for c in session.exec(select(Connection)).all()}
        score_rows = [
            {
                "tenant": names.get(s.connection_id, str(s.connection_id)),
                "provider": s.provider,
                "category": s.category,
                "score": round(s.score, 1),
                "checks_passed": s.checks_passed,
                "checks_failed": s.checks_failed,
            }
            for s in sorted(scores, key=lambda s: (str(s.connection_id), s.category))
        ]
        emit(score_rows, fmt, title="posture", columns={})
        return
    if not scores:
        console.print(
            "no posture results yet: collect configuration snapshots first (tenantguard collect --once)"
        )
        raise typer.Exit(0)
    with db.session(readonly=True) as session:
        names = {c.id: c.name for c in session.exec(select(Connection)).all()}
    categories = sorted({s.category for s in scores if s.category != "overall"})
    table = Table(title="Posture score (0-100, severity-weighted pass rate)")
    table.add_column("tenant")
    table.add_column("provider")
    table.add_column("overall", justify="right")
    for category in categories:
        table.add_column(category.replace("_", " "), justify="right")
    by_tenant: dict[Any, dict[str, Any]] = defaultdict(dict)
    for score in scores:
        by_tenant[(score.connection_id, score.provider)][score.category] = score
    for (connection_id, provider), cells in sorted(by_tenant.items(), key=lambda item: str(item[0])):
        table.add_row(
            names.get(connection_id, str(connection_id)),
            provider,
            _cell(cells, "overall"),
            *(_cell(cells, c) for c in categories),
        )
    console.print(table)
    if history:
        for connection_id in sorted({cid for cid, _ in by_tenant}, key=str):
            line = score_history(db, connection_id=connection_id, limit=history)
            trend = " → ".join(f"{s.score:.0f}" for s in line)
            console.print(f"{names.get(connection_id, connection_id)}: {trend}", highlight=False)
    if failing:
        with db.session(readonly=True) as session:
            run_ids = {s.run_id for s in scores}
            rows = session.exec(select(PostureResult).where(PostureResult.status == "fail")).all()
        failed = Table(title="Failing checks")
        for column in ("tenant", "check", "severity", "category", "failing objects"):
            failed.add_column(column)
        for row in sorted(
            (r for r in rows if r.run_id in run_ids), key=lambda r: (str(r.connection_id), r.check_id)
        ):
            failed.add_row(
                names.get(row.connection_id, str(row.connection_id)),
                row.check_id,
                row.severity,
                row.category,
                f"{row.objects_failing}/{row.objects_total}" if row.objects_total else "",
            )
        console.print(failed)


# Top-level commands this area adds (name -> function).
COMMANDS: dict[str, Callable[..., Any]] = {"posture": posture}
