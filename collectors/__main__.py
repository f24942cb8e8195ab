"""`python -m collectors [--once] [--connection NAME] [--stream S]`: a collector worker process.

Reads settings from the environment (TENANTGUARD_DATABASE_URL, TENANTGUARD_CONNECTIONS_FILE,
TENANTGUARD_COLLECTOR_*, TENANTGUARD_LOG_LEVEL). With --once it runs one pass and exits 1 if any stream failed;
otherwise it runs the scheduler until SIGTERM/SIGINT. Run one per database; to scale out on
PostgreSQL run `tenantguard worker` processes instead (one job per stream at a time).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collectors")
    parser.add_argument("--once", action="store_true", help="one pass over every enabled stream, then exit")
    parser.add_argument("--connection", action="append", help="only this connection (repeatable)")
    parser.add_argument("--stream", action="append", help="only this stream (repeatable)")
    parser.add_argument(
        "--refresh-seconds", type=int, default=60, help="scheduler: how often to re-read connections"
    )
    args = parser.parse_args(argv)
    from core.db import Database
    from core.settings import Settings

    settings = Settings()
    settings.configure_logging()  # TENANTGUARD_LOG_LEVEL
    db = Database.from_settings(settings)
    db.upgrade()
    if args.once:
        from collectors import collect_once

        report = collect_once(db, settings, connections=args.connection, streams=args.stream)
        for result in report.results:
            print(
                f"{result.connection}/{result.stream}: {result.status} pages={result.pages} "
                f"read={result.records_read} new={result.records_new}"
                + (f" error={result.error}" if result.error else ""),
                flush=True,
            )
        for name, problem in report.connection_errors.items():
            print(f"{name}: FAILED {problem}", flush=True)
        return 0 if report.ok else 1

    from collectors.scheduler import build_scheduler

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    scheduler = build_scheduler(db, settings, refresh_seconds=args.refresh_seconds)
    scheduler.start()
    print("worker started", flush=True)
    stop.wait()
    scheduler.shutdown(wait=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
