"""`tenantguard config docs|check`: the configuration table in README.md, generated from the
settings models, and a check of the environment against them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.context import console, err_console

GROUP_NAME = "config"
app = typer.Typer(
    help="Configuration: the settings table, and a check of the environment.", no_args_is_help=True
)

README = Path(__file__).resolve().parents[2] / "README.md"


@app.command("docs")
def docs(
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 if README.md is out of date; write nothing.")
    ] = False,
    readme: Annotated[Path, typer.Option(help="The README to update.")] = README,
) -> None:
    """Write the settings table into README.md (between its markers)."""
    from core.settings import with_settings_table

    current = readme.read_text(encoding="utf-8")
    wanted = with_settings_table(current)
    if current == wanted:
        console.print(f"{readme}: settings table up to date")
        return
    if check:
        err_console.print(f"{readme}: settings table out of date; run `tenantguard config docs`")
        raise typer.Exit(1)
    readme.write_text(wanted, encoding="utf-8")
    console.print(f"{readme}: settings table written")


@app.command("check")
def check() -> None:
    """Load the settings from the environment; a mistyped TENANTGUARD_* variable or a bad value fails."""
    from core.settings import Settings

    settings = Settings()
    console.print(f"settings OK (database: {settings.effective_database_url.split('@')[-1]})")
