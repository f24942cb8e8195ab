"""`tenantguard incidents ...`: build, list, show, and work incidents (transition, assign, note, merge, split)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from cli.commands.remediation import AsOption, LocalOption, TokenFileOption
from cli.context import cli_actor, console, database, settings
from cli.output import JsonOption, Output, OutputOption, choice, chosen, emit, print_json

if TYPE_CHECKING:
    from pathlib import Path

    from core.audit import Actor
    from core.db import Database

app = typer.Typer(
    help="Incidents: build from findings, list, show with timeline, triage, merge, split.",
    no_args_is_help=True,
)
# Top-level commands this area adds (name -> function), e.g. {"collect": collect}.
COMMANDS: dict[str, Callable[..., Any]] = {}

ActorOption = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="Who you are, e.g. principal:alice: checked against your credential (`tenantguard login`, "
        "TENANTGUARD_TOKEN), never taken on trust. Without a credential you act as the local operator.",
    ),
]


def _who(claimed: str | None) -> Actor:
    """The authenticated person (needing incidents:write) or the local operator (cli.identity)."""
    from core.permissions import Permission

    return cli_actor(claimed, permission=Permission.INCIDENTS_WRITE, option="--as")


_PRIORITY_STYLE = {"P1": "bold red", "P2": "red", "P3": "yellow", "P4": "dim"}


@app.command("build")
def build(
    notify: Annotated[bool, typer.Option("--notify/--no-notify", help="Post Slack notifications.")] = True,
) -> None:
    """Group open findings into incidents, link conversations and set priorities (what the pipeline runs)."""
    from timeline import build_incidents

    changed = build_incidents(database(), settings(), notify=notify)
    console.print(
        f"{len(changed)} incident(s) created or updated"
        + (f": {', '.join(map(str, changed))}" if changed else "")
    )


@app.command("list")
def list_(
    status: Annotated[
        list[str] | None, typer.Option("--status", "-s", help="Only this status (repeatable).")
    ] = None,
    priority: Annotated[
        list[str] | None, typer.Option("--priority", "-p", help="Only this priority (repeatable).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    output: OutputOption = Output.TABLE,
    as_json: JsonOption = False,
) -> None:
    """Incidents, newest first (the same query as `GET /incidents`)."""
    from core.models.enums import IncidentStatus, Priority
    from timeline.queries import IncidentFilter, list_incidents

    wanted = IncidentFilter(
        status=choice(status, [s.value for s in IncidentStatus], "--status"),
        priority=choice(priority, [p.value for p in Priority], "--priority"),
    )
    with database().session(readonly=True) as session:
        incidents, _ = list_incidents(session, wanted, limit=limit)
    rows = [
        {
            "id": i.id,
            "priority": i.priority,
            "status": i.status,
            "severity": i.severity,
            "title": i.title,
            "findings": i.finding_count,
            "messages": i.message_count,
            "assignee": i.assignee,
            "opened": i.created_at,
            "due": i.due_at,
        }
        for i in incidents
    ]
    emit(
        rows,
        chosen(output, as_json),
        title=f"{len(incidents)} incident(s)",
        columns={
            k: k
            for k in (
                "id",
                "priority",
                "status",
                "title",
                "findings",
                "messages",
                "assignee",
                "opened",
                "due",
            )
        },
        styles={"priority": _PRIORITY_STYLE},
    )


def print_incident(
    incident_id: int, *, db: Database | None = None, limit: int = 200, excerpts: bool = True
) -> None:
    """The incident, why it is grouped and prioritised, and its timeline (used by `show` and the demo)."""
    from timeline.queries import get_incident, get_timeline

    db = db or database()
    incident, findings = get_incident(db, incident_id)
    style = _PRIORITY_STYLE.get(incident.priority, "")
    console.rule(f"[{style}]{incident.priority}[/] #{incident.id} {incident.title}")
    console.print(
        f"status [bold]{incident.status}[/] · severity {incident.severity} · assignee {incident.assignee or '—'} · "
        f"{incident.finding_count} findings · {incident.evidence_count} evidence events · {incident.message_count} messages"
    )
    factors = incident.priority_factors or {}
    console.print(f"priority = {factors.get('formula', '')} = {factors.get('score', 0)}")
    for name, factor in (factors.get("factors") or {}).items():
        console.print(f"  {name:<10} ×{factor.get('weight')}  {factor.get('why')}", highlight=False)
    if factors.get("impact"):
        from timeline.impact import describe

        console.print(describe(factors["impact"]), highlight=False, markup=False)
        if factors.get("lifted_by_impact"):
            console.print(f"  {factors['lifted_by_impact']}", highlight=False, markup=False)
    console.print("grouping:")
    for reason in (incident.grouping or [])[:20]:
        console.print(f"  • {reason.get('text')}", highlight=False)
    page = get_timeline(db, incident_id, limit=limit, include_excerpts=excerpts)
    table = Table(title=f"timeline ({len(page.items)} of {page.total})", show_lines=False)
    for column in ("time", "kind", "what", "×", "source"):
        table.add_column(column, overflow="fold")
    for item in page.items:
        what = item.title
        if item.kind == "message":
            what += f"\n[dim]{str(item.body.get('excerpt', ''))[:300]}[/]"
        elif item.kind == "note":
            what += f"\n[dim]{item.body.get('text', '')}[/]"
        elif item.kind == "remediation" and item.body.get("event") == "proposed" and item.body.get("reason"):
            what += f"\n[dim]why: {escape(str(item.body['reason']))}[/]"
        elif item.kind == "remediation" and item.body.get("comment"):
            what += f"\n[dim]comment: {escape(str(item.body['comment']))}[/]"
        table.add_row(item.at.strftime("%Y-%m-%d %H:%M:%S"), item.kind, what, str(item.count), item.source)
    console.print(table)


@app.command("show")
def show(
    incident_id: Annotated[int, typer.Argument(help="Incident id.")],
    limit: Annotated[int, typer.Option(help="Timeline entries to show.")] = 200,
    excerpts: Annotated[
        bool, typer.Option("--excerpts/--no-excerpts", help="Show conversation excerpts.")
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """One incident: priority factors, grouping reasons and its timeline."""
    if as_json:
        print_json(incident_document(database(), incident_id, limit=limit, excerpts=excerpts))
        return
    print_incident(incident_id, limit=limit, excerpts=excerpts)


def incident_document(db: Database, incident_id: int, *, limit: int, excerpts: bool) -> dict[str, Any]:
    """The incident, its findings and its timeline as one JSON-able document (`show --json`)."""
    from timeline.queries import get_incident, get_timeline

    incident, findings = get_incident(db, incident_id)
    page = get_timeline(db, incident_id, limit=limit, include_excerpts=excerpts)
    return {
        **incident.model_dump(mode="json"),
        "findings": [f.model_dump(mode="json") for f in findings],
        "timeline": {
            "total": page.total,
            "items": [item.as_dict() for item in page.items],
        },
    }


@app.command("transition")
def transition(
    incident_id: Annotated[int, typer.Argument(help="Incident id.")],
    status: Annotated[
        str, typer.Argument(help="triaged, contained, resolved, closed, false_positive, duplicate")
    ],
    note: Annotated[str | None, typer.Option("--note", "-m", help="Why (stored redacted).")] = None,
    of: Annotated[int | None, typer.Option("--of", help="For duplicate: the original incident.")] = None,
    actor: ActorOption = None,
) -> None:
    """Move an incident through its lifecycle (timestamped and audited)."""
    from timeline.lifecycle import transition as move
    from timeline.notify import NotificationError, deliver_notifications

    incident = move(database(), incident_id, status, actor=_who(actor), note=note, duplicate_of=of)
    console.print(f"incident {incident.id} is now {incident.status}")
    try:
        deliver_notifications(database(), settings())
    except NotificationError as exc:
        console.print(f"[yellow]notification not sent:[/] {exc}")


@app.command("assign")
def assign(
    incident_id: Annotated[int, typer.Argument(help="Incident id.")],
    assignee: Annotated[str | None, typer.Argument(help="Who takes it (omit with --unassign).")] = None,
    unassign: Annotated[bool, typer.Option("--unassign", help="Remove the assignee.")] = False,
    actor: ActorOption = None,
) -> None:
    """Give an incident to someone (acknowledges it)."""
    from timeline.lifecycle import assign as give

    if not assignee and not unassign:
        raise typer.BadParameter("name the ASSIGNEE, or pass --unassign")
    incident = give(database(), incident_id, None if unassign else assignee, actor=_who(actor))
    console.print(f"incident {incident.id} assigned to {incident.assignee or 'nobody'}")


@app.command("note")
def note(
    incident_id: Annotated[int, typer.Argument(help="Incident id.")],
    text: Annotated[str, typer.Argument(help="The note (secrets and personal data are redacted).")],
    actor: ActorOption = None,
) -> None:
    """Add a note to an incident's timeline."""
    from timeline.lifecycle import add_note

    entry = add_note(database(), incident_id, text, actor=_who(actor))
    console.print(f"note {entry} added to incident {incident_id}")


