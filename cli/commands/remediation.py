"""`tenantguard plan INCIDENT` and `tenantguard actions ...`: plan, approve, reject, execute, roll back."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.table import Table

from cli.context import console, database, err_console, settings

if TYPE_CHECKING:
    from core.audit import Actor
    from core.db import Database

GROUP_NAME = "actions"
app = typer.Typer(
    help="Remediation steps: approve, reject, execute (or dry-run), roll back.", no_args_is_help=True
)

AsOption = Annotated[
    str | None,
    typer.Option(
        "--as",
        envvar="TENANTGUARD_PRINCIPAL",
        help="The principal you act as, e.g. principal:alice: checked against your credentials, never "
        "taken on trust (TENANTGUARD_PRINCIPAL).",
    ),
]
TokenFileOption = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        help="A file holding your API token (else TENANTGUARD_TOKEN, else the one `tenantguard login` stored).",
        exists=True,
        dir_okay=False,
    ),
]
LocalOption = Annotated[
    bool,
    typer.Option(
        "--local-operator",
        envvar="TENANTGUARD_LOCAL_OPERATOR",
        help="Act unauthenticated as local:<os user> (recorded as such; never counts as an approver).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _person(db: Database, who: str | None, token_file: Path | None, local: bool) -> Actor:
    from cli.identity import acting_person

    return acting_person(db, who, token_file=token_file, local=local)


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
    who: AsOption = None,
    token_file: TokenFileOption = None,
    local: LocalOption = False,
    as_json: JsonOption = False,
) -> None:
    """Propose (or re-plan) the remediation of an incident: ordered steps with reason and risk."""
    from remediation import plan_for_incident

    db = database()
    _show_plan(plan_for_incident(db, incident, _person(db, who, token_file, local)), as_json)


@app.command("list")
def list_steps(
    incident: Annotated[int, typer.Argument(help="Incident id.")], as_json: JsonOption = False
) -> None:
    """Show an incident's stored plan (no re-planning) with approvals and status."""
    from remediation import get_plan

    _show_plan(get_plan(database(), incident), as_json)


FingerprintOption = Annotated[
    str | None,
    typer.Option(
        "--fingerprint",
        help="The step's fingerprint as you reviewed it (`actions list --json`, 16+ hex digits); "
        "without it, the step is shown and the decision is bound to the version shown.",
    ),
]


def _seen(db: Database, action_id: int, fingerprint: str | None) -> str:
    """The version the decision is bound to: the one given, or the one printed here and now."""
    from core.models import RemediationAction
    from remediation import get_plan
    from remediation.errors import ActionNotFound

    if fingerprint is not None:
        value = fingerprint.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{16,64}", value):
            raise typer.BadParameter(
                "expected 16 to 64 hex digits of the step's fingerprint", param_hint="--fingerprint"
            )
        return value
    with db.session(readonly=True) as session:
        row = session.get(RemediationAction, action_id)
        if row is None or row.incident_id is None:
            raise ActionNotFound(
                f"no remediation action {action_id}; `tenantguard plan INCIDENT` lists the steps"
            )
        incident_id = row.incident_id
    step = get_plan(db, incident_id).step_by_id(action_id)
    params = orjson.dumps(step.params, option=orjson.OPT_SORT_KEYS).decode()
    console.print(
        f"step {step.id} version {step.version} ({step.fingerprint[:16]}): {step.title} — {step.subject}; "
        f"params {params}; requested by {step.requested_by}",
        markup=False,
        highlight=False,
    )
    return step.fingerprint


@app.command()
def approve(
    action_id: Annotated[int, typer.Argument(help="Step (action) id, from `tenantguard plan`.")],
    who: AsOption = None,
    token_file: TokenFileOption = None,
    fingerprint: FingerprintOption = None,
    comment: Annotated[str, typer.Option(help="Why you approve.")] = "",
) -> None:
    """Approve a step (four eyes: not the person who asked for it; a token or SSO login is required)."""
    from remediation import approve as approve_step

    db = database()
    actor = _person(db, who, token_file, False)
    seen = _seen(db, action_id, fingerprint)
    outcome = approve_step(db, action_id, actor, comment=comment, seen=seen)
    console.print(
        f"action {action_id}: {outcome.status} ({outcome.approvals} of {outcome.approvals_required} approvals)"
        f" — approved by {actor.name}",
        markup=False,
    )


@app.command()
def reject(
    action_id: Annotated[int, typer.Argument(help="Step (action) id.")],
    who: AsOption = None,
    token_file: TokenFileOption = None,
    local: LocalOption = False,
    fingerprint: FingerprintOption = None,
    comment: Annotated[str, typer.Option(help="Why you reject.")] = "",
) -> None:
    """Reject a step: it will not run, and the steps that depend on it stop."""
    from remediation import reject as reject_step

    db = database()
    actor = _person(db, who, token_file, local)
    seen = _seen(db, action_id, fingerprint)
    outcome = reject_step(db, action_id, actor, comment=comment, seen=seen)
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
    who: AsOption = None,
    token_file: TokenFileOption = None,
    local: LocalOption = False,
    as_json: JsonOption = False,
) -> None:
    """Execute approved steps in plan order (idempotent; verified by reading back); records who ran them."""
    from remediation import execute as run

    if incident is None and not action:
        raise typer.BadParameter("give an INCIDENT or --action ID")
    db = database()
    report = run(
        db,
        settings(),
        incident,
        action_ids=action or None,
        dry_run=dry_run,
        actor=_person(db, who, token_file, local),
    )
    _show_report(report, as_json, "Dry run (nothing changed)" if dry_run else "Execution")
    if not dry_run:
        from timeline.containment import contain_when_done

        for contained in contain_when_done(db):
            err_console.print(
                f"incident {contained}: contained (every containment step executed and verified)"
            )
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def rollback(
    who: AsOption = None,
    token_file: TokenFileOption = None,
    local: LocalOption = False,
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
    db = database()
    actor = _person(db, who, token_file, local)
    report = undo(db, settings(), action_id, incident_id=incident, actor=actor, dry_run=dry_run)
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
