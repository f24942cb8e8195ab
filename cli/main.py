"""The `tenantguard` console entry point: turns errors into one clear line, and answers `version`
before anything heavy loads (the command tree is cli/app.py)."""

from __future__ import annotations

import os
import sys
from typing import Any


def __getattr__(name: str) -> Any:
    if name == "app":  # `from cli.main import app` (CliRunner tests) keeps working
        from cli.app import app

        return app
    raise AttributeError(name)


def run() -> None:
    """Console entry point: expected errors print one line and exit 1; tracebacks only with --debug.

    Messages are printed literally (never read as Rich markup: `[secrets]` stays `[secrets]`)."""
    if sys.argv[1:] == ["version"]:  # scripts and health checks call it often: answer before typer loads
        from importlib.metadata import version as package_version

        print(f"tenantguard {package_version('tenantguard')}")
        return
    from rich.text import Text

    from cli.app import app
    from cli.context import err_console
    from core.errors import TenantguardError

    debug = "--debug" in sys.argv or os.environ.get("TENANTGUARD_DEBUG") == "1"
    try:
        app()
    except TenantguardError as exc:
        if debug:
            raise
        err_console.print(Text.assemble(("error:", "red"), f" {exc}"), highlight=False, soft_wrap=True)
        sys.exit(1)
    except Exception as exc:  # a bug or an unexpected environment: still one line by default
        if debug:
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        err_console.print(
            Text.assemble(
                ("error:", "red"), f" {type(exc).__name__}: {first} (run with --debug for the traceback)"
            ),
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)
