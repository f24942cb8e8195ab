"""`tenantguard drill start|list|show`: simulated incidents run through the response flow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.context import cli_actor, console, database

app = typer.Typer(
    help="Drills: a simulated incident through the whole response flow, marked a drill.", no_args_is_help=True
)


@app.command("start")
def start(
    scenario: Annotated[
        str,
        typer.Argument(
            help="account-takeover, data-exposure or oauth-consent; with --connections, the simulator's story."
        ),
    ],
    connections: Annotated[
        Path | None,
        typer.Option(
            "--connections",
            help="The connections file `tenantguard simulator serve --scenario SCENARIO --write-connections FILE` "
            "wrote: the running deployment collects that story through them as a drill.",
        ),
    ] = None,
) -> None:
    """Start a drill: its incident opens on the next cycle of a running `serve` (never touching real tenants)."""
    from response.drills import start_drill, start_simulated_drill

    actor = cli_actor(permission="incidents:write")  # authenticated, or the local operator
    if connections is None:
        with database().session() as session:
            drill = start_drill(session, scenario, actor=actor)
            console.print(f"drill #{drill.id} ({scenario}) started: {drill.dedup_key}")
        return
    import dataclasses
    import secrets

    from collectors.connections import load_connections_file, upsert_connection

    key = secrets.token_hex(3)
    definitions = [
        dataclasses.replace(d, name=f"drill-{key}-{d.provider}-{index}")
        for index, d in enumerate(load_connections_file(connections))
    ]
    db = database()
    for definition in definitions:
        upsert_connection(db, definition, actor=actor, source="drill")
    with db.session() as session:
        drill = start_simulated_drill(session, scenario, [d.name for d in definitions], key=key, actor=actor)
        console.print(
            f"drill #{drill.id} ({scenario}) started through {len(definitions)} simulator connections: "
            + ", ".join(d.name for d in definitions)
        )


@app.command("list")
def list_drills() -> None:
    """Every drill, newest first, with how long each response step took."""
    from sqlmodel import col, select

    from core.models import Drill

    table = Table(
        "id", "scenario", "incident", "started", "finished", "channel s", "first update s", "resolved s"
    )
    with database().session(readonly=True) as session:
        for drill in session.exec(select(Drill).order_by(col(Drill.id).desc()).limit(50)).all():
            seconds = (drill.report or {}).get("seconds_to", {})
            table.add_row(
                str(drill.id),
                drill.scenario,
                str(drill.incident_id or "—"),
                f"{drill.started_at:%Y-%m-%d %H:%M}",
                f"{drill.finished_at:%H:%M}" if drill.finished_at else "running",
                *(str(seconds.get(k, "—")) for k in ("channel", "first_update", "resolved")),
            )
    console.print(table)


@app.command("show")
def show(drill_id: Annotated[int, typer.Argument(help="Drill id.")]) -> None:
    """A drill's report as JSON (computed now when the drill is still running)."""
    from core.models import Drill
    from response.drills import drill_report

    with database().session(readonly=True) as session:
        drill = session.get(Drill, drill_id)
        if drill is None:
            raise typer.BadParameter(f"no drill {drill_id}")
        console.print_json(json.dumps(drill.report or drill_report(session, drill)))
