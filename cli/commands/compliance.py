"""`tenantguard compliance ...`: frameworks and their mapping coverage; risk-acceptance exceptions; legal
holds and retention.

Framework reports are `tenantguard report compliance --framework F`.
"""

from __future__ import annotations

import sys
from base64 import b64decode
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cli.context import cli_actor, console, database, when

if TYPE_CHECKING:
    from core.audit import Actor
    from core.models import ComplianceException, LegalHold

app = typer.Typer(
    help="Compliance: frameworks, control mappings, exceptions (risk acceptance).", no_args_is_help=True
)
exceptions_app = typer.Typer(
    help="Exceptions: accept a failing check for a while (four eyes).", no_args_is_help=True
)
app.add_typer(exceptions_app, name="exceptions")


_ACTOR_HELP = (
    "Who you are (e.g. alice): checked against your credential (`tenantguard login`, TENANTGUARD_TOKEN), "
    "never taken on trust; without one you act as the local operator, who never approves."
)


def _actor(value: str | None, permission: str | None = None, *, approves: bool = False) -> Actor:
    """The authenticated person (holding `permission`, a value of core.permissions.Permission), or
    the local operator where no approval is involved; `--actor`, when given, must be that person
    (cli.identity.cli_person)."""
    from core.permissions import Permission

    return cli_actor(
        value, permission=None if permission is None else Permission(permission), approves=approves
    )


def _role(who: Actor, permission: str) -> str | None:
    """The role the service checks: the first of the person's roles that carries `permission`."""
    from cli.identity import roles_of
    from core.permissions import Permission, role_allows

    roles = sorted(roles_of(database(), who))
    return next((r for r in roles if role_allows(r, Permission(permission))), roles[0] if roles else None)


@app.command("frameworks")
def frameworks() -> None:
    """Each framework's catalogue and how many of its controls our checks and rules are mapped to."""
    from compliance.frameworks import Framework, load_catalogue
    from compliance.mappings import shipped_mappings

    mappings = shipped_mappings()
    table = Table(title="frameworks")
    for column in ("id", "name", "controls", "mapped", "source"):
        table.add_column(column)
    for framework in Framework:
        catalogue = load_catalogue(framework)
        mapped = len(mappings.items_by_control(framework))
        table.add_row(
            framework.value, catalogue.name, str(len(catalogue.controls)), str(mapped), catalogue.source
        )
    console.print(table)


def _print(rows: list[ComplianceException]) -> None:
    from compliance.exceptions import snapshot, state_of

    table = Table(title="exceptions")
    for column in (
        "id",
        "check",
        "tenant",
        "state",
        "owner",
        "expires",
        "requested by",
        "approved by",
        "reason",
    ):
        table.add_column(column)
    for row in rows:
        data = snapshot(row)
        table.add_row(
            str(data["id"]),
            data["check_id"],
            str(data["connection_id"] or "all"),
            state_of(row),
            data["owner"],
            data["expires_at"],
            data["requested_by"],
            data["approved_by"] or "—",
            data["reason"],
        )
    console.print(table)


@exceptions_app.command("list")
def list_exceptions() -> None:
    """Every exception with its state now (pending, active, expired, withdrawn)."""
    from compliance.exceptions import exceptions_for

    with database().session(readonly=True) as session:
        _print(list(exceptions_for(session)))


@exceptions_app.command("request")
def request(
    check: Annotated[str, typer.Argument(help="The posture check id, as in `tenantguard posture checks`.")],
    owner: Annotated[str, typer.Option("--owner", help="Who is accountable for the accepted risk.")],
    reason: Annotated[str, typer.Option("--reason", help="Why the risk is accepted (10+ characters).")],
    days: Annotated[int, typer.Option("--days", min=1, max=366, help="How long it lasts.")] = 90,
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="One tenant (id or name); default all.")
    ] = None,
    actor: Annotated[str | None, typer.Option("--actor", help=_ACTOR_HELP)] = None,
) -> None:
    """Ask for an exception; it counts in reports once a second person approves it."""
    from compliance.exceptions import ExceptionRequest, request_exception
    from compliance.report import resolve_tenant
    from core.clock import utcnow

    with database().session() as session:
        row = request_exception(
            session,
            ExceptionRequest(
                check_id=check,
                owner=owner,
                reason=reason,
                expires_at=utcnow() + timedelta(days=days),
                connection_id=resolve_tenant(session, tenant),
            ),
            actor=_actor(actor, "compliance:write"),
        )
        _print([row])


