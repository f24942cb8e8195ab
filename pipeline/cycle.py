"""One cycle: collect -> detect -> posture -> identity -> incidents -> notify -> approved steps.

`run_cycle` runs the stages of `pipeline.stages.STAGES` once, in order (the demo, the benchmarks
and the tests call it); `Cycle` is the long-lived form a service holds (serve, workers): the same
stages, a `StageBook` of what each stage did last (for /health, /metrics and `tenantguard
status`) and the caller-owned shortcuts the stages may keep (detection windows). One stage's
failure is recorded and never stops the stages after it: each reads the database, not its
predecessor's return value.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.audit import Actor
from core.db import Database
from core.settings import Settings
from pipeline.stages import SCHEDULER_ACTOR, STAGES, Stage, StageContext, StageResult

log = logging.getLogger("tenantguard.pipeline")


@dataclass
class StageRecord:
    """What a process saw of one stage: runs, successes, errors by kind, totals by count name."""

    runs: int = 0
    last_run: float | None = None  # epoch seconds
    last_success: float | None = None
    last_error: str | None = None
    seconds: float = 0.0  # of the last run
    seconds_total: float = 0.0  # of every run
    errors: dict[str, int] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    pending: bool = False


class StageBook:
    """Thread-safe record of stage runs in this process (jobs run on several threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, StageRecord] = {}

    def note(self, result: StageResult, seconds: float, failure: BaseException | None = None) -> None:
        now = time.time()
        with self._lock:
            record = self._records.setdefault(result.stage, StageRecord())
            record.runs += 1
            record.last_run = now
            record.seconds = seconds
            record.seconds_total += seconds
            record.pending = result.pending
            for name, value in result.counts.items():
                record.totals[name] = record.totals.get(name, 0) + value
            if failure is not None:
                kind = type(failure).__name__
                record.errors[kind] = record.errors.get(kind, 0) + 1
                record.last_error = f"{kind}: {failure}"[:500]
            else:
                record.last_success = now
                record.last_error = result.errors[0][:500] if result.errors else None
                if result.errors:
                    record.errors["partial"] = record.errors.get("partial", 0) + len(result.errors)

    def snapshot(self) -> dict[str, StageRecord]:
        with self._lock:
            return {
                name: StageRecord(**{**vars(r), "errors": dict(r.errors), "totals": dict(r.totals)})
                for name, r in self._records.items()
            }


@dataclass
class CycleResult:
    results: list[StageResult] = field(default_factory=list)

    def of(self, stage: str) -> StageResult | None:
        return next((r for r in self.results if r.stage == stage), None)

    def count(self, stage: str, name: str) -> int:
        result = self.of(stage)
        return result.counts.get(name, 0) if result is not None else 0

    @property
    def errors(self) -> list[str]:
        return [f"{r.stage}: {e}" for r in self.results for e in r.errors]

    @property
    def pending(self) -> bool:
        return any(r.pending for r in self.results)


class Cycle:
    """The stages bound to one database and its settings, with a StageBook and shortcuts."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        actor: Actor = SCHEDULER_ACTOR,
        stages: Sequence[Stage] | None = None,
        book: StageBook | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.actor = actor
        self.stages = list(stages) if stages is not None else STAGES
        self.book = book or StageBook()
        self.caches: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def context(self, **overrides: Any) -> StageContext:
        values: dict[str, Any] = {"max_batches": self.settings.pipeline_max_batches, "caches": self.caches}
        values.update(overrides)
        return StageContext(**values)

    def lock(self, key: str) -> threading.Lock:
        """One run at a time per key in this process (a second waits, then sees the new state)."""
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def run_stage(
        self, stage: Stage, ctx: StageContext | None = None, *, lock: str | None = None
    ) -> StageResult:
        """One stage once; `lock` is what may not run twice at once (default: the stage; a
        detection job's partition, ``detect:<partition>``)."""
        ctx = ctx or self.context()
        began = time.perf_counter()
        with self.lock(lock or f"stage:{stage.name}"):
            try:
                result = stage.run(self.db, self.settings, self.actor, ctx)
            except Exception as exc:  # one stage's failure must not stop the others
                log.exception("stage %s failed", stage.name)
                result = StageResult(stage.name, errors=[f"{type(exc).__name__}: {exc}"], pending=True)
                self.book.note(result, time.perf_counter() - began, exc)
                return result
        self.book.note(result, time.perf_counter() - began)
        for error in result.errors[:5]:
            log.warning("stage %s: %s", stage.name, error)
        return result

    def run(
        self,
        *,
        only: Iterable[str] | None = None,
        skip: Iterable[str] = (),
        ctx: StageContext | None = None,
    ) -> CycleResult:
        """Each chosen stage once, in cycle order."""
        chosen = set(only) if only is not None else None
        skipped = set(skip)
        ctx = ctx or self.context()
        out = CycleResult()
        for stage in self.stages:
            if (chosen is not None and stage.name not in chosen) or stage.name in skipped:
                continue
            out.results.append(self.run_stage(stage, ctx))
        return out


def run_cycle(
    db: Database,
    settings: Settings,
    *,
    actor: Actor = SCHEDULER_ACTOR,
    only: Iterable[str] | None = None,
    skip: Iterable[str] = (),
    until_settled: bool = True,
    **context: Any,
) -> CycleResult:
    """The whole cycle once (every stage, in order), as the demo, benchmarks and tests run it.

    With `until_settled` (the default) detection is unbounded, so the one pass works through the
    whole backlog; `context` sets StageContext fields (e.g. ``notify=False``, ``now=...``).
    """
    cycle = Cycle(db, settings, actor=actor)
    if until_settled:
        context.setdefault("max_batches", None)
    return cycle.run(only=only, skip=skip, ctx=cycle.context(**context))