@app.command("merge")
def merge(
    target: Annotated[int, typer.Argument(help="The incident to keep.")],
    sources: Annotated[list[int], typer.Argument(help="Incidents to fold into it.")],
    reason: Annotated[str, typer.Option("--reason", "-m", help="Why they are one incident.")] = "",
    actor: ActorOption = None,
) -> None:
    """Merge incidents: findings and messages move to TARGET; the others become duplicates."""
    from timeline.lifecycle import merge as fold

    incident = fold(database(), target, sources, actor=_who(actor), reason=reason, settings=settings())
    console.print(f"incident {incident.id} now holds {incident.finding_count} findings")


@app.command("split")
def split(
    incident_id: Annotated[int, typer.Argument(help="The incident to split.")],
    findings: Annotated[list[int], typer.Argument(help="Finding ids that move to a new incident.")],
    reason: Annotated[str, typer.Option("--reason", "-m", help="Why they are separate.")] = "",
    actor: ActorOption = None,
) -> None:
    """Move some findings of an incident to a new incident."""
    from timeline.lifecycle import split as cut

    created = cut(database(), incident_id, findings, actor=_who(actor), reason=reason, settings=settings())
    console.print(f"findings {', '.join(map(str, findings))} moved to new incident {created.id}")


@app.command("link")
def link(
    incident_id: Annotated[int, typer.Argument(help="Incident id.")],
    provider: Annotated[str, typer.Argument(help="slack, m365 or google")],
    channel: Annotated[str, typer.Argument(help="Channel (or mailbox) id.")],
    thread: Annotated[str | None, typer.Option("--thread", help="Only this thread of the channel.")] = None,
    actor: ActorOption = None,
) -> None:
    """Link a channel or thread: its messages join the incident's timeline at the next build."""
    from timeline.lifecycle import link_conversation

    link_conversation(
        database(), incident_id, provider=provider, channel=channel, thread_id=thread, actor=_who(actor)
    )
    console.print(
        f"linked {provider} {channel}{' thread ' + thread if thread else ''} to incident {incident_id}"
    )


