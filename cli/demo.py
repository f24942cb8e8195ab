"""`tenantguard demo`: the whole product against the built-in simulator, on embedded SQLite.

For each scenario: start the simulator (in this process, on loopback), connect its three tenants,
run the cycle (`pipeline.run_cycle`, the same stages `serve` runs: collect every stream,
detection, posture, identity, incidents, approved remediation steps), plan
the remediation of the P1/P2 incidents — and, with ``--approve-as``, approve the plan as a second
principal and execute it against the simulator. Each scenario gets its own SQLite file under
``<data dir>/demo/`` so scenarios never mix people; re-running starts afresh.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table
from sqlmodel import col, select

from cli import demo_oncall, demo_response
from cli.context import console, settings
from core.audit import Actor, AuditAction, Channel, record, verify_database
from core.db import Database
from core.models import ApiPrincipal, Finding, Incident, Role
from core.settings import Settings

ANALYST = "demo-analyst"
APPROVER = "demo-approver"
DEFAULT_SCENARIOS = (
    "account_takeover",
    "oauth_consent_phishing",
    "insider_exfiltration",
    "admin_privilege_abuse",
    "slack_session_theft",
    "quiet_week",
)


@dataclass
class ScenarioOutcome:
    scenario: str
    events: int = 0
    findings: Counter[str] = field(default_factory=Counter)
    incidents: Counter[str] = field(default_factory=Counter)
    planned_steps: int = 0
    executed_steps: int = 0
    seconds: float = 0.0
    audit_records: int = 0
    audit_ok: bool = False


def _fresh_settings(base: Path, scenario: str) -> Settings:
    data_dir = base / scenario
    shutil.rmtree(data_dir, ignore_errors=True)
    return Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'tenantguard.db'}")


def _ensure_principals(db: Database, demo_settings: Settings) -> None:
    """The analyst who asks for remediation and the approver who is someone else (four eyes)."""
    from api.principals.service import create_principal
    from api.tokens import load_pepper

    pepper = load_pepper(demo_settings, demo_settings.api)
    with db.session(readonly=True) as session:
        existing = set(session.exec(select(ApiPrincipal.name)).all())
    for name, role in ((ANALYST, Role.ANALYST), (APPROVER, Role.APPROVER)):
        if name not in existing:
            create_principal(db, pepper, name=name, role=role, actor=Actor.system("demo"))


def _print_incidents(db: Database) -> list[Incident]:
    with db.session(readonly=True) as session:
        incidents = list(
            session.exec(select(Incident).order_by(col(Incident.priority), col(Incident.id))).all()
        )
    table = Table(title="Incidents", show_lines=False)
    for column in ("#", "priority", "severity", "title", "people"):
        table.add_column(column, overflow="fold")
    for incident in incidents:
        people = ", ".join((incident.entities or {}).get("people", [])[:3])
        table.add_row(str(incident.id), incident.priority, incident.severity, incident.title, people)
    console.print(table)
    return incidents


def _print_compliance(db: Database) -> None:
    """Each framework's controls as the posture the cycle just read stands against them."""
    from compliance.frameworks import Framework
    from compliance.report import build_report

    table = Table(title="compliance (tenantguard report compliance --framework F)")
    for column in ("framework", "controls mapped", "pass", "fail", "excepted", "not assessed"):
        table.add_column(column)
    with db.session(readonly=True) as session:
        for framework in Framework:
            summary = build_report(session, framework).summary
            table.add_row(
                framework.value,
                f"{summary['controls_mapped']} of {summary['controls_in_catalogue']}",
                str(summary["pass"]),
                str(summary["fail"]),
                str(summary["excepted"]),
                str(summary["not_assessed"]),
            )
    console.print(table)


