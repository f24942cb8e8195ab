"""`tenantguard collect`, `tenantguard ingest` and `tenantguard connections ...`."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from cli.context import cli_actor, console, database, err_console, settings
from cli.output import JsonOption, Output, OutputOption, chosen, emit, print_json

GROUP_NAME = "connections"
app = typer.Typer(
    help="Connected tenants: list, sync from the connections file, test, enable/disable.",
    no_args_is_help=True,
)


def collect(
    once: Annotated[bool, typer.Option("--once", help="Run every enabled stream once, then exit.")] = False,
    connection: Annotated[
        list[str] | None, typer.Option("--connection", "-c", help="Only this connection (repeatable).")
    ] = None,
    stream: Annotated[
        list[str] | None, typer.Option("--stream", "-s", help="Only this stream (repeatable).")
    ] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show live progress.")] = True,
) -> None:
    """Collect events, snapshots and conversations: one pass with --once, else run on a schedule."""
    from collectors.progress import RichProgress

    db = database()
    if once:
        from collectors import collect_once

        if progress:
            with RichProgress(err_console) as sink:
                report = collect_once(db, settings(), connections=connection, streams=stream, progress=sink)
        else:
            report = collect_once(db, settings(), connections=connection, streams=stream)
        _print_report(report)
        if not report.ok:
            raise typer.Exit(1)
        return
    _run_scheduler(db, progress)


def _print_report(report: Any) -> None:
    table = Table(title="collection", show_lines=False)
    for column in (
        "connection",
        "stream",
        "status",
        "pages",
        "read",
        "new",
        "snapshot rows",
        "quarantined",
        "seconds",
    ):
        table.add_column(column)
    for r in report.results:
        style = "" if r.ok else "red"
        table.add_row(
            r.connection,
            r.stream,
            f"[{style}]{r.status}[/{style}]" if style else str(r.status),
            str(r.pages),
            str(r.records_read),
            str(r.records_new),
            str(r.snapshot_rows),
            str(r.quarantined),
            f"{r.seconds:.1f}",
        )
    console.print(table)
    for r in report.failures:
        err_console.print(f"[red]FAILED[/red] {r.connection}/{r.stream}: {r.error}", highlight=False)
    for name, problem in report.connection_errors.items():
        err_console.print(f"[red]FAILED[/red] {name}: {problem}", highlight=False)
    console.print(report.summary())


def _run_scheduler(db: Any, progress: bool) -> None:
    from collectors.scheduler import build_scheduler

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    scheduler = build_scheduler(db, settings())
    scheduler.start()
    jobs = [j for j in scheduler.get_jobs() if j.id.startswith("collect:")]
    console.print(f"collecting {len(jobs)} streams on their intervals; Ctrl-C to stop")
    try:
        stop.wait()
    finally:
        scheduler.shutdown(wait=True)


def ingest(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Exported logs: JSON array, JSON Lines, an API page (value/records/items/entries) or CSV."
        ),
    ],
    provider: Annotated[str, typer.Option("--provider", "-p", help="m365, google or slack")],
    stream: Annotated[str, typer.Option("--stream", "-s", help="e.g. signins, login, audit")],
    connection: Annotated[
        str | None,
        typer.Option("--connection", "-c", help="Attach to this connection (default ingest:<provider>)."),
    ] = None,
    detect: Annotated[bool, typer.Option("--detect/--no-detect", help="Run detection afterwards.")] = True,
    incidents: Annotated[
        bool,
        typer.Option(
            "--incidents/--no-incidents", help="After detection, resolve people and build incidents."
        ),
    ] = True,
) -> None:
    """Load exported logs through the collectors' normalisers and on into detection and incidents."""
    from collectors.ingest import ingest_files
    from detectors.pipeline import detect_new

    db = database()
    report = ingest_files(db, provider=provider, stream=stream, files=files, connection=connection)
    console.print(
        f"{report.files} file(s), {report.records} records: {report.events_new} new events, "
        f"{report.duplicates} already stored, {report.quarantined} quarantined (connection {report.connection})"
    )
    for problem in report.problems:
        err_console.print(f"[yellow]quarantined[/yellow] {problem}", highlight=False)
    if detect and report.events_new:
        console.print(f"detection: {detect_new(db, settings())}")
        if incidents:
            from identity import resolve_people
            from timeline import build_incidents

            resolve_people(db)
            changed = build_incidents(db, settings(), notify=False)
            console.print(f"incidents: {len(changed)} created or changed (see tenantguard incidents list)")
    if report.quarantined:
        raise typer.Exit(2)


