"""The `serve` and `truth` commands, shared by `tenantguard simulator ...` and `python -m simulator ...`.

`serve` prints ONE JSON line (the connection info, the SMTP/IMAP ports and the OpenID issuer
included) on stdout, flushes, and serves until SIGINT or SIGTERM; everything else goes to stderr,
so a parent process can read the line and go.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

from simulator.errors import SimulatorError
from simulator.handle import start
from simulator.scenario import available_scenarios
from simulator.world import build_world


def serve(
    scenario: str,
    port: int = 0,
    tls_port: int = 0,
    faults: str | None = None,
    users: int | None = None,
    days: int | None = None,
    seed: int | None = None,
    start_at: str | None = None,
    out: TextIO = sys.stdout,
    stop: threading.Event | None = None,
    on_ready: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Start the simulator, call `on_ready(info)` (before the JSON line, so whatever it writes
    exists when a parent reads the line), print the line, serve until SIGINT/SIGTERM or `stop`."""
    handle = start(
        scenario,
        users=users,
        days=days,
        seed=seed,
        start=start_at,
        faults=faults,
        port=port,
        tls_port=tls_port,
        mail=True,
    )
    stop = stop or threading.Event()
    previous = (
        {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)} if _main_thread() else {}
    )
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        if on_ready is not None:
            on_ready(handle.info)
        out.write(json.dumps(handle.info) + "\n")
        out.flush()
        while not stop.wait(0.5):
            pass
    finally:
        handle.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def truth(
    scenario: str,
    users: int | None = None,
    days: int | None = None,
    seed: int | None = None,
    start_at: str | None = None,
) -> dict[str, Any]:
    return build_world(scenario, users=users, days=days, seed=seed, start=start_at).truth()


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description="A local Microsoft 365 / Google Workspace / Slack / Okta, with mail and an OpenID provider.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("serve", "truth"):
        command = commands.add_parser(name)
        command.add_argument(
            "--scenario",
            default="account_takeover",
            help=f"a file or one of {', '.join(available_scenarios())}",
        )
        command.add_argument("--users", type=int)
        command.add_argument("--days", type=int)
        command.add_argument("--seed", type=int)
        command.add_argument("--start", help="ISO date-time the scenario starts (default: it ends now)")
        if name == "serve":
            command.add_argument("--port", type=int, default=0)
            command.add_argument("--tls-port", type=int, default=0)
            command.add_argument(
                "--faults", help="e.g. 429=0.1,500=0.05,slow=0.02:1.5 (see simulator/README.md)"
            )
    commands.add_parser("scenarios")
    args = parser.parse_args(argv)
    try:
        if args.command == "scenarios":
            print("\n".join(available_scenarios()))
        elif args.command == "truth":
            print(json.dumps(truth(args.scenario, args.users, args.days, args.seed, args.start), indent=2))
        else:
            serve(
                args.scenario,
                args.port,
                args.tls_port,
                args.faults,
                args.users,
                args.days,
                args.seed,
                args.start,
            )
    except SimulatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
