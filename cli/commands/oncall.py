"""`tenantguard oncall apply|show|now|ical|pages|ack|resolve|escalate|reassign|tick|load|report|route|override`: schedules as code, escalations, paging."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.context import cli_actor, console, database, settings, when
from core.clock import utcnow

app = typer.Typer(help="On-call: schedules, escalation policies, pages.", no_args_is_help=True)


def _moment(text: str | None) -> datetime:
    return when(text, "--at", ahead=True) if text else utcnow()


@app.command("apply")
def apply(
    files: Annotated[
        list[Path],
        typer.Argument(help="On-call YAML/TOML files or directories of them (responders, schedules, ...)."),
    ],
) -> None:
    """Make the stored on-call configuration exactly FILES together (every change audited)."""
    from oncall.files import load_files
    from oncall.store import apply_document

    document = load_files(files)
    with database().session() as session:
        result = apply_document(session, document, actor=cli_actor(permission="oncall:write"))
    console.print(
        f"created {len(result.created)}, updated {len(result.updated)}, deleted {len(result.deleted)}, "
        f"unchanged {result.unchanged}"
    )
    for label in result.created + result.updated + result.deleted:
        console.print(f"  {label}")


@app.command("show")
def show() -> None:
    """Print the stored configuration as JSON."""
    from oncall.store import load_document

    with database().session(readonly=True) as session:
        console.print_json(json.dumps(load_document(session).model_dump(mode="json")))


@app.command("now")
def now(
    schedule: Annotated[str, typer.Argument(help="Schedule name.")],
    at: Annotated[str | None, typer.Option(help="Another moment than now (ISO 8601).")] = None,
) -> None:
    """Who is on call (and who is next) on SCHEDULE."""
    from oncall.schedules import next_shift, on_call_at
    from oncall.store import get_schedule

    moment = _moment(at)
    with database().session(readonly=True) as session:
        spec = get_schedule(session, schedule)
    upcoming = next_shift(spec, moment)
    console.print(
        f"{schedule}: {on_call_at(spec, moment) or 'nobody (gap)'} on call at {moment:%Y-%m-%d %H:%M} UTC"
    )
    if upcoming is not None:
        console.print(f"next: {upcoming.user or 'nobody (gap)'} from {upcoming.start:%Y-%m-%d %H:%M} UTC")


@app.command("ical")
def ical(
    schedule: Annotated[str, typer.Argument(help="Schedule name.")],
    days: Annotated[int, typer.Option(min=1, max=366, help="How many days from now.")] = 90,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File (default stdout).")] = None,
) -> None:
    """Export SCHEDULE's shifts as an iCalendar feed."""
    from oncall.ical import export_ical
    from oncall.store import get_schedule

    with database().session(readonly=True) as session:
        spec = get_schedule(session, schedule)
    start = utcnow()
    data = export_ical(spec, start, start + timedelta(days=days))
    if output is None:
        typer.echo(data.decode())
    else:
        output.write_bytes(data)


@app.command("ical-import")
def ical_import(
    schedule: Annotated[str, typer.Argument(help="Schedule name (created or replaced).")],
    feed: Annotated[Path, typer.Argument(help="An iCalendar file (.ics); RRULEs are expanded.")],
    start: Annotated[str | None, typer.Option(help="From (default now).")] = None,
    days: Annotated[int, typer.Option(min=1, max=366, help="How many days of the feed to take.")] = 90,
    timezone: Annotated[str, typer.Option(help="The schedule's display zone.")] = "UTC",
) -> None:
    """Store FEED as SCHEDULE: one override per shift it holds (the rest of the configuration stays)."""
    from oncall.ical import MAX_ICAL_BYTES
    from oncall.store import import_schedule

    lo = when(start, "--start", ahead=True) if start else utcnow()
    with feed.open("rb") as handle:
        data = handle.read(MAX_ICAL_BYTES + 1)
    with database().session() as session:
        result = import_schedule(
            session, schedule, data, lo, lo + timedelta(days=days), actor=cli_actor(), timezone=timezone
        )
    console.print(
        f"{schedule}: " + ("created" if result.created else "updated" if result.updated else "unchanged")
    )


