"""`tenantguard serve` as a real process in end-to-end tests: started on a free port with its output
in a log file, watched until a condition holds (failing with the log's tail when serve exits or
the time runs out), and stopped with SIGTERM (then SIGKILL) whatever happened."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulator.http import free_port
from tests.cli_process import ForkedProcess, popen_cli

CLI = [sys.executable, "-c", "from cli.main import run; run()"]
WAIT_SECONDS = 240  # generous: CI is a loaded machine


def stop(process: subprocess.Popen[Any] | ForkedProcess) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def serve_until(
    env: dict[str, str], log: Path, done: Callable[[], Any], what: str, *, every: float = 1.0
) -> Any:
    """Run serve until `done()` returns something truthy; returns it. `what` names what never came."""
    with log.open("w") as out:
        server = popen_cli(
            ["serve", "--port", str(free_port())], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + WAIT_SECONDS
            while not (result := done()):
                assert server.poll() is None, (
                    f"serve exited ({server.returncode}):\n{log.read_text()[-3000:]}"
                )
                assert time.monotonic() < deadline, f"no {what}:\n{log.read_text()[-3000:]}"
                time.sleep(every)
            return result
        finally:
            stop(server)
