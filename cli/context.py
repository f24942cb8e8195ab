"""What every command needs: settings, the database (migrated), a console, and the one reading of
times and output formats."""

from __future__ import annotations

import sys
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:  # the heavy imports wait until a command needs them (startup time)
    from core.audit import Actor
    from core.db import Database
    from core.permissions import Permission
    from core.settings import Settings

# Piped output (CI logs, `| less`) has no terminal width; give tables room instead of 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)

CREATE_HINT = (
    "run `tenantguard db upgrade` to create one there, or point TENANTGUARD_DATA_DIR or "
    "TENANTGUARD_DATABASE_URL at an existing database (the demo's are under <data dir>/demo/<scenario>/)"
)


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The settings, read once; reading them applies the CLI's logging (quiet unless
    TENANTGUARD_LOG_LEVEL says otherwise; serve and workers switch to INFO). A command that never
    needs them (`--help`, `version`) never loads them: startup time."""
    from core.settings import Settings

    current = Settings()
    current.configure_logging(unless_set="WARNING")
    return current


def database(*, migrate: bool = True, create: bool = False) -> Database:
    """The configured database; schema brought up to date unless `migrate` is False.

    Only commands that create a database on purpose (`db upgrade`, `serve`, `worker`, `demo`) pass
    `create`: everywhere else a missing SQLite file or a database without tenantguard's schema is
    an error, so a mistyped path never reads as an empty, healthy database.
    """
    from core.db import Database, parse_database_url, sqlite_path
    from core.errors import DatabaseError

    current = settings()
    url = parse_database_url(current.effective_database_url)
    path = sqlite_path(url)
    if not create and path is not None and not path.is_file():
        raise DatabaseError(f"no tenantguard database at {path}; {CREATE_HINT}")
    db = Database.from_settings(current)
    db.ping()
    if not create:
        from core.migrations.runner import current_revision

        if current_revision(db) is None:
            db.dispose()
            where = path if path is not None else db.url.render_as_string(hide_password=True)
            raise DatabaseError(f"{where} holds no tenantguard schema; {CREATE_HINT}")
    if migrate:
        db.upgrade()
    return db


def when(value: str, option: str, *, ahead: bool = False, now: datetime | None = None) -> datetime:
    """A time typed at option `option` (``--since``): 7d, yesterday, a date or ISO 8601."""
    import typer

    from core.clock import utcnow
    from core.durations import TimeError, parse_when

    try:
        return parse_when(value, now or utcnow(), ahead=ahead)
    except TimeError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def cli_actor(
    name: str | None = None,
    *,
    permission: Permission | str | None = None,
    approves: bool = False,
    option: str = "--actor",
) -> Actor:
    """Who runs this command, never a name taken on trust (cli.identity.cli_person): the person the
    presented credential proves (holding `permission`), else the local operator ``local:<os user>``;
    a claimed `name` (`--actor`/`--as`) must be the authenticated person."""
    from cli.identity import cli_person

    return cli_person(None, name, permission=permission, approves=approves, option=option)
