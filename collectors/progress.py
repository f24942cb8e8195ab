"""Progress of long reads (backfills): pages, records/s and the window being read, shown with rich."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Protocol

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from core.clock import isoformat


class ProgressSink(Protocol):
    def started(self, key: str) -> None: ...

    def page(self, key: str, *, records: int, new: int, window: tuple[datetime, datetime] | None) -> None: ...

    def waiting(self, key: str, seconds: float, why: str) -> None: ...

    def finished(self, key: str, status: str) -> None: ...


class RichProgress:
    """One line per (connection, stream): pages, records, new, records/s, window."""

    def __init__(self, console: Console | None = None) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[key]}"),
            TextColumn("{task.fields[pages]} pages"),
            TextColumn("{task.fields[records]} read / {task.fields[new]} new"),
            TextColumn("{task.fields[rate]:.0f}/s"),
            TextColumn("[dim]{task.fields[note]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._started: dict[str, float] = {}
        self._counts: dict[str, list[int]] = {}

    def __enter__(self) -> RichProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)

    def started(self, key: str) -> None:
        self._started[key] = time.monotonic()
        self._counts[key] = [0, 0, 0]
        self._tasks[key] = self._progress.add_task(
            key, total=None, key=key, pages=0, records=0, new=0, rate=0.0, note="starting"
        )

    def page(self, key: str, *, records: int, new: int, window: tuple[datetime, datetime] | None) -> None:
        counts = self._counts.setdefault(key, [0, 0, 0])
        counts[0] += 1
        counts[1] += records
        counts[2] += new
        elapsed = max(time.monotonic() - self._started.get(key, time.monotonic()), 1e-6)
        note = f"{isoformat(window[0])} → {isoformat(window[1])}" if window else ""
        if key in self._tasks:
            self._progress.update(
                self._tasks[key],
                pages=counts[0],
                records=counts[1],
                new=counts[2],
                rate=counts[1] / elapsed,
                note=note,
            )

    def waiting(self, key: str, seconds: float, why: str) -> None:
        if key in self._tasks:
            self._progress.update(self._tasks[key], note=f"waiting {seconds:.1f}s ({why[:60]})")

    def finished(self, key: str, status: str) -> None:
        if key in self._tasks:
            self._progress.update(self._tasks[key], note=status)
            self._progress.stop_task(self._tasks[key])
