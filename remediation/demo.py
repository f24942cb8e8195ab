"""What `tenantguard demo` shows of remediation: the plan, a second principal approving it, the run.

`demo_flow` only calls the public entry points (plan_for_incident, approve, execute), so what the
demo shows is exactly what the API and CLI do.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from core.audit import Actor
from core.db import Database
from core.models import ActionStatus
from core.settings import Settings
from remediation.approvals import approve
from remediation.errors import Refused
from remediation.executor import ExecutionReport, execute
from remediation.planner import Plan, get_plan, plan_for_incident


@dataclass(frozen=True)
class DemoResult:
    plan: Plan
    dry_run: ExecutionReport
    approved: tuple[int, ...]
    refused: tuple[str, ...]
    report: ExecutionReport | None
    final: Plan


def plan_table(plan: Plan, title: str | None = None) -> Table:
    table = Table(title=title or f"Remediation plan for incident #{plan.incident_id}", show_lines=False)
    for column in ("#", "phase", "action", "subject", "risk", "approvals", "status", "why"):
        table.add_column(column, overflow="fold")
    for step in plan.steps:
        table.add_row(
            str(step.id),
            step.phase,
            step.action,
            step.subject,
            step.risk.split(":")[0],
            f"{len(step.approved_by)}/{step.approvals_required}",
            step.status,
            step.reason,  # the approver reads the whole reason (folded, never cut)
        )
    return table


def report_table(report: ExecutionReport, title: str) -> Table:
    table = Table(title=title)
    for column in ("#", "action", "subject", "outcome", "calls"):
        table.add_column(column, overflow="fold")
    for result in report.results:
        writes = [c.describe() for c in result.calls if c.kind == "write"]
        table.add_row(
            str(result.action_id),
            result.action,
            result.subject,
            str(result.outcome),
            "\n".join(writes) or result.message,
        )
    return table


def demo_flow(
    db: Database,
    settings: Settings | None,
    incident_id: int,
    *,
    requested_by: Actor,
    approve_as: Actor | None = None,
    console: Console | None = None,
    phases: tuple[str, ...] = ("contain", "eradicate"),
) -> DemoResult:
    """Plan the incident, show the dry run; with `approve_as`, approve the steps of `phases` as that
    principal (someone other than `requested_by`) and execute. Recovery steps (re-enabling an
    account) are left for a human who has talked to the owner; steps needing more approvers stay
    pending — as they should."""
    plan = plan_for_incident(db, incident_id, requested_by)
    dry = execute(db, settings, incident_id, dry_run=True)
    if console:
        console.print(plan_table(plan))
        for line in plan.notes:
            console.print(f"  [dim]not planned: {line}[/dim]")
        console.print(report_table(dry, "Dry run: the exact calls the approved plan would make"))
    approved: list[int] = []
    refused: list[str] = []
    report = None
    if approve_as:
        for step in plan.steps:
            if step.status != ActionStatus.PROPOSED or step.phase not in phases:
                continue
            try:
                approve(db, step.id, approve_as, comment="approved in the demo")
                approved.append(step.id)
            except Refused as exc:
                refused.append(f"#{step.id}: {exc}")
        report = execute(db, settings, incident_id)
        if console:
            console.print(f"approved {len(approved)} step(s) as {approve_as}")
            for line in refused:
                console.print(f"  [yellow]refused[/yellow] {line}")
            console.print(report_table(report, "Execution"))
    final = get_plan(db, incident_id)
    if console and approve_as:
        console.print(plan_table(final, f"Plan of incident #{incident_id} after execution"))
    return DemoResult(plan, dry, tuple(approved), tuple(refused), report, final)
