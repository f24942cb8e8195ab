"""`tenantguard demo`: the whole product against the built-in simulator, on embedded SQLite.

For each scenario: start the simulator (in its own process, on loopback), connect its tenants,
run the cycle (`pipeline.run_cycle`, the same stages `serve` runs: collect every stream,
detection, posture, identity, incidents, approved remediation steps), plan
the remediation of the P1/P2 incidents — and, with ``--approve-as``, approve the plan as a second
principal and execute it against the simulator. Each scenario gets its own SQLite file under
``<data dir>/demo/<scenario>/`` so scenarios never mix people; re-running starts afresh.

What it prints per scenario is short: live progress while it collects and runs each stage, then
the findings and incidents in a few lines and where to look next (``--details`` prints every
incident's timeline, the plans and the compliance table too). The simulator's secrets are kept as
files in the scenario's data dir (``simulator-secrets/``, 0600) with a ``connections.toml`` beside
them, so nothing the database references lives only in this process's environment; with
``--keep-simulator`` the last scenario's simulator stays up so ``connections test``, ``actions
execute``/``rollback`` and ``serve`` work against it from another terminal.
"""

from __future__ import annotations

import io
import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlmodel import col, select

from cli import demo_oncall, demo_response, demo_sso
from cli.context import console, settings
from cli.demo_progress import DemoProgress
from core.audit import Actor, AuditAction, Channel, record, verify_database
from core.db import Database
from core.models import ApiPrincipal, Finding, Incident, Role
from core.settings import Settings
from timeline.quality import score_against_truth

