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
    """Write the settings table into README.md and the generated parts of docs/ (references, the
    connections JSON Schema, per-provider permission tables)."""
    from cli.reference_docs import stale
    from core.settings import with_settings_table

    current = readme.read_text(encoding="utf-8")
    wanted = with_settings_table(current)
    out_of_date = stale(write=not check)
    if current == wanted and not out_of_date:
        console.print(f"{readme} and docs/: generated parts up to date")
        return
    if check:
        names = ([str(readme)] if current != wanted else []) + [str(p) for p in out_of_date]
        err_console.print(f"out of date: {', '.join(names)}; run `tenantguard config docs`")
        raise typer.Exit(1)
    readme.write_text(wanted, encoding="utf-8")
    console.print(f"{readme}: settings table written; docs/ written: {len(out_of_date)} file(s)")


@app.command("check")
def check() -> None:
    """Load the settings from the environment; a mistyped TENANTGUARD_* variable or a bad value fails."""
    from core.settings import Settings

    settings = Settings()
    console.print(f"settings OK (database: {settings.effective_database_url.split('@')[-1]})")
