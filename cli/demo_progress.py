"""The demo's live progress: one status line while it collects (streams done, records read) and
while each later stage runs, then one line per phase that stays. Without a terminal (CI logs,
pipes) only the lines that stay are printed.

It is a `collectors.progress.ProgressSink` for `collect_once`, plus the stage calls the demo makes.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.status import Status
from rich.text import Text


class DemoProgress:
    def __init__(self, console: Console) -> None:
        self._console = console
        self._status: Status | None = (
            Status("starting", console=console, spinner="dots") if console.is_terminal else None
        )
        self._streams_started = 0
        self._streams_done = 0
        self._records = 0
        self._began = time.perf_counter()
        self._stage_began = 0.0
        self._stages: list[str] = []

    def __enter__(self) -> DemoProgress:
        if self._status is not None:
            self._status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()
        if self._stages:
            self._console.print(Text("✓ " + " · ".join(self._stages), style="green"))

    def _show(self, text: str) -> None:
        if self._status is not None:
            self._status.update(text)

    def _collecting(self) -> None:
        self._show(
            f"collecting: {self._streams_done}/{self._streams_started} streams done, "
            f"{self._records:,} records read ({time.perf_counter() - self._began:.0f} s)"
        )

    # ---- ProgressSink (collectors.progress) ----
    def started(self, key: str) -> None:
        self._streams_started += 1
        self._collecting()

    def page(self, key: str, *, records: int, new: int, window: tuple[datetime, datetime] | None) -> None:
        self._records += records
        self._collecting()

    def waiting(self, key: str, seconds: float, why: str) -> None:
        self._show(f"collecting: {key} waits {seconds:.1f} s ({why[:60]})")

    def finished(self, key: str, status: str) -> None:
        self._streams_done += 1
        self._collecting()

    # ---- the demo's phases ----
    def collected(self, events: int, streams: int, failed: int) -> None:
        seconds = time.perf_counter() - self._began
        line = f"✓ collected {events:,} events and snapshots from {streams} streams in {seconds:.1f} s"
        self._console.print(
            Text(line + (f" — {failed} failed" if failed else ""), style="yellow" if failed else "green")
        )

    def stage_started(self, name: str) -> None:
        self._stage_began = time.perf_counter()
        self._show(f"{name} …")

    def stage_finished(self, name: str, counts: dict[str, Any]) -> None:
        seconds = time.perf_counter() - self._stage_began
        shown = ", ".join(f"{v:,} {k}" for k, v in counts.items() if v)
        if not shown and seconds < 0.1:  # a stage with nothing to do is not worth a word
            return
        self._stages.append(f"{name} {seconds:.1f} s" + (f" ({shown})" if shown else ""))
