"""The `tenantguard` command tree: the root options, the few root commands, and every area (cli/commands/*)."""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
from collections.abc import Callable
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from cli.context import console, database

# The areas (cli/commands/*): name -> their Typer group, or a top-level command's function. Turned
# into click commands only when invoked (or listed by --help): building all ~150 at every start
# would cost more than the whole of `tenantguard version` may take.
_AREAS: dict[str, typer.Typer | Callable[..., Any]] = {}


class _LazyAreas(TyperGroup):
    _listing = False  # true while the root --help is rendered: areas are listed, not built

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        _register_areas()
        return [*super().list_commands(ctx), *(n for n in _AREAS if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = super().get_command(ctx, cmd_name)
        if found is not None:
            return found
        _register_areas()
        target = _AREAS.get(cmd_name)
        if target is None:
            return None
        if self._listing:  # the root --help needs a name and a line, not ~150 built commands
            return TyperCommand(cmd_name, help=_help_line(target))
        if not isinstance(target, typer.Typer):
            single = typer.Typer()
            single.command(cmd_name)(target)
            target = single
        command = typer.main.get_command(target)
        command.name = cmd_name
        self.commands[cmd_name] = command
        return command


app = typer.Typer(
    name="tenantguard",
    cls=_LazyAreas,
    help="SaaS security posture monitoring and incident response for Microsoft 365, Google Workspace and Slack.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _help_line(target: typer.Typer | Callable[..., Any]) -> str:
    """The help an area shows in the root --help: its Typer's help, else its callback's docstring."""
    if isinstance(target, typer.Typer):
        text = target.info.help
        if not isinstance(text, str):
            callback = target.registered_callback.callback if target.registered_callback else None
            text = inspect.getdoc(callback) if callback else ""
    else:
        text = inspect.getdoc(target)
    return text or ""


def _register_areas() -> None:
    """Every module in cli/commands is an area: a new area is a new file, not an edit here."""
    if _AREAS:
        return
    import cli.commands

    for info in sorted(pkgutil.iter_modules(cli.commands.__path__), key=lambda m: m.name):
        area = info.name
        module = importlib.import_module(f"cli.commands.{area}")
        group = getattr(module, "app", None)
        if group is not None and (group.registered_commands or group.registered_groups):
            _AREAS[getattr(module, "GROUP_NAME", area)] = group
        for name, function in getattr(module, "COMMANDS", {}).items():
            _AREAS[name] = function


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    if debug:
        os.environ["TENANTGUARD_DEBUG"] = "1"


@app.command()
def version() -> None:
    """Print the version."""
    from importlib.metadata import version as package_version

    console.print(f"tenantguard {package_version('tenantguard')}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    db = database(migrate=False, create=True)
    db.upgrade()
    console.print(f"database at the newest schema ({db.dialect})")


@app.command()
def demo(
    scenario: Annotated[
        list[str] | None, typer.Option("--scenario", "-s", help="Scenario to run (repeatable; default: all).")
    ] = None,
    approve_as: Annotated[
        str | None,
        typer.Option(
            "--approve-as",
            help="Approve the plans as this second principal (demo-approver) and execute them.",
        ),
    ] = None,
    users: Annotated[
        int | None, typer.Option(help="People in each simulated tenant (scenario default: 40).")
    ] = None,
    days: Annotated[int | None, typer.Option(help="Days of simulated history (scenario default: 7).")] = None,
    details: Annotated[
        bool,
        typer.Option("--details", help="Print every P1/P2 incident, its timeline and plan, and compliance."),
    ] = False,
    keep_simulator: Annotated[
        bool,
        typer.Option(
            "--keep-simulator",
            help="Keep the last scenario's simulator up until Ctrl-C, so connections test, actions "
            "execute/rollback and serve work on its database from another terminal.",
        ),
    ] = False,
) -> None:
    """Run the product end to end against the built-in simulator on an embedded SQLite database."""
    from cli.demo import run_demo

    run_demo(
        scenario,
        approve_as=approve_as,
        users=users,
        days=days,
        verbose=details,
        keep_simulator=keep_simulator,
    )
