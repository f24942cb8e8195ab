"""`tenantguard principals`: create API principals (the token is printed once), list them, disable them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from cli.context import console, database, err_console, settings
from cli.output import JsonOption, Output, OutputOption, chosen, emit

app = typer.Typer(help="API principals: who may call the HTTP API, with which role.", no_args_is_help=True)
COMMANDS: dict[str, Callable[..., Any]] = {}


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Principal name (letters, digits, . _ @ + -).")],
    role: Annotated[str, typer.Option("--role", "-r", help="viewer, analyst, approver, auditor or admin.")],
    slack_user: Annotated[
        str | None,
        typer.Option(
            help="The person's Slack user id (U...): their Slack button clicks act as this principal."
        ),
    ] = None,
    person: Annotated[
        str | None,
        typer.Option(
            help="The person behind it (e-mail or directory name; default: NAME). Four eyes compares "
            "persons: two principals of one person never approve each other's steps."
        ),
    ] = None,
) -> None:
    """Create a principal and print its API token. The token is shown this once and never again."""
    from api.principals.service import create_principal
    from api.tokens import load_pepper
    from cli.identity import operator

    db = database()
    principal, token = create_principal(
        db,
        load_pepper(settings(), settings().api),
        name=name,
        role=role,
        actor=operator(db),
        slack_user_id=slack_user,
        person=person,
    )
    err_console.print(
        f"created principal [bold]{principal.name}[/bold] (role {principal.role}, key id "
        f"{principal.token_prefix}). Its token follows; store it now, it cannot be shown again:"
    )
    print(token)


@app.command("list")
def list_(output: OutputOption = Output.TABLE, as_json: JsonOption = False) -> None:
    """List principals with their role, key id and last use (never their tokens)."""
    from api.principals.service import list_principals

    with database().session(readonly=True) as session:
        principals = list_principals(session)
    rows = [
        {
            "name": p.name,
            "person": p.person,
            "role": p.role,
            "key_id": p.token_prefix,
            "status": "disabled" if p.disabled else "active",
            "created": p.created_at,
            "last_used": p.last_used_at,
        }
        for p in principals
    ]
    emit(
        rows,
        chosen(output, as_json),
        title=f"{len(rows)} principal(s)",
        columns={
            "name": "name",
            "person": "person",
            "role": "role",
            "key_id": "key id",
            "status": "status",
            "created": "created",
            "last_used": "last used",
        },
    )


@app.command("disable")
def disable(name: Annotated[str, typer.Argument(help="Principal to disable.")]) -> None:
    """Disable a principal: its token stops working at once (the principal stays for the audit trail)."""
    from api.principals.service import disable_principal
    from cli.identity import operator

    db = database()
    principal = disable_principal(db, name=name, actor=operator(db))
    console.print(f"principal {principal.name} is disabled")