def run_scenario(
    scenario: str,
    base: Path,
    *,
    approve_as: str | None,
    users: int | None,
    days: int | None,
    details: bool,
) -> ScenarioOutcome:
    from cli.commands.incidents import print_incident
    from collectors import connections_from_simulator
    from collectors.connections import sync_connections
    from pipeline import run_cycle
    from remediation import demo_flow
    from remediation.executor import Outcome
    from simulator.handle import start

    outcome = ScenarioOutcome(scenario)
    began = time.perf_counter()
    demo_settings = _fresh_settings(base, scenario)
    db = Database.from_settings(demo_settings)
    db.upgrade()
    _ensure_principals(db, demo_settings)
    console.rule(f"[bold]scenario {scenario}[/bold]")
    with start(scenario=scenario, users=users, days=days) as sim:
        with db.session() as session:
            record(
                session,
                actor=Actor.system("demo"),
                action=AuditAction.DEMO_SCENARIO_LOADED,
                object_type="demo",
                object_id=scenario,
                details={
                    "simulator": sim.info.get("admin_url"),
                    "truth_stories": len(sim.truth.get("stories", [])),
                },
            )
        definitions = connections_from_simulator(
            sim.info, name_prefix=scenario.replace("_", "-"), conversations=True
        )
        sync_connections(db, definitions, actor=Actor.system("demo"), source="demo")
        demo_oncall.configure(db, demo_settings, sim.info, Actor.system("demo"))
        demo_response.configure(demo_settings, sim.info)
        cycle = run_cycle(db, demo_settings, notify=False)
        collection = cycle.of("collect")
        failed = collection.errors if collection is not None else []
        outcome.events = cycle.count("collect", "events")
        console.print(
            f"collected {outcome.events:,} events and snapshots from {cycle.count('collect', 'streams')} streams"
            + (f" — [yellow]{len(failed)} stream(s) failed[/]: " + "; ".join(failed) if failed else "")
        )
        console.print(
            "cycle: "
            + "; ".join(
                f"{r.stage} " + (", ".join(f"{v:,} {k}" for k, v in r.counts.items()) or "nothing new")
                for r in cycle.results
                if r.stage != "collect"
            ),
            highlight=False,
        )
        for error in [e for e in cycle.errors if not e.startswith("collect:")][:10]:
            console.print(f"[yellow]{error}[/yellow]", highlight=False)
        with db.session(readonly=True) as session:
            outcome.findings = Counter(f.severity for f in session.exec(select(Finding)).all())
        incidents = _print_incidents(db)
        _print_compliance(db)
        demo_oncall.show(db, demo_settings, Actor(f"principal:{ANALYST}", Channel.CLI))
        demo_response.show(
            db,
            demo_settings,
            sim.info,
            Actor(f"principal:{ANALYST}", Channel.CLI),
            Actor(f"principal:{APPROVER}", Channel.CLI),
        )
        outcome.incidents = Counter(i.priority for i in incidents)
        urgent = [i for i in incidents if i.priority in ("P1", "P2")]
        for incident in urgent if details else []:
            assert incident.id is not None
            print_incident(incident.id, db=db, limit=40)
            result = demo_flow(
                db,
                demo_settings,
                incident.id,
                requested_by=Actor(f"principal:{ANALYST}", Channel.CLI),
                approve_as=Actor(f"principal:{approve_as}", Channel.CLI) if approve_as else None,
                console=console,
            )
            outcome.planned_steps += len(result.plan.steps)
            if result.report is not None:
                outcome.executed_steps += len(result.report.by_outcome(Outcome.SUCCEEDED))
        if approve_as and sim.changes:
            console.print(f"the simulator recorded {len(sim.changes)} change(s) made by the approved plan")
    with db.session(readonly=True) as session:
        verified = verify_database(session)
    outcome.audit_records, outcome.audit_ok = verified.records, verified.ok
    outcome.seconds = time.perf_counter() - began
    db.dispose()
    return outcome


def _summary(outcomes: list[ScenarioOutcome]) -> None:
    table = Table(title="Demo summary")
    for column in (
        "scenario",
        "events",
        "findings (crit/high/med)",
        "incidents P1/P2/P3/P4",
        "plan steps",
        "executed",
        "audit",
        "seconds",
    ):
        table.add_column(column)
    for o in outcomes:
        table.add_row(
            o.scenario,
            f"{o.events:,}",
            f"{o.findings['critical']}/{o.findings['high']}/{o.findings['medium']}",
            "/".join(str(o.incidents[p]) for p in ("P1", "P2", "P3", "P4")),
            str(o.planned_steps),
            str(o.executed_steps),
            f"{o.audit_records} records, {'verified' if o.audit_ok else 'BROKEN'}",
            f"{o.seconds:.1f}",
        )
    console.print(table)


def run_demo(
    scenarios: list[str] | None = None,
    *,
    approve_as: str | None = None,
    users: int | None = None,
    days: int | None = None,
    details: bool = True,
) -> list[ScenarioOutcome]:
    base = settings().data_dir / "demo"
    chosen = scenarios or list(DEFAULT_SCENARIOS)
    if approve_as is not None and approve_as == ANALYST:
        raise ValueError(f"--approve-as must be someone other than the requester {ANALYST!r} (four eyes)")
    outcomes = [
        run_scenario(name, base, approve_as=approve_as, users=users, days=days, details=details)
        for name in chosen
    ]
    _summary(outcomes)
    console.print(
        f"databases under {base}; look around with e.g. "
        f"TENANTGUARD_DATA_DIR={base / chosen[0]} tenantguard incidents list"
    )
    if not approve_as:
        console.print(
            f"run again with --approve-as {APPROVER} to approve the plans as a second person and execute them"
        )
    return outcomes
