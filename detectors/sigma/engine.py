"""The detection engine: event records in (any order inside a batch), finding drafts out.

Per batch: the index's rules matched column-wise per stream (see detectors.sigma.batch). Per
matching event, in event-time order (one instant's events by provider identity, so neither the
order records were fed in nor how they were cut into batches changes anything when batches come
in event time: `detectors.event_time` reads them so): one case-insensitive view; each match goes through
suppressions, then to the alerter (dedup/threshold) and to the correlations that reference the
rule. A bad event or a rule that fails on one event is reported with its id and
the batch goes on; nothing here raises for bad input.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.clock import utcnow
from detectors.sigma.alerting import Alerter, FindingDraft, Hit
from detectors.sigma.correlation import DEFAULT_LATENESS, CorrelationEngine
from detectors.sigma.definitions import CompiledRule, RulePack
from detectors.sigma.events import EventRecord, EventView
from detectors.sigma.index import RuleIndex
from detectors.sigma.suppressions import SuppressionSpec, Suppressor


@dataclass(frozen=True)
class EvaluationError:
    """An event (or one rule on one event) that could not be evaluated, and why."""

    event_id: int | str
    rule_id: str | None
    reason: str

    def __str__(self) -> str:
        who = f" by rule {self.rule_id}" if self.rule_id else ""
        return f"event {self.event_id} could not be evaluated{who}: {self.reason}"


@dataclass
class BatchResult:
    findings: list[FindingDraft] = field(default_factory=list)
    errors: list[EvaluationError] = field(default_factory=list)
    suppressed: Counter[int | str] = field(default_factory=Counter)
    events: int = 0
    matches: int = 0


class DetectionEngine:
    """Long-lived: keeps dedup/threshold and correlation state between batches."""

    def __init__(
        self,
        pack: RulePack,
        *,
        suppressions: Iterable[SuppressionSpec] = (),
        lateness: float = DEFAULT_LATENESS,
        max_groups: int = 1_000_000,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.pack = pack
        self.index = RuleIndex(pack.rules)
        self.correlations = CorrelationEngine(pack.correlations, lateness=lateness, max_groups=max_groups)
        self.alerter = Alerter()
        self.suppressor = Suppressor(suppressions)
        self.clock = clock

    def set_suppressions(self, specs: Iterable[SuppressionSpec]) -> None:
        self.suppressor = Suppressor(specs)

    def replay_horizon(self) -> float:
        """Seconds of stored events to replay after a restart to rebuild windows and open alerts."""
        dedup = max((r.alert.dedup_period for r in self.pack.rules), default=0.0)
        corr_dedup = max((c.alert.dedup_period for c in self.pack.correlations if c.alert), default=0.0)
        return max(self.correlations.horizon(), dedup, corr_dedup)

    # -- matching ----------------------------------------------------------------------------
    def match(self, view: EventView, errors: list[EvaluationError]) -> list[CompiledRule]:
        """Rules matching one event; a rule that raises on it is reported and skipped."""
        try:
            return self.index.match(view)
        except Exception:
            pass
        matched = []
        try:
            candidates = self.index.candidates(view)
        except Exception as exc:
            errors.append(EvaluationError(view.record.id, None, f"{type(exc).__name__}: {exc}"[:300]))
            return []
        for rule in candidates:
            try:
                if rule.matches(view):
                    matched.append(rule)
            except Exception as exc:
                errors.append(
                    EvaluationError(view.record.id, rule.rule_id, f"{type(exc).__name__}: {exc}"[:300])
                )
        return matched

    # -- batches -------------------------------------------------------------------------------
    def process(self, records: Iterable[EventRecord], *, emit: bool = True) -> BatchResult:
        """Evaluate a batch in event-time order. With `emit=False` (restart warm-up) state is
        rebuilt but nothing is reported or counted.

        Matching is stateless, so it runs first for the whole batch, column-wise per stream
        (`RuleIndex.match_batch`); the matches then go through suppressions, alerting and
        correlations event by event in time order, as before."""
        result = BatchResult()
        now = self.clock()
        ordered = sorted(records, key=_event_time)
        readable: list[EventRecord] = []
        for record in ordered:
            result.events += 1
            if type(record.data) is not dict and not isinstance(record.data, Mapping):
                try:
                    EventView(record)  # raises, saying why
                except Exception as exc:
                    result.errors.append(
                        EvaluationError(
                            record.id, None, f"unreadable event: {type(exc).__name__}: {exc}"[:300]
                        )
                    )
                    continue
            readable.append(record)
        errors = result.errors

        def one_by_one(record: EventRecord) -> list[CompiledRule]:
            return self.match(EventView(record), errors)

        matched = self.index.match_batch(readable, fallback=one_by_one)
        for record, rules in zip(readable, matched, strict=True):
            if not rules:
                continue
            view = EventView(record)
            for rule in rules:
                result.matches += 1
                try:
                    self._on_match(rule, view, now, emit)
                except Exception as exc:  # never let one alert's bookkeeping stop the batch
                    result.errors.append(
                        EvaluationError(record.id, rule.rule_id, f"{type(exc).__name__}: {exc}"[:300])
                    )
        drafts = self.alerter.drain()
        if emit:
            result.findings = drafts
            result.suppressed = self.suppressor.take_counts()
        else:
            self.suppressor.take_counts()
        return result

    def warm_up(self, records: Iterable[EventRecord]) -> BatchResult:
        return self.process(records, emit=False)

    def _on_match(self, rule: CompiledRule, view: EventView, now: datetime, emit: bool) -> None:
        keys = (rule.rule_id, rule.uuid, rule.name)
        if self.suppressor and self.suppressor.check(keys, view, now, count=emit) is not None:
            return
        record = view.record
        if rule.emits:
            self.alerter.add(Hit(rule, record.ts, (record.id,), view), emit=emit)
        if not rule.used_by:
            return
        pending = self.correlations.observe(rule, view)
        while pending:
            hit = pending.pop(0)
            corr = hit.correlation
            ckeys = (corr.rule_id, corr.uuid, corr.name)
            if (
                self.suppressor
                and self.suppressor.check(ckeys, hit.view, now, hit.group, count=emit) is not None
            ):
                continue
            if corr.emits:
                self.alerter.add(
                    Hit(
                        corr, hit.ts, hit.event_ids, hit.view, hit.group, hit.count, hit.first_ts, hit.values
                    ),
                    emit=emit,
                )
            if corr.used_by:
                pending.extend(self.correlations.observe_hit(hit))

    def stats(self) -> dict[str, Any]:
        return {
            "rules": len(self.pack.rules),
            "correlations": len(self.pack.correlations),
            "open_alerts": len(self.alerter.open),
            "correlation_groups": self.correlations.group_count(),
        }


def _event_time(record: EventRecord) -> tuple[float, str, str, str, str]:
    """Event time, one instant's events by provider identity: never the order they were fed in."""
    return (record.ts, record.provider, record.stream, record.provider_event_id or "", str(record.id))