@app.command("postmortem")
def postmortem(
    incident_id: Annotated[int, typer.Argument(help="Incident id.")],
    root_cause: Annotated[str | None, typer.Option("--root-cause")] = None,
    lessons: Annotated[str | None, typer.Option("--lessons")] = None,
    impact: Annotated[str | None, typer.Option("--impact")] = None,
    actor: ActorOption = None,
) -> None:
    """Record root cause, lessons and impact for the incident report."""
    from timeline.lifecycle import set_postmortem

    set_postmortem(
        database(), incident_id, actor=_who(actor), root_cause=root_cause, lessons=lessons, impact=impact
    )
    console.print(f"postmortem of incident {incident_id} updated")


@app.command("digests")
def digests(
    build_now: Annotated[
        bool, typer.Option("--build/--no-build", help="Build the digests of days that have ended first.")
    ] = False,
    limit: Annotated[int, typer.Option(help="At most this many days, newest first.")] = 14,
    as_json: JsonOption = False,
) -> None:
    """Daily digests: low-signal findings that joined no incident (what `GET /digests` lists)."""
    from sqlalchemy import select

    from core.models.noise import Digest
    from timeline.digest import build_digests

    db = database()
    if build_now:
        build_digests(db, settings())
    with db.session(readonly=True) as session:
        rows = list(session.execute(select(Digest).order_by(Digest.day.desc()).limit(limit)).scalars())  # type: ignore[attr-defined]
        found = [
            {
                "id": d.id,
                "day": f"{d.day:%Y-%m-%d}",
                "tenant": d.tenant,
                "connection_id": d.connection_id,
                "findings": d.finding_count,
                "people": d.people_count,
                "summary": d.summary,
                "items": d.items,
            }
            for d in rows
        ]
    if as_json:
        print_json(found)
        return
    for digest in found:
        console.print(f"[bold]#{digest['id']} {digest['day']}[/bold] {digest['summary']}", highlight=False)
        for item in digest["items"]:
            console.print(f"  • {item['text']}", highlight=False, markup=False)


