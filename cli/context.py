"""What every command needs: settings, the database (migrated), and a console."""

from __future__ import annotations

import getpass
import sys
from functools import lru_cache

from rich.console import Console

from core.audit import Actor, Channel
from core.db import Database
from core.settings import Settings

# Piped output (CI logs, `| less`) has no terminal width; give tables room instead of 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings()


def database(*, migrate: bool = True) -> Database:
    """The configured database; schema brought up to date unless `migrate` is False."""
    db = Database.from_settings(settings())
    if migrate:
        db.upgrade()
    else:
        db.ping()
    return db


def cli_actor(name: str | None = None) -> Actor:
    """Who runs this command: `--actor` when given, else the operating-system user."""
    if name:
        return Actor(name, Channel.CLI)
    try:
        return Actor(f"principal:{getpass.getuser()}", Channel.CLI)
    except (KeyError, OSError):
        return Actor("system:cli", Channel.CLI)
