"""What every benchmark shares: repeated timing with medians, figures with baselines, the results file.

A benchmark module defines ``run(quick: bool) -> list[Figure]``. ``python -m bench`` runs them
all, prints one table and writes ``bench/results/latest.json`` (machine, versions, figures).
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson

RESULTS_DIR = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Stats:
    median: float
    low: float
    high: float
    runs: int


def repeat(measure: Callable[[], float], runs: int = 5) -> Stats:
    """Call `measure` (which returns one figure) `runs` times; keep median, min and max."""
    values = [measure() for _ in range(runs)]
    return Stats(statistics.median(values), min(values), max(values), runs)


def rate(work: Callable[[], int]) -> Callable[[], float]:
    """Turn a function returning how many items it processed into one returning items per second."""

    def measure() -> float:
        start = time.perf_counter()
        count = work()
        return count / (time.perf_counter() - start)

    return measure


@dataclass(frozen=True)
class Figure:
    """One reported number: what, its unit, the same-run baseline it is compared to, and the goal."""

    area: str
    name: str
    value: float
    unit: str
    low: float | None = None
    high: float | None = None
    runs: int = 1
    baseline_name: str | None = None
    baseline: float | None = None
    goal: str | None = None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline

    @classmethod
    def from_stats(cls, area: str, name: str, stats: Stats, unit: str, **kwargs: Any) -> Figure:
        return cls(area, name, stats.median, unit, stats.low, stats.high, stats.runs, **kwargs)


@contextlib.contextmanager
def work_dir(prefix: str) -> Iterator[Path]:
    """A run's directory: ``TENANTGUARD_BENCH_KEEP`` (created if need be, left behind with its
    database and logs for a look afterwards), else a temporary one removed at the end."""
    keep = os.environ.get("TENANTGUARD_BENCH_KEEP")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        yield Path(keep)
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


def machine() -> dict[str, Any]:
    packages: dict[str, str | None] = {}
    for name in ("tenantguard", "sqlalchemy", "pysigma", "scikit-learn", "fastapi", "orjson", "psycopg"):
        try:
            packages[name] = version(name)
        except Exception:  # noqa: BLE001 - a missing optional package is just not reported
            packages[name] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "packages": packages,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_results(figures: list[Figure], path: Path | None = None) -> Path:
    path = path or RESULTS_DIR / "latest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "machine": machine(),
        "figures": [{**asdict(f), "ratio": f.ratio} for f in figures],
    }
    path.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
    return path


def print_table(figures: list[Figure]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="tenantguard benchmarks (medians; min–max)")
    for column in ("area", "figure", "value", "min–max", "baseline", "ratio", "goal"):
        table.add_column(column)
    for f in figures:
        spread = f"{_fmt(f.low)}–{_fmt(f.high)}" if f.low is not None else ""
        base = f"{_fmt(f.baseline)} ({f.baseline_name})" if f.baseline is not None else ""
        ratio = f"{f.ratio:.2f}×" if f.ratio is not None else ""
        table.add_row(f.area, f.name, f"{_fmt(f.value)} {f.unit}", spread, base, ratio, f.goal or "")
    Console(width=None if sys.stdout.isatty() else 220).print(table)


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"