ANALYST = "demo-analyst"
APPROVER = "demo-approver"
DEFAULT_SCENARIOS = (
    "account_takeover",
    "oauth_consent_phishing",
    "insider_exfiltration",
    "admin_privilege_abuse",
    "slack_session_theft",
    "okta_mfa_fatigue",
    "token_theft",
    "slack_guest_exfiltration",
    "google_delegated_admin",
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
    contained: int = 0  # incidents contained on their own by the executed plan
    failed_streams: list[str] = field(default_factory=list)
    data_dir: Path | None = None
    seconds: float = 0.0
    audit_records: int = 0
    audit_ok: bool = False
    audit_checkpoints: int = 0  # signed by the cycle's audit_checkpoint stage
    against_truth: str = ""  # the incidents scored against the simulator's ground truth


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


def _print_retention(db: Database, urgent: list[Incident]) -> None:
    """One line: how long each data class is kept, and the legal holds in force (the first urgent
    incident is put on hold, as a compliance officer would to preserve it for an investigation)."""
    from compliance.holds import HoldKind, active_holds, place_hold
    from compliance.retention import periods
    from core.durations import format_duration

    if urgent and urgent[0].id is not None:
        with db.session() as session:
            place_hold(
                session,
                HoldKind.INCIDENT,
                str(urgent[0].id),
                reason="demo: preserved for the investigation",
                actor=Actor("principal:demo-compliance", Channel.CLI),
                role="compliance_officer",
            )

    kept = ", ".join(
        f"{name.value} {format_duration(period) if period.total_seconds() else 'for ever'}"
        for name, period in periods(db.settings).items()
    )
    with db.session(readonly=True) as session:
        holds = [f"{h.kind} {h.target}" for h in active_holds(session)]
    console.print(
        f"retention (TENANTGUARD_RETENTION_*): {kept}; legal holds in force: {', '.join(holds) or 'none'}"
        " (tenantguard compliance holds)",
        highlight=False,
    )


def _run_cycle(db: Database, demo_settings: Settings, outcome: ScenarioOutcome) -> None:
    """The cycle's stages in order, as `pipeline.run_cycle` runs them, with live progress: the
    collection stream by stream, then each later stage."""
    from collectors import collect_once
    from pipeline.cycle import Cycle

    cycle = Cycle(db, demo_settings)
    ctx = cycle.context(max_batches=None, notify=False)
    with DemoProgress(console) as progress:
        report = collect_once(db, demo_settings, progress=progress)
        outcome.events = report.records_new
        outcome.failed_streams = [f"{r.connection}/{r.stream}: {r.error}" for r in report.results if r.error]
        outcome.failed_streams += [f"{name}: {error}" for name, error in report.connection_errors.items()]
        progress.collected(report.records_new, len(report.results), len(outcome.failed_streams))
        errors: list[str] = []
        for stage in cycle.stages:
            if stage.name == "collect":
                continue
            progress.stage_started(stage.name)
            result = cycle.run_stage(stage, ctx)
            progress.stage_finished(stage.name, result.counts)
            errors += [f"{stage.name}: {e}" for e in result.errors]
    for line in outcome.failed_streams[:5]:
        console.print(Text(f"  collection failed: {line}", style="yellow"))
    for error in errors[:5]:
        console.print(Text(f"  {error}", style="yellow"))


def _against_truth(quality: dict[str, Any]) -> str:
    """What `timeline.quality.score_against_truth` found, in one line (bench.timeline_quality's figures)."""
    mttd = quality["mttd_from_readable_seconds"]
    per_thousand = quality["incidents_per_1000_users_week"]
    return (
        f"{quality['in_one_p1_p2_incident']} of {quality['stories']} stories one P1/P2 incident, "
        f"{quality['stories_split']} split / {quality['stories_merged']} merged, "
        f"{quality['decoys']['with_incident']} of {quality['decoys']['count']} decoys raised, "
        f"{'—' if per_thousand is None else per_thousand} incidents per 1,000 users a week, "
        f"MTTD from readable {'—' if mttd is None else f'{mttd:.0f} s'}"
    )


def _impact_note(incident: Incident) -> str:
    impact = (incident.priority_factors or {}).get("impact")
    return f", customer impact {impact['score']:g} {impact['band']}" if impact else ""


def _next_steps(outcome: ScenarioOutcome, urgent: list[Incident]) -> None:
    where = f"TENANTGUARD_DATA_DIR={outcome.data_dir}"
    console.print("next:", style="bold")
    if urgent:
        first = urgent[0].id
        console.print(f"  {where} tenantguard incidents show {first}", highlight=False, markup=False)
        console.print(f"  {where} tenantguard report incident {first}", highlight=False, markup=False)
    console.print(f"  {where} tenantguard incidents list", highlight=False, markup=False)
    url = settings().public_url
    console.print(
        f"  {where} tenantguard serve   # the API at {url}/docs, the status page at {url}/status",
        highlight=False,
        markup=False,
    )
    console.print(
        f"  {where} tenantguard principals create you --role admin   # a token to sign in to the "
        f"console at {url}/console (incidents, approvals, on-call, posture, compliance, audit)",
        highlight=False,
        markup=False,
    )


def _wait_for_interrupt(sim_url: str | None, data_dir: Path) -> None:
    console.print(
        f"simulator still serving at {sim_url}; in another terminal: TENANTGUARD_DATA_DIR={data_dir} "
        "tenantguard connections test | actions execute N | serve — Ctrl-C here stops it",
        highlight=False,
        markup=False,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        console.print("simulator stopped")


def run_scenario(
    scenario: str,
    base: Path,
    *,
    approve_as: str | None,
    users: int | None,
    days: int | None,
    details: bool,
    verbose: bool = False,
    keep_simulator: bool = False,
) -> ScenarioOutcome:
    """One scenario end to end. `details`: plan (and with `approve_as` execute) the P1/P2
    incidents; `verbose`: print them in full; `keep_simulator`: serve until Ctrl-C afterwards."""
    from cli.commands.incidents import print_incident
    from collectors.connections import sync_connections
    from collectors.simulator_link import write_connections_file
    from remediation import demo_flow
    from remediation.executor import Outcome
    from simulator.handle import spawn
    from timeline.containment import contain_when_done

    outcome = ScenarioOutcome(scenario)
    began = time.perf_counter()
    demo_settings = _fresh_settings(base, scenario)
    outcome.data_dir = demo_settings.data_dir
    db = Database.from_settings(demo_settings)
    db.upgrade()
    _ensure_principals(db, demo_settings)
    console.rule(f"[bold]scenario {scenario}[/bold]")
    with spawn(scenario, users=users, days=days) as sim:  # its own process: a core of its own
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
        # secrets as files in the scenario's data dir (not this process's environment), so the
        # database stays usable by any later process: connections test, execute, rollback, serve
        definitions = write_connections_file(
            sim.info,
            demo_settings.data_dir / "connections.toml",
            name_prefix=scenario.replace("_", "-"),
            conversations=True,
        )
        sync_connections(db, definitions, actor=Actor.system("demo"), source="demo")
        demo_oncall.configure(db, demo_settings, sim.info, Actor.system("demo"))
        demo_response.configure(demo_settings, sim.info)
        _run_cycle(db, demo_settings, outcome)
        outcome.against_truth = _against_truth(score_against_truth(db, sim.truth))
        console.print(f"against the simulator's ground truth: {outcome.against_truth}", highlight=False)
        with db.session(readonly=True) as session:
            outcome.findings = Counter(f.severity for f in session.exec(select(Finding)).all())
            incidents = list(
                session.exec(select(Incident).order_by(col(Incident.priority), col(Incident.id))).all()
            )
        outcome.incidents = Counter(i.priority for i in incidents)
        urgent = [i for i in incidents if i.priority in ("P1", "P2")]
        console.print(
            f"findings: {outcome.findings['critical']} critical, {outcome.findings['high']} high, "
            f"{outcome.findings['medium']} medium → incidents "
            + " · ".join(f"{p} {outcome.incidents[p]}" for p in ("P1", "P2", "P3", "P4")),
            highlight=False,
        )
        for incident in urgent:
            console.print(
                Text.assemble(
                    "  ",
                    (incident.priority, "bold red"),
                    f" #{incident.id} {incident.title} "
                    f"({incident.finding_count} findings, {incident.message_count} messages"
                    + _impact_note(incident)
                    + ")",
                )
            )
        if verbose:
            _print_incidents(db)
            _print_compliance(db)
        _print_retention(db, urgent)
        demo_oncall.show(db, demo_settings, Actor(f"principal:{ANALYST}", Channel.CLI), sim.info)
        demo_sso.show(sim.info, settings().public_url)
        demo_response.show(
            db,
            demo_settings,
            sim.info,
            Actor(f"principal:{ANALYST}", Channel.CLI),
            Actor(f"principal:{APPROVER}", Channel.CLI),
        )
        quiet = Console(file=io.StringIO())  # the plan tables only with --details
        for incident in urgent if details else []:
            assert incident.id is not None
            if verbose:
                print_incident(incident.id, db=db, limit=40)
            result = demo_flow(
                db,
                demo_settings,
                incident.id,
                requested_by=Actor(f"principal:{ANALYST}", Channel.CLI),
                approve_as=Actor(f"principal:{approve_as}", Channel.CLI) if approve_as else None,
                console=console if verbose else quiet,
            )
            outcome.planned_steps += len(result.plan.steps)
            if result.report is not None:
                outcome.executed_steps += len(result.report.by_outcome(Outcome.SUCCEEDED))
                if contain_when_done(db, [incident.id]):
                    outcome.contained += 1
                    console.print(
                        f"  #{incident.id} contained: every containment step executed and verified",
                        highlight=False,
                    )
        if outcome.planned_steps:
            console.print(
                f"remediation: {outcome.planned_steps} step(s) planned, {outcome.executed_steps} executed"
                + (f", {outcome.contained} incident(s) contained" if approve_as else "")
                + ("" if approve_as else f" (approve and execute with --approve-as {APPROVER})"),
                highlight=False,
            )
        if approve_as and sim.changes:
            console.print(f"the simulator recorded {len(sim.changes)} change(s) made by the approved plan")
        _next_steps(outcome, urgent)
        if keep_simulator:
            _wait_for_interrupt(sim.info.get("admin_url"), demo_settings.data_dir)
    from core.audit_keys import TrustedKeys, load_signing_key, public_raw

    trusted = TrustedKeys.of([public_raw(load_signing_key(demo_settings.signing_key_path))])
    with db.session(readonly=True) as session:
        verified = verify_database(session, trusted=trusted)
    outcome.audit_records, outcome.audit_ok = verified.records, verified.ok
    outcome.audit_checkpoints = verified.checkpoints
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
        "against the ground truth",
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
            o.against_truth,
            str(o.planned_steps),
            str(o.executed_steps),
            f"{o.audit_records} records, {'verified' if o.audit_ok else 'BROKEN'}, "
            f"{o.audit_checkpoints} signed",
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
    verbose: bool = False,
    keep_simulator: bool = False,
) -> list[ScenarioOutcome]:
    base = settings().data_dir / "demo"
    chosen = scenarios or list(DEFAULT_SCENARIOS)
    if approve_as is not None and approve_as == ANALYST:
        raise ValueError(f"--approve-as must be someone other than the requester {ANALYST!r} (four eyes)")
    outcomes = [
        run_scenario(
            name,
            base,
            approve_as=approve_as,
            users=users,
            days=days,
            details=details,
            verbose=verbose,
            keep_simulator=keep_simulator and name == chosen[-1],
        )
        for name in chosen
    ]
    _summary(outcomes)
    console.print(
        f"databases under {base} (one per scenario); look around with e.g. "
        f"TENANTGUARD_DATA_DIR={base / chosen[0]} tenantguard incidents list",
        highlight=False,
        markup=False,
    )
    if not approve_as:
        console.print(
            f"run again with --approve-as {APPROVER} to approve the plans as a second person and execute them"
        )
    return outcomes
