"""`tenantguard serve`: the HTTP API (uvicorn), the collectors' schedule and the analysis cycle
(detect -> posture -> identity -> incidents -> notify -> on-call escalations -> approved steps,
`pipeline`) in one process, after applying migrations."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any

import typer

from cli.context import database, err_console, settings

app = typer.Typer(help="serve", no_args_is_help=True)
log = logging.getLogger("tenantguard.serve")


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    scheduler: Annotated[
        bool,
        typer.Option(
            "--scheduler/--no-scheduler",
            help="Run scheduled collection and the analysis cycle in this process.",
        ),
    ] = True,
    log_level: Annotated[
        str | None, typer.Option(help="Log level (default: TENANTGUARD_LOG_LEVEL, INFO).")
    ] = None,
) -> None:
    """Serve the API (docs at /docs), collect on schedule and run the analysis cycle as data
    arrives (with a periodic sweep every TENANTGUARD_PIPELINE_SWEEP_SECONDS); stops on Ctrl-C.
    With TENANTGUARD_PIPELINE_ENGINE=procrastinate (PostgreSQL) only the API runs here and
    `tenantguard worker` processes run the jobs."""
    import uvicorn

    from api.app import create_app
    from cli.server import StoppingServer
    from console.app import install_console

    cfg = settings()
    if log_level:
        from core.settings import LOG_LEVELS

        if log_level.upper() not in LOG_LEVELS:
            raise typer.BadParameter(f"--log-level {log_level!r}: use one of {', '.join(LOG_LEVELS)}")
        cfg = cfg.model_copy(update={"log_level": log_level.upper()})
    cfg.configure_logging()
    db = database(create=True)  # applies pending migrations first
    from core.crypto import startup_keys

    keys = startup_keys(cfg.signing_key_path, db.keyring)  # a bad key file: one line, before anything runs
    pipeline = collectors = None
    if cfg.pipeline_engine == "procrastinate":
        from pipeline.workers import conninfo

        conninfo(db)  # PostgreSQL or a clear error; the jobs run in `tenantguard worker` processes
        scheduler = False
    if scheduler:
        from pipeline.embedded import embedded

        pipeline, collectors = embedded(db, cfg)
    application = create_app(cfg, db, cycle=pipeline)
    install_console(application)
    for part in (pipeline, collectors):
        if part is not None:
            part.start()
    err_console.print(
        f"tenantguard on http://{host}:{port} (console at /, OpenAPI at /docs, health at /health)"
    )
    err_console.print(keys, highlight=False)
    if cfg.pipeline_engine == "procrastinate":
        err_console.print("pipeline engine: procrastinate — run `tenantguard worker` processes for the jobs")
    grace = cfg.api.shutdown_grace_seconds
    server = StoppingServer(
        uvicorn.Config(
            application,
            host=host,
            port=port,
            log_level=cfg.log_level.lower(),
            server_header=False,
            # uvicorn believes X-Forwarded-For from 127.0.0.1 by default: only the operator's proxies here
            proxy_headers=bool(cfg.api.trusted_proxies),
            forwarded_allow_ips=list(cfg.api.trusted_proxies) or "",
            timeout_graceful_shutdown=max(1, round(grace)),
        ),
        grace=grace,
    )
    try:
        server.run()
    finally:
        for part in (collectors, pipeline):
            if part is not None:
                part.shutdown(wait=False)
        db.dispose()


COMMANDS: dict[str, Callable[..., Any]] = {"serve": serve}