@app.command("pages")
def pages(incident: Annotated[int, typer.Argument(help="Incident id.")]) -> None:
    """Who was paged about INCIDENT, how, and what became of each page."""
    from oncall.service import pages_of

    with database().session(readonly=True) as session:
        rows = pages_of(session, incident)
    table = Table("step", "loop", "who", "medium", "status", "attempts", "error")
    for row in rows:
        table.add_row(
            str(row["step"]),
            str(row["loop"]),
            row["responder"] or row["address"],
            row["medium"],
            row["status"],
            str(row["attempts"]),
            row["error"] or "",
        )
    console.print(table)


@app.command("ack")
def ack(incident: Annotated[int, typer.Argument(help="Incident id.")]) -> None:
    """Acknowledge INCIDENT: its escalation stops."""
    from oncall import acknowledge

    with database().session() as session:
        escalation = acknowledge(
            session, incident_id=incident, actor=cli_actor(permission="oncall:ack"), via="cli"
        )
    console.print(
        f"incident {incident}: escalation {escalation.id} acknowledged by {escalation.acknowledged_by}"
    )


def _act(action: str, incident: int, responder: str | None = None) -> None:
    from oncall.actions import act

    with database().session() as session:
        escalation = act(
            session,
            action,
            incident_id=incident,
            actor=cli_actor(permission="oncall:ack"),
            via="cli",
            responder=responder,
        )
        console.print(f"incident {incident}: escalation {escalation.id} {escalation.status}")


@app.command("resolve")
def resolve(incident: Annotated[int, typer.Argument(help="Incident id.")]) -> None:
    """Resolve INCIDENT: its escalation stops and it moves to resolved (both audited)."""
    _act("resolve", incident)


@app.command("escalate")
def escalate(incident: Annotated[int, typer.Argument(help="Incident id.")]) -> None:
    """Escalate INCIDENT now: its next level is paged at the next tick instead of after the delay."""
    _act("escalate", incident)


@app.command("reassign")
def reassign(
    incident: Annotated[int, typer.Argument(help="Incident id.")],
    to: Annotated[str, typer.Option("--to", help="The responder to hand the page to.")],
) -> None:
    """Hand INCIDENT's page to another responder: paged now by their rules; the policy goes on if they do not answer."""
    _act("reassign", incident, to)


@app.command("tick")
def tick() -> None:
    """Start, fire and deliver whatever is due now (what `serve` does on its timer)."""
    from oncall import run_due

    report = run_due(database(), settings())
    console.print(
        f"started {report.started}, steps fired {len(report.sweep.fired)}, pages sent {len(report.outbox.sent)}, "
        f"failed {len(report.outbox.failed)}, dead {len(report.outbox.dead)}"
    )


@app.command("load")
def load(days: Annotated[int, typer.Option(min=1, max=366, help="Look back this many days.")] = 30) -> None:
    """Load per responder: hours on call, pages, night pages, MTTA."""
    from oncall.service import responder_load

    end = utcnow()
    with database().session(readonly=True) as session:
        rows = responder_load(session, end - timedelta(days=days), end)
    table = Table("responder", "hours on call", "pages", "night pages", "acknowledged", "MTTA (s)")
    for row in rows:
        table.add_row(
            row["responder"],
            f"{row['hours_on_call']:.1f}",
            str(row["pages"]),
            str(row["night_pages"]),
            str(row["acknowledged"]),
            "" if row["mtta_seconds"] is None else f"{row['mtta_seconds']:.0f}",
        )
    console.print(table)


