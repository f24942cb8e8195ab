"""`tenantguard login`, `logout` and `whoami`: the credential the CLI's remediation commands present."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.context import console, database, err_console


def login(
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            exists=True,
            dir_okay=False,
            help="Read the token from this file instead of stdin.",
        ),
    ] = None,
) -> None:
    """Store your API token (or single sign-on ID token) for your user, after checking it.

    The token is read from stdin (hidden when typed) and kept in ~/.config/tenantguard/credentials
    (mode 0600; TENANTGUARD_CREDENTIALS_FILE elsewhere). Remediation commands then act as you."""
    import getpass

    from cli.identity import authenticate, read_credential, store_credential

    if token_file is not None:
        credential = read_credential(token_file)
    elif sys.stdin.isatty():
        credential = getpass.getpass("API token (tg_...): ").strip()
    else:
        credential = sys.stdin.readline(16_385).strip()
    if not credential:
        raise typer.BadParameter("no token given (paste it, pipe it on stdin, or use --token-file)")
    actor = authenticate(database(), credential)
    path = store_credential(credential)
    err_console.print(f"logged in as {actor.name}; the credential is in {path} (readable by you only)")


def logout() -> None:
    """Forget the stored credential."""
    from cli.identity import credentials_path

    path = credentials_path()
    path.unlink(missing_ok=True)
    err_console.print(f"logged out ({path} removed)")


def whoami() -> None:
    """Who remediation commands act as: the principal your credential proves (or why none)."""
    from cli.identity import authenticate, presented_credential

    credential = presented_credential(None)
    if credential is None:
        console.print("not logged in: remediation commands need `tenantguard login` or --local-operator")
        raise typer.Exit(1)
    console.print(authenticate(database(), credential).name, markup=False)


COMMANDS: dict[str, Callable[..., Any]] = {"login": login, "logout": logout, "whoami": whoami}
