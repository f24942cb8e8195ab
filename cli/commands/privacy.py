"""`tenantguard privacy ...`: a data subject's export and erasure across tables (compliance.privacy).

Erasure is four eyes: `erase --person X` asks, `approve ID` by a second principal carries it out;
both need `privacy:erase`, and a legal hold on the person (or an incident naming them) refuses it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cli.context import cli_actor, console, database

if TYPE_CHECKING:
    from core.audit import Actor
    from core.models import ErasureRequest

app = typer.Typer(help="Data-subject requests: export and erasure of one person.", no_args_is_help=True)


_ACTOR_HELP = (
    "Who you are (e.g. olga): checked against your credential (`tenantguard login`, TENANTGUARD_TOKEN), "
    "never taken on trust."
)


def _actor(value: str | None, permission: str, *, approves: bool = False) -> Actor:
    """The authenticated person holding `permission` (cli.identity.cli_person); `--actor`, when
    given, must be them. Without a credential: the local operator, whom the services refuse (no role)."""
    from core.permissions import Permission

    return cli_actor(value, permission=Permission(permission), approves=approves)


def _role(who: Actor, permission: str) -> str | None:
    from cli.identity import roles_of
    from core.permissions import Permission, role_allows

    roles = sorted(roles_of(database(), who))
    return next((r for r in roles if role_allows(r, Permission(permission))), roles[0] if roles else None)


def _print(rows: list[ErasureRequest]) -> None:
    from compliance.privacy import snapshot

    table = Table(title="erasure requests")
    for column in ("id", "person", "state", "requested by", "approved by", "reason", "result"):
        table.add_column(column)
    for row in rows:
        data = snapshot(row)
        result = ", ".join(f"{name} {n}" for name, n in sorted(data["result"].items())) or "—"
        table.add_row(
            str(data["id"]),
            data["person"],
            data["state"],
            data["requested_by"],
            data["approved_by"] or "—",
            data["reason"],
            result,
        )
    console.print(table)


@app.command("export")
def export(
    person: Annotated[str, typer.Option("--person", help="Any e-mail address the person is known by.")],
    actor: Annotated[str | None, typer.Option("--actor", help=_ACTOR_HELP + " Needs privacy:export.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Everything stored about one person, one JSON line per row (audited)."""
    from compliance.privacy import export_person, record_export

    db = database()
    who = _actor(actor, "privacy:export")
    with db.session() as session:
        addresses = record_export(session, person, actor=who, role=_role(who, "privacy:export"))
    with db.session(readonly=True) as session:
        if output is None:
            for line in export_person(session, addresses):
                sys.stdout.buffer.write(line)
            sys.stdout.flush()
            return
        with output.open("wb") as out:
            for line in export_person(session, addresses):
                out.write(line)
    console.print(f"wrote {output}")


@app.command("erase")
def erase(
    person: Annotated[str, typer.Option("--person", help="Any e-mail address the person is known by.")],
    reason: Annotated[str, typer.Option("--reason", help="The request this answers.")],
    actor: Annotated[str | None, typer.Option("--actor", help=_ACTOR_HELP + " Needs privacy:erase.")] = None,
) -> None:
    """Ask for a person's erasure; a second principal runs it with `tenantguard privacy approve ID`."""
    from compliance.privacy import request_erasure

    who = _actor(actor, "privacy:erase")
    with database().session() as session:
        _print([request_erasure(session, person, reason=reason, actor=who, role=_role(who, "privacy:erase"))])


@app.command("approve")
def approve(
    request_id: Annotated[int, typer.Argument(help="Erasure request id.")],
    actor: Annotated[
        str | None, typer.Option("--actor", help=_ACTOR_HELP + " Needs privacy:erase; not the requester.")
    ] = None,
) -> None:
    """Approve an erasure (four eyes): it runs at once."""
    from compliance.privacy import approve_erasure

    who = _actor(actor, "privacy:erase", approves=True)
    with database().session() as session:
        _print([approve_erasure(session, request_id, actor=who, role=_role(who, "privacy:erase"))])


@app.command("list")
def list_requests() -> None:
    """Every erasure request, pending or carried out."""
    from compliance.privacy import list_erasures

    with database().session(readonly=True) as session:
        _print(list_erasures(session))