@app.command("report")
def report(
    days: Annotated[int, typer.Option(min=1, max=366, help="Look back this many days.")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """MTTA per escalation policy and per responder (escalations started in the last DAYS days)."""
    from oncall.service import mtta_report

    end = utcnow()
    with database().session(readonly=True) as session:
        found = mtta_report(session, end - timedelta(days=days), end)
    if as_json:
        console.print_json(json.dumps(found, default=str))
        return

    def seconds(value: float | None) -> str:
        return "" if value is None else f"{value:.0f}"

    for key, label in (("policies", "policy"), ("responders", "responder")):
        table = Table(label, "escalations", "acknowledged", "MTTA (s)", "median (s)", "max (s)")
        for row in found[key]:
            table.add_row(
                row[label],
                str(row["escalations"]),
                str(row["acknowledged"]),
                seconds(row["mtta_seconds"]),
                seconds(row["median_seconds"]),
                seconds(row["max_seconds"]),
            )
        console.print(table)


@app.command("route")
def route(
    incident: Annotated[int, typer.Argument(help="Incident id.")],
    at: Annotated[
        str | None, typer.Option(help="Route as at this moment (ISO 8601; business hours).")
    ] = None,
) -> None:
    """Which routing rule INCIDENT matches, and why each rule holds or not."""
    from core.models.incident import Incident
    from oncall.errors import OncallNotFound
    from oncall.escalation import explain_routes
    from oncall.store import load_document

    with database().session(readonly=True) as session:
        row = session.get(Incident, incident)
        if row is None:
            raise OncallNotFound(f"no incident {incident}")
        answers = explain_routes(session, row, load_document(session).routes, _moment(at))
    chosen = next((a for a in answers if a["matched"]), None)
    for answer in answers:
        mark = "->" if answer is chosen else ("ok" if answer["matched"] else "  ")
        console.print(
            f"{mark} {answer['route']} (policy {answer['policy']}): " + "; ".join(answer["reasons"])
        )
    console.print(f"incident {incident}: " + (f"policy {chosen['policy']}" if chosen else "no route matches"))


@app.command("override")
def override(
    schedule: Annotated[str, typer.Argument(help="Schedule name.")],
    user: Annotated[str, typer.Option(help="Who is on call instead.")],
    start: Annotated[str, typer.Option(help="From (ISO 8601 with offset, e.g. 2026-03-07T09:00:00Z).")],
    end: Annotated[str, typer.Option(help="Until (ISO 8601 with offset).")],
    swap_with: Annotated[
        str | None,
        typer.Option("--swap-with", help="Swap: USER takes only the stretches this person is on call."),
    ] = None,
    in_return: Annotated[
        tuple[str, str] | None,
        typer.Option(
            "--in-return",
            metavar="START END",
            help="With --swap-with, a two-way swap: that person takes USER's stretches from START to END.",
        ),
    ] = None,
    reason: Annotated[str, typer.Option(help="Why (kept in the audit record).")] = "",
) -> None:
    """Put USER on call on SCHEDULE from START to END (or, with --swap-with, in someone's place)."""
    from oncall.spec import Override
    from oncall.store import add_overrides, get_schedule, swap_overrides, trade_overrides

    lo, hi = when(start, "START", ahead=True), when(end, "END", ahead=True)
    if in_return and not swap_with:
        raise typer.BadParameter("--in-return needs --swap-with (whom USER swaps with)")
    with database().session() as session:
        spec = get_schedule(session, schedule)
        if swap_with and in_return:
            back = (when(in_return[0], "START", ahead=True), when(in_return[1], "END", ahead=True))
            wanted = trade_overrides(spec, user, swap_with, (lo, hi), back)
        elif swap_with:
            wanted = swap_overrides(spec, swap_with, user, lo, hi)
        else:
            wanted = [Override(user=user, start=lo, end=hi)]
        add_overrides(
            session, schedule, wanted, actor=cli_actor(permission="oncall:write"), reason=reason[:300]
        )
    for item in wanted:
        console.print(
            f"{schedule}: {item.user} on call {item.start:%Y-%m-%d %H:%M} - {item.end:%Y-%m-%d %H:%M} UTC"
        )