COMMANDS: dict[str, Callable[..., Any]] = {"collect": collect, "ingest": ingest}


@app.command("list")
def connections_list(output: OutputOption = Output.TABLE, as_json: JsonOption = False) -> None:
    """Connections with their health and each stream's health and checkpoint time."""
    from sqlmodel import select

    from collectors.connections import describe
    from core.models import Connection
    from core.models.connection import Checkpoint

    with database().session(readonly=True) as session:
        connections = session.exec(select(Connection).order_by(Connection.name)).all()
        checkpoints = session.exec(select(Checkpoint)).all()
    rows = []
    for c in connections:
        streams = sorted((cp for cp in checkpoints if cp.connection_id == c.id), key=lambda cp: cp.stream)
        rows.append(
            {
                **describe(c),
                "health_shown": c.health + (f": {c.health_reason[:80]}" if c.health_reason else ""),
                "streams": [
                    f"{cp.stream}={cp.health}" + (f" ({cp.health_reason[:60]})" if cp.health_reason else "")
                    for cp in streams
                ],
            }
        )
    fmt = chosen(output, as_json)
    if fmt is not Output.TABLE:
        for row in rows:
            row.pop("health_shown")
    emit(
        rows,
        fmt,
        title="connections",
        columns={
            "name": "name",
            "provider": "provider",
            "enabled": "enabled",
            "source": "source",
            "health_shown": "health",
            "streams": "streams (health)",
        },
    )


@app.command("sync")
def connections_sync(
    file: Annotated[
        Path | None, typer.Argument(help="Connections file (default: TENANTGUARD_CONNECTIONS_FILE).")
    ] = None,
) -> None:
    """Create/update connections from a TOML or YAML file (secrets as env:/file: references)."""
    from collectors.connections import sync_connections_file

    path = file or settings().connections_file
    if path is None:
        raise typer.BadParameter("give a FILE or set TENANTGUARD_CONNECTIONS_FILE")
    outcome = sync_connections_file(database(), path, actor=cli_actor(permission="connections:write"))
    for name, what in sorted(outcome.items()):
        console.print(f"{name}: {what}")


@app.command("test")
def connections_test(
    names: Annotated[
        list[str] | None, typer.Argument(help="Connections to test (default: all enabled).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check each connection's credentials and permissions; print what is missing."""
    from collectors.connections import check_connection, sync_connections_file
    from collectors.runner import select_connections

    db = database()
    connections_file = settings().connections_file
    if connections_file:
        sync_connections_file(db, connections_file, actor=cli_actor(permission="connections:write"))
    chosen = select_connections(db, names)
    if names and len(chosen) < len(names):
        unknown = set(names) - {c.name for c in chosen}
        raise typer.BadParameter(f"no enabled connection named {', '.join(sorted(unknown))}")
    checks = [check_connection(connection) for connection in chosen]
    if as_json:
        print_json(
            [
                {
                    "connection": c.connection,
                    "provider": c.provider,
                    "ok": c.ok,
                    "secrets_missing": c.secrets_missing,
                    "streams": [vars(s) for s in c.streams],
                }
                for c in checks
            ]
        )
        if not all(c.ok for c in checks):
            raise typer.Exit(1)
        return
    failed = False
    for connection, check in zip(chosen, checks, strict=True):
        mark = "[green]OK[/green]" if check.ok else "[red]MISSING[/red]"
        console.print(f"{mark} {connection.name} ({connection.provider})")
        for s in check.streams:
            status = Text("ok", "green") if s.ok else Text("fail", "red")
            note = f" — {s.problem}" if s.problem else ""
            console.print(Text.assemble("    ", status, f" {s.stream}{note}"), highlight=False)
        for line in check.secrets_missing.values():
            console.print(Text.assemble("    ", ("missing", "red"), f" {line}"), highlight=False)
        failed = failed or not check.ok
    if failed:
        raise typer.Exit(1)


@app.command("enable")
def connections_enable(name: str) -> None:
    """Start collecting from a connection again."""
    from collectors.connections import set_enabled

    set_enabled(database(), name, True, actor=cli_actor(permission="connections:write"))
    console.print(f"{name}: enabled")


@app.command("disable")
def connections_disable(name: str) -> None:
    """Stop collecting from a connection (its data and checkpoints stay)."""
    from collectors.connections import set_enabled

    set_enabled(database(), name, False, actor=cli_actor(permission="connections:write"))
    console.print(f"{name}: disabled")