changes_app = typer.Typer(
    help="Declared change windows: drifts inside one by its actor are recorded, not escalated.",
    no_args_is_help=True,
)
app.add_typer(changes_app, name="changes")


def _change_author(who: str | None, token_file: Path | None, local: bool) -> Actor:
    """Who declares or cancels a change window: an authenticated person (as for remediation) whose
    role may change incidents (incidents:write, the API's rule for /change-windows)."""
    from api.errors import Forbidden
    from cli.identity import acting_person
    from core.permissions import Permission, roles_allowed
    from remediation.principals import resolve_actor

    db = database()
    actor = acting_person(db, who, token_file=token_file, local=local)
    with db.session(readonly=True) as session:
        person = resolve_actor(session, actor)
    if not person.may(Permission.INCIDENTS_WRITE):
        raise Forbidden(
            f"{actor} may not declare or cancel change windows (role {person.role_names}); needs one of "
            f"{', '.join(roles_allowed(Permission.INCIDENTS_WRITE))}"
        )
    return actor


@changes_app.command("declare")
def declare_change(
    reference: Annotated[str, typer.Argument(help="The change's id, e.g. CHG-5102.")],
    actor_email: Annotated[str, typer.Option("--actor", help="Email of who carries out the change.")],
    starts: Annotated[str, typer.Option("--start", help="ISO 8601 start, e.g. 2026-12-01T14:00:00Z.")],
    ends: Annotated[str, typer.Option("--end", help="ISO 8601 end.")],
    description: Annotated[str, typer.Option("--description", "-m", help="What changes.")] = "",
    who: AsOption = None,
    token_file: TokenFileOption = None,
    local: LocalOption = False,
) -> None:
    """Declare a change window (audited; needs a role that may change incidents)."""
    from datetime import datetime

    from timeline.changes import declare_change_window
    from timeline.errors import ChangeWindowError

    try:
        start, end = (datetime.fromisoformat(v.replace("Z", "+00:00")) for v in (starts, ends))
    except ValueError as exc:
        raise ChangeWindowError(f"--start/--end must be ISO 8601 date-times ({exc})") from None
    author = _change_author(who, token_file, local)
    window = declare_change_window(
        database(),
        reference=reference,
        actor_email=actor_email,
        starts_at=start,
        ends_at=end,
        description=description,
        actor=author,
    )
    console.print(
        f"change window {window['id']} declared: {window['reference']} by {window['actor']}"
        f" from {window['starts_at']} to {window['ends_at']}",
        highlight=False,
    )


@changes_app.command("list")
def list_changes(
    include_cancelled: Annotated[bool, typer.Option("--all", help="Cancelled ones too.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Declared change windows, latest start first."""
    from timeline.changes import list_change_windows

    windows = list_change_windows(database(), include_cancelled=include_cancelled)
    if as_json:
        print_json(windows)
        return
    for w in windows:
        cancelled = f" (cancelled by {w['cancelled_by']})" if w["cancelled_at"] else ""
        console.print(
            f"#{w['id']} {w['reference']} {w['actor']} {w['starts_at']} → {w['ends_at']}{cancelled}",
            highlight=False,
            markup=False,
        )


@changes_app.command("cancel")
def cancel_change(
    window_id: Annotated[int, typer.Argument(help="Change window id.")],
    who: AsOption = None,
    token_file: TokenFileOption = None,
    local: LocalOption = False,
) -> None:
    """Cancel a change window (audited; needs a role that may change incidents)."""
    from timeline.changes import cancel_change_window

    author = _change_author(who, token_file, local)
    if cancel_change_window(database(), window_id, actor=author) is None:
        console.print(f"[red]change window {window_id} does not exist[/red]")
        raise typer.Exit(1)
    console.print(f"change window {window_id} cancelled")
