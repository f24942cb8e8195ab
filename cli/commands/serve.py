"""`tenantguard serve`: the HTTP API (uvicorn) plus the collectors' scheduler, after applying migrations."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from typing import Annotated, Any

import typer

from cli.context import database, err_console, settings

app = typer.Typer(help="serve", no_args_is_help=True)
log = logging.getLogger("tenantguard.serve")


def _scheduler(db: Any, cfg: Any) -> Any | None:
    """The collectors' scheduler when that stage is installed; None (with a note) otherwise."""
    if importlib.util.find_spec("collectors.scheduler") is None:
        err_console.print(
            "note: collectors.scheduler is not available; serving the API without scheduled collection"
        )
        return None
    from collectors.scheduler import build_scheduler

    return build_scheduler(db, cfg)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    scheduler: Annotated[
        bool, typer.Option("--scheduler/--no-scheduler", help="Run scheduled collection in this process.")
    ] = True,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the API (docs at /docs) and run the collection schedule; stops cleanly on Ctrl-C."""
    import uvicorn

    from api.app import create_app

    cfg = settings()
    db = database()  # applies pending migrations first
    application = create_app(cfg, db)
    jobs = _scheduler(db, cfg) if scheduler else None
    if jobs is not None:
        jobs.start()
    err_console.print(f"tenantguard API on http://{host}:{port} (OpenAPI at /docs, health at /health)")
    try:
        uvicorn.run(application, host=host, port=port, log_level=log_level, server_header=False)
    finally:
        if jobs is not None:
            jobs.shutdown(wait=False)
        db.dispose()


COMMANDS: dict[str, Callable[..., Any]] = {"serve": serve}
