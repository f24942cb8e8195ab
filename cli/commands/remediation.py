"""`tenantguard plan INCIDENT` and `tenantguard actions ...`: plan, approve, reject, execute, roll back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.table import Table

from cli.context import cli_actor, console, database, settings

if TYPE_CHECKING:
    from core.audit import Actor

GROUP_NAME = "actions"
app = typer.Typer(
    help="Remediation steps: approve, reject, execute (or dry-run), roll back.", no_args_is_help=True
)

AsOption = Annotated[
    str,
    typer.Option(
        "--as",
        envvar="TENANTGUARD_PRINCIPAL",
        help="Who is acting, e.g. principal:alice (or set TENANTGUARD_PRINCIPAL).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _principal(value: str) -> Actor:
    return cli_actor(value if ":" in value else f"principal:{value}")


def _emit(data: dict[str, Any]) -> None:
    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode())


def _show_plan(plan: Any, as_json: bool) -> None:
    from remediation.demo import plan_table

    if as_json:
        _emit(plan.as_dict())
        return
    console.print(plan_table(plan))
    for line in plan.notes:
        console.print(f"[dim]not planned: {line}[/dim]")


def _show_report(report: Any, as_json: bool, title: str) -> None:
    if as_json:
        _emit(report.as_dict())
        return
    table = Table(title=title)
    for column in ("#", "action", "subject", "outcome", "calls / message"):
        table.add_column(column, overflow="fold")
    for result in report.results:
        calls = [
            ("(not sent) " if not c.sent else "") + c.describe() for c in result.calls if c.kind == "write"
        ]
        table.add_row(
            str(result.action_id),
            result.action,
            result.subject,
            str(result.outcome),
            "\n".join(calls) or result.message,
        )
    console.print(table)


def plan(
    incident: Annotated[int, typer.Argument(help="Incident id.")],
    who: AsOption,
    as_json: JsonOption = False,
) -> None:
    """Propose (or re-plan) the remediation of an incident: ordered steps with reason and risk."""
    from remediation import plan_for_incident

    _show_plan(plan_for_incident(database(), incident, _principal(who)), as_json)


@app.command("list")
def list_steps(
    incident: Annotated[int, typer.Argument(help="Incident id.")], as_json: JsonOption = False
) -> None:
    """Show an incident's stored plan (no re-planning) with approvals and status."""
    from remediation import get_plan

    _show_plan(get_plan(database(), incident), as_json)


@app.command()
def approve(
    action_id: Annotated[int, typer.Argument(help="Step (action) id, from `tenantguard plan`.")],
    who: AsOption,
    comment: Annotated[str, typer.Option(help="Why you approve.")] = "",
) -> None:
    """Approve a step (four eyes: not the principal who asked for the plan)."""
    from remediation import approve as approve_step

    outcome = approve_step(database(), action_id, _principal(who), comment=comment)
    console.print(
        f"action {action_id}: {outcome.status} ({outcome.approvals} of {outcome.approvals_required} approvals)"
    )


@app.command()
def reject(
    action_id: Annotated[int, typer.Argument(help="Step (action) id.")],
    who: AsOption,
    comment: Annotated[str, typer.Option(help="Why you reject.")] = "",
) -> None:
    """Reject a step: it will not run, and the steps that depend on it stop."""
    from remediation import reject as reject_step

    outcome = reject_step(database(), action_id, _principal(who), comment=comment)
    console.print(f"action {action_id}: {outcome.status}")


@app.command()
def execute(
    incident: Annotated[int | None, typer.Argument(help="Run every approved step of this incident.")] = None,
    action: Annotated[
        list[int] | None, typer.Option("--action", "-a", help="Only this step (repeatable).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Make the reads, list the exact writes, change nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Execute approved steps in plan order (idempotent; verified by reading back)."""
    from core.audit import Channel
    from remediation import execute as run
    from remediation.executor import EXECUTOR

    if incident is None and not action:
        raise typer.BadParameter("give an INCIDENT or --action ID")
    report = run(
        database(),
        settings(),
        incident,
        action_ids=action or None,
        dry_run=dry_run,
        actor=replace(EXECUTOR, channel=Channel.CLI),
    )
    _show_report(report, as_json, "Dry run (nothing changed)" if dry_run else "Execution")
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def rollback(
    who: AsOption,
    action_id: Annotated[int | None, typer.Argument(help="Step to undo.")] = None,
    incident: Annotated[
        int | None,
        typer.Option("--incident", help="Undo every reversible step of the incident, newest first."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the exact calls, change nothing.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Roll back succeeded, reversible steps with their inverse actions."""
    from remediation import rollback as undo

    if action_id is None and incident is None:
        raise typer.BadParameter("give an ACTION_ID or --incident")
    report = undo(
        database(), settings(), action_id, incident_id=incident, actor=_principal(who), dry_run=dry_run
    )
    _show_report(report, as_json, "Rollback (dry run)" if dry_run else "Rollback")
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def catalogue(as_json: JsonOption = False) -> None:
    """Every action tenantguard can take: permission, reversibility, blast radius, verification."""
    from remediation import all_actions

    specs = [spec.describe() for spec in all_actions()]
    if as_json:
        _emit({"actions": specs})
        return
    table = Table(title="Remediation actions")
    for column in ("action", "reversible (inverse)", "blast radius", "permission", "verified by"):
        table.add_column(column, overflow="fold")
    for spec in specs:
        reversible = f"yes ({spec['inverse'] or 'ends by itself'})" if spec["reversible"] else "no"
        table.add_row(
            spec["name"], reversible, spec["blast_radius"], spec["permission"], spec["verification"]
        )
    console.print(table)


@app.command()
def playbooks() -> None:
    """The playbooks: what finding types they match and the steps they propose."""
    from remediation.playbooks import load_playbooks

    table = Table(title="Remediation playbooks")
    for column in ("playbook", "steps (phase)"):
        table.add_column(column, overflow="fold")
    for book in load_playbooks(settings().remediation.playbooks_dir):
        table.add_row(
            f"{book.id}\n[dim]{book.title}[/dim]", "\n".join(f"{s.phase}: {s.action}" for s in book.steps)
        )
    console.print(table)


COMMANDS: dict[str, Callable[..., Any]] = {"plan": plan}
