"""`tenantguard worker`: run the cycle's jobs (collection, detection, analysis, on-call timers) on
Procrastinate, on PostgreSQL; start as many as you like, on any machines (pipeline/workers.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from cli.context import database, err_console, settings


def worker(
    concurrency: Annotated[int, typer.Option(help="Jobs this process runs at once.", min=1, max=64)] = 4,
    poll_seconds: Annotated[
        float, typer.Option(help="How often to look for due jobs (new ones are announced at once).", min=0.1)
    ] = 1.0,
) -> None:
    """Run jobs until SIGTERM/Ctrl-C. Needs PostgreSQL (TENANTGUARD_DATABASE_URL); applies pending
    migrations (Procrastinate's tables included) first. Pair with `TENANTGUARD_PIPELINE_ENGINE=procrastinate
    tenantguard serve` for the API."""
    from pipeline.workers import WorkerApp

    cfg = settings()
    cfg.configure_logging(unless_set="WARNING")  # TENANTGUARD_LOG_LEVEL when set
    db = database(create=True)
    from core.crypto import startup_keys

    keys = startup_keys(cfg.signing_key_path, db.keyring)  # a bad key file: one line, before any job
    app = WorkerApp(db, cfg)
    err_console.print(f"tenantguard worker {app.worker_name}: {concurrency} at a time")
    err_console.print(keys, highlight=False)
    try:
        app.run_worker(concurrency=concurrency, poll_seconds=poll_seconds)
    finally:
        db.dispose()


COMMANDS: dict[str, Callable[..., Any]] = {"worker": worker}