@exceptions_app.command("approve")
def approve(
    exception_id: Annotated[int, typer.Argument(help="Exception id.")],
    actor: Annotated[str | None, typer.Option("--actor", help=_ACTOR_HELP + " Not the requester.")] = None,
) -> None:
    """Approve a pending exception (four eyes: not the person who asked)."""
    from compliance.exceptions import approve_exception

    who = _actor(actor, "compliance:approve", approves=True)
    with database().session() as session:
        _print([approve_exception(session, exception_id, actor=who)])


@exceptions_app.command("expire")
def expire(
    exception_id: Annotated[int, typer.Argument(help="Exception id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it ends now.")],
    actor: Annotated[str | None, typer.Option("--actor", help=_ACTOR_HELP)] = None,
) -> None:
    """End an exception now (or refuse a pending one)."""
    from compliance.exceptions import expire_exception

    who = _actor(actor, "compliance:write")
    with database().session() as session:
        _print([expire_exception(session, exception_id, actor=who, reason=reason)])


@app.command("export-findings")
def export_findings(
    format: Annotated[str, typer.Option("--format", "-f", help="ocsf, jsonl or csv")] = "ocsf",
    since: Annotated[
        str | None, typer.Option("--since", help="Only findings seen since: 7d, yesterday, ISO 8601.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Every finding as OCSF (Compliance/Detection Finding), JSONL or CSV, streamed."""
    from cli.context import when
    from compliance.ocsf import FindingFormat, stream_findings

    try:
        chosen = FindingFormat(format.lower())
    except ValueError:
        raise typer.BadParameter(f"--format must be ocsf, jsonl or csv, not {format!r}") from None
    since_at = when(since, "--since") if since else None
    with database().session(readonly=True) as session:
        if output is None:
            for chunk in stream_findings(session, chosen, since=since_at):
                sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
            return
        with output.open("wb") as out:
            for chunk in stream_findings(session, chosen, since=since_at):
                out.write(chunk)
    console.print(f"wrote {output}")


@app.command("export-incidents")
def export_incidents(
    format: Annotated[str, typer.Option("--format", "-f", help="ocsf, jsonl or csv")] = "ocsf",
    since: Annotated[
        str | None, typer.Option("--since", help="Only incidents updated since: 7d, yesterday, ISO 8601.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Every incident as OCSF Incident Finding, JSONL or CSV, streamed."""
    from cli.context import settings
    from compliance.incident_export import stream_incidents
    from compliance.ocsf import FindingFormat

    try:
        chosen = FindingFormat(format.lower())
    except ValueError:
        raise typer.BadParameter(f"--format must be ocsf, jsonl or csv, not {format!r}") from None
    since_at = when(since, "--since") if since else None
    base_url = settings().public_url
    with database().session(readonly=True) as session:
        chunks = stream_incidents(session, chosen, since=since_at, base_url=base_url)
        if output is None:
            for chunk in chunks:
                sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
            return
        with output.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
    console.print(f"wrote {output}")


@app.command("evidence")
def evidence(
    output: Annotated[Path, typer.Option("--output", "-o", help="The archive to write (.zip).")],
    since: Annotated[
        str, typer.Option("--since", help="Start of the audit period (ISO time, or 90d back).")
    ] = "90d",
    until: Annotated[str | None, typer.Option("--until", help="End of the period (default: now).")] = None,
) -> None:
    """A signed evidence package for an audit period; the auditor checks it with `tenantguard audit verify`."""
    from cli.commands.report import parse_since
    from cli.context import settings
    from compliance.evidence import build_package
    from core.audit_keys import fingerprint, load_signing_key
    from core.clock import utcnow
    from timeline.reports import incident_reports_between

    start = parse_since(since)
    end = parse_since(until, "--until") if until else utcnow()
    db = database()
    incidents = incident_reports_between(db, start, end)
    key = load_signing_key(settings().signing_key_path)
    manifest = build_package(
        db,
        output,
        since=start,
        until=end,
        key=key,
        actor=cli_actor(permission="compliance:read"),
        extra_files=incidents,
    )
    console.print(
        f"wrote {output}: {len(manifest['files'])} files, {manifest['audit']['records']} audit records, "
        f"{len(incidents)} incident report(s); signed by {fingerprint(b64decode(manifest['public_key']))}"
    )


holds_app = typer.Typer(
    help="Legal holds: an incident or a person kept from retention and erasure until released.",
    no_args_is_help=True,
)
app.add_typer(holds_app, name="holds")


def _print_holds(rows: list[LegalHold]) -> None:
    from compliance.holds import snapshot

    table = Table(title="legal holds")
    for column in ("id", "kind", "target", "active", "reason", "placed by", "placed at", "released by"):
        table.add_column(column)
    for row in rows:
        data = snapshot(row)
        table.add_row(
            str(data["id"]),
            data["kind"],
            data["target"],
            "yes" if data["active"] else "no",
            data["reason"],
            data["placed_by"],
            data["placed_at"],
            data["released_by"] or "—",
        )
    console.print(table)


@holds_app.command("list")
def list_holds(
    active: Annotated[bool, typer.Option("--active", help="Only holds in force.")] = False,
) -> None:
    """Every legal hold (or only those in force)."""
    from compliance.holds import list_holds as holds

    with database().session(readonly=True) as session:
        _print_holds(holds(session, active_only=active))


@holds_app.command("place")
def place(
    reason: Annotated[str, typer.Option("--reason", help="The matter or case the hold is for.")],
    actor: Annotated[
        str | None, typer.Option("--actor", help=_ACTOR_HELP + " Needs legal_hold:write.")
    ] = None,
    incident: Annotated[int | None, typer.Option("--incident", help="Hold this incident.")] = None,
    person: Annotated[str | None, typer.Option("--person", help="Hold this person (e-mail).")] = None,
) -> None:
    """Put an incident or a person on legal hold: nothing linked is deleted until it is released."""
    from compliance.holds import HoldKind, place_hold

    if (incident is None) == (person is None):
        raise typer.BadParameter("give exactly one of --incident ID or --person EMAIL")
    kind, target = (
        (HoldKind.INCIDENT, str(incident)) if incident is not None else (HoldKind.PERSON, person or "")
    )
    who = _actor(actor, "legal_hold:write")
    with database().session() as session:
        row = place_hold(session, kind, target, reason=reason, actor=who, role=_role(who, "legal_hold:write"))
        _print_holds([row])


@holds_app.command("release")
def release(
    hold_id: Annotated[int, typer.Argument(help="Hold id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it ends.")],
    actor: Annotated[
        str | None, typer.Option("--actor", help=_ACTOR_HELP + " Needs legal_hold:write.")
    ] = None,
) -> None:
    """Release a legal hold: what it covered is subject to retention again from the next pass."""
    from compliance.holds import release_hold

    who = _actor(actor, "legal_hold:write")
    with database().session() as session:
        _print_holds(
            [release_hold(session, hold_id, reason=reason, actor=who, role=_role(who, "legal_hold:write"))]
        )


@app.command("retention")
def retention(
    actor: Annotated[str | None, typer.Option("--actor", help=_ACTOR_HELP)] = None,
) -> None:
    """Apply retention now (what the cycle's retention stage does), and print what was deleted and held."""
    from cli.context import settings
    from compliance.retention import apply_retention, periods
    from core.durations import format_duration

    report = apply_retention(database(), settings(), actor=_actor(actor))
    table = Table(title="retention")
    for column in ("class", "kept for", "deleted", "held"):
        table.add_column(column)
    for name, period in periods(settings()).items():
        table.add_row(
            name.value,
            format_duration(period) if period.total_seconds() else "for ever",
            str(report.deleted.get(name.value, 0)),
            str(report.held.get(name.value, 0)),
        )
    console.print(table)
