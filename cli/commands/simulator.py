"""`tenantguard simulator` commands (filled in by the simulator work)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

app = typer.Typer(help="simulator", no_args_is_help=True)
# Top-level commands this area adds (name -> function), e.g. {"collect": collect}.
COMMANDS: dict[str, Callable[..., Any]] = {}
