"""Run a stage in its own process and SIGKILL it at chosen moments, then let it finish.

Shared by ``python -m bench.chaos`` and the short CI form in tests/resilience. The stage is
:mod:`bench.chaos_worker` (a collector pass, or detection + incidents); a kill lands after the
worker has said ``started``, at a delay drawn uniformly from a fraction of how long a clean pass
took, so kills fall inside the product's code at varied points.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.chaos_worker import MISSING_STAGE


class StageMissing(RuntimeError):
    """The stage's entry point has not landed in this tree; the chaos run says so and skips it."""


@dataclass(frozen=True)
class WorkerRun:
    stage: str
    seconds: float
    returncode: int
    killed_after: float | None  # seconds after "started" when SIGKILL was sent, None if not killed
    output: str
    stage_seconds: float = 0.0  # from "started" to exit: the span a kill can land in


@dataclass
class KillLog:
    runs: list[WorkerRun] = field(default_factory=list)

    @property
    def kills(self) -> int:
        return sum(1 for r in self.runs if r.killed_after is not None and r.returncode == -signal.SIGKILL)

    def describe(self) -> str:
        parts = [
            f"{r.stage}: killed at {r.killed_after:.2f}s"
            if r.killed_after is not None
            else f"{r.stage}: rc={r.returncode} ({r.seconds:.1f}s)"
            for r in self.runs
        ]
        return "; ".join(parts)


def run_worker(
    stage: str,
    database_url: str,
    data_dir: str,
    *,
    kill_after: float | None = None,
    during: Callable[[], None] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600.0,
) -> WorkerRun:
    """One worker process; SIGKILL it `kill_after` seconds after it starts the stage (if still running).

    `during`, when given, is called once the stage has started (e.g. to crash PostgreSQL under it).
    """
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.chaos_worker", stage, database_url, data_dir],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        text=True,
    )
    assert process.stdout is not None
    first = ""
    while True:  # imports may print warnings first; the stage has begun at "started"
        line = process.stdout.readline()
        first += line
        if not line or line.startswith("started"):
            break
    killed_after = None
    began = time.perf_counter()
    if first.endswith("started\n"):
        if during is not None:
            during()
        if kill_after is not None:
            try:
                process.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                killed_after = kill_after
    try:
        rest, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        rest, _ = process.communicate()
    if process.returncode == MISSING_STAGE:
        raise StageMissing(first.strip() or stage)
    end = time.perf_counter()
    output = (first + (rest or ""))[-2000:]
    return WorkerRun(stage, end - start, process.returncode, killed_after, output, end - began)


def run_with_kills(
    stage: str,
    database_url: str,
    data_dir: str,
    *,
    kills: int,
    clean_seconds: float,
    rng: random.Random,
    log: KillLog,
    env: dict[str, str] | None = None,
    attempts: int = 5,
) -> WorkerRun:
    """Kill the stage `kills` times at random points, then run it until one pass succeeds."""
    for _ in range(kills):
        delay = rng.uniform(0.05, 0.9) * max(clean_seconds, 0.2)
        log.runs.append(run_worker(stage, database_url, data_dir, kill_after=delay, env=env))
    return finish(stage, database_url, data_dir, log=log, env=env, attempts=attempts)


def finish(
    stage: str,
    database_url: str,
    data_dir: str,
    *,
    log: KillLog,
    env: dict[str, str] | None = None,
    attempts: int = 5,
) -> WorkerRun:
    """Run the stage until a pass exits 0 (a pass may fail on purpose, e.g. right after a crash)."""
    for _ in range(attempts):
        run = run_worker(stage, database_url, data_dir, env=env)
        log.runs.append(run)
        if run.returncode == 0:
            return run
    raise RuntimeError(
        f"{stage} never completed after {attempts} attempts; last output:\n{log.runs[-1].output}"
    )
