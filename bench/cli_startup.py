"""How long `tenantguard version`, `tenantguard --help` and one area's `--help` take to start,
as wall time and CPU time (user + system) of the real console script, against the bare
interpreter's start in the same run (the floor no import strategy can go under).

CPU time is the figure to compare with the 0.3 s goal on a shared machine: wall time also counts
waiting for a core.

    python -m bench cli_startup
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import Figure, Stats, print_table, repeat

AREA = "cli startup"
SCRIPT = Path(sys.executable).parent / "tenantguard"
COMMANDS = (("version",), ("--help",), ("incidents", "--help"))


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _measure(argv: list[str]) -> tuple[float, float]:
    """One start: (wall seconds, CPU seconds) of the child alone."""
    cpu_before = _child_cpu()
    began = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env={**os.environ, "COLUMNS": "120"})
    return time.perf_counter() - began, _child_cpu() - cpu_before


def _stats(argv: list[str], runs: int) -> tuple[Stats, Stats]:
    walls: list[float] = []
    cpus: list[float] = []

    def one() -> float:
        wall, cpu = _measure(argv)
        walls.append(wall)
        cpus.append(cpu)
        return wall

    repeat(one, runs)
    return repeat(iter(walls).__next__, runs), repeat(iter(cpus).__next__, runs)


def run(quick: bool = False) -> list[Figure]:
    runs = 5 if quick else 15
    floor_wall, floor_cpu = _stats([sys.executable, "-c", "pass"], runs)
    figures = []
    for args in COMMANDS:
        wall, cpu = _stats([str(SCRIPT), *args], runs)
        label = "tenantguard " + " ".join(args)
        figures.append(
            Figure.from_stats(
                AREA,
                f"{label} (CPU)",
                cpu,
                "s",
                baseline_name="bare python -c pass (CPU)",
                baseline=floor_cpu.median,
                goal="< 0.3 s",
            )
        )
        figures.append(
            Figure.from_stats(
                AREA,
                f"{label} (wall)",
                wall,
                "s",
                baseline_name="bare python -c pass (wall)",
                baseline=floor_wall.median,
            )
        )
    return figures


if __name__ == "__main__":
    print_table(run(quick="--quick" in sys.argv))
