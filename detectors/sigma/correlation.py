"""Sigma correlations evaluated natively, in event time, with bounded state.

For each correlation the engine keeps, per tenant and group-by key, the recent matches of its member rules
(time, event id, and for `value_count` the value) sorted by event time. An event that arrives
out of order is inserted at its place and every window that could now be complete is checked,
so lateness inside `timespan + allowed_lateness` changes nothing. The late-arrival rule: a match
more than `timespan + lateness` older than the newest match a correlation has seen is dropped
(counted in `late_dropped`); the rule's own match is still reported (when the rule emits). A group that fires is cleared,
so the same events never fire twice. State is bounded three ways: entries older than the
watermark minus `timespan + lateness` are dropped, each group keeps at most `max_entries`
entries, and at most `max_groups` groups are kept (least recently updated evicted first).

After a restart the state is rebuilt by replaying the stored events of the last
`timespan + lateness` with emission off (see `DetectionEngine.warm_up`).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from detectors.sigma.compiler import FieldPath
from detectors.sigma.definitions import CompiledCorrelation, CompiledRule, CorrelationType
from detectors.sigma.events import EventView, stringform

DEFAULT_LATENESS = 2 * 3600.0  # Google's reports lag by up to a couple of hours


@dataclass(slots=True)
class CorrelationHit:
    correlation: CompiledCorrelation
    ts: float
    first_ts: float
    event_ids: tuple[int | str, ...]
    count: int
    group: dict[str, str]
    view: EventView
    values: tuple[str, ...] = ()  # value_count: the distinct values that made the window


class _Group:
    """Matches of one group-by key, sorted by time; `vals` only for value_count, `rules` for temporal."""

    __slots__ = ("ts", "ids", "vals", "rules", "fired_until")

    def __init__(self, with_values: bool, with_rules: bool) -> None:
        self.fired_until = float("-inf")  # a count window that fired keeps absorbing matches until then
        self.ts: list[float] = []
        self.ids: list[int | str | tuple[int | str, ...]] = []
        self.vals: list[str] | None = [] if with_values else None
        self.rules: list[str] | None = [] if with_rules else None

    def insert(
        self, ts: float, event_id: int | str | tuple[int | str, ...], value: str | None, rule: str | None
    ) -> int:
        at = bisect_right(self.ts, ts)
        self.ts.insert(at, ts)
        self.ids.insert(at, event_id)
        if self.vals is not None:
            self.vals.insert(at, value or "")
        if self.rules is not None:
            self.rules.insert(at, rule or "")
        return at

    def drop_before(self, cutoff: float) -> None:
        cut = bisect_left(self.ts, cutoff)
        if cut:
            self._drop(cut)

    def cap(self, limit: int) -> None:
        if len(self.ts) > limit:
            self._drop(len(self.ts) - limit)

    def _drop(self, count: int) -> None:
        del self.ts[:count]
        del self.ids[:count]
        if self.vals is not None:
            del self.vals[:count]
        if self.rules is not None:
            del self.rules[:count]

    def clear_until(self, ts: float) -> None:
        self._drop(bisect_right(self.ts, ts))


class CorrelationState:
    """Windows of one correlation rule."""

    def __init__(
        self, corr: CompiledCorrelation, *, lateness: float, max_groups: int, max_entries: int
    ) -> None:
        self.corr = corr
        self.lateness = lateness
        self.max_groups = max_groups
        needed = corr.count * (4 if corr.type is CorrelationType.VALUE_COUNT else 2)
        self.max_entries = max(max_entries, needed)
        self.groups: dict[str | tuple[str, ...], _Group | tuple[Any, ...]] = {}
        temporal = corr.type in (CorrelationType.TEMPORAL, CorrelationType.TEMPORAL_ORDERED)
        single_fires = corr.count <= 1 or (temporal and len(set(corr.members)) <= 1)
        self._single_cannot_fire = not single_fires
        self.watermark = float("-inf")
        self._last_sweep = float("-inf")
        self.late_dropped = 0
        self._paths = {
            alias: {rule: corr.aliases.get(alias, {}).get(rule, FieldPath.of(alias)) for rule in corr.members}
            for alias in corr.group_by
        }

    # -- keys ------------------------------------------------------------------------------
    def _group_values(self, rule_id: str, view: EventView) -> tuple[tuple[str, ...], dict[str, str]]:
        key: list[str] = []
        shown: dict[str, str] = {}
        for alias, per_rule in self._paths.items():
            path = per_rule.get(rule_id) or FieldPath.of(alias)
            original = None
            for value in view.resolve(path.dotted, path.segments):
                if stringform(value) is not None:
                    original = value
                    break
            form = stringform(original) if original is not None else ""
            key.append(form or "")
            shown[alias] = str(original) if original is not None else ""
        return tuple(key), shown

    # -- evaluation ----------------------------------------------------------------------------
    def observe(
        self, member_id: str, view: EventView, ts: float, event_id: int | str | tuple[int | str, ...]
    ) -> CorrelationHit | None:
        """Add one member match (a rule's event, or a member correlation's firing) and check."""
        horizon = self.corr.timespan + self.lateness
        if ts < self.watermark - horizon:
            self.late_dropped += 1
            return None
        if ts > self.watermark:
            self.watermark = ts
        key_parts, shown = self._group_values(member_id, view)
        if view.record.tenant:  # one tenant's window never counts another's events
            key_parts = (view.record.tenant, *key_parts)
        key: str | tuple[str, ...] = key_parts[0] if len(key_parts) == 1 else key_parts
        value = None
        if self.corr.value_field is not None:
            path = self.corr.value_field
            forms = view.forms(path.dotted, path.segments)
            if not forms:
                return None
            value = forms[0]
        stored = self.groups.pop(key, None)
        if stored is None and self._single_cannot_fire:
            # most keys of a high-cardinality group-by are seen once: keep them as one small tuple
            self.groups[key] = (ts, event_id, value, member_id)
            self._finish_compact()
            return None
        group = self._expand(stored)
        self.groups[key] = group  # re-inserted last: dict order is least-recently-updated first
        if ts <= group.fired_until and self.corr.type in (
            CorrelationType.EVENT_COUNT,
            CorrelationType.VALUE_COUNT,
        ):
            # the window already fired: this match belongs to the same alert (the alerter dedups it)
            group.fired_until = max(group.fired_until, ts + self.corr.timespan)
            self._finish(key, group)
            ids = event_id if isinstance(event_id, tuple) else (event_id,)
            return CorrelationHit(self.corr, ts, ts, ids, 1, shown, view, (value,) if value else ())
        group.drop_before(self.watermark - horizon)
        group.insert(ts, event_id, value, member_id)
        group.cap(self.max_entries)
        hit = self._check(group, ts)
        if hit is None:
            self._finish(key, group)
            return None
        start, end_ts, count, window_ids = hit
        values: tuple[str, ...] = ()
        if group.vals is not None:
            first, last = bisect_left(group.ts, start), bisect_right(group.ts, end_ts)
            values = tuple(dict.fromkeys(group.vals[first:last]))[:50]
        group.clear_until(end_ts)  # these events have fired; they never fire again
        group.fired_until = end_ts + self.corr.timespan
        self._finish(key, group)
        return CorrelationHit(
            self.corr, max(ts, end_ts), start, _flatten(window_ids), count, shown, view, values
        )

    def _expand(self, stored: _Group | tuple[Any, ...] | None) -> _Group:
        if isinstance(stored, _Group):
            return stored
        group = _Group(
            self.corr.type is CorrelationType.VALUE_COUNT,
            self.corr.type in (CorrelationType.TEMPORAL, CorrelationType.TEMPORAL_ORDERED),
        )
        if stored is not None:
            ts, event_id, value, member = stored
            group.insert(ts, event_id, value, member)
        return group

    def _finish(self, key: str | tuple[str, ...], group: _Group) -> None:
        if not group.ts and group.fired_until < self.watermark:
            self.groups.pop(key, None)
        self._finish_compact()

    def _finish_compact(self) -> None:
        if len(self.groups) > self.max_groups:
            self.groups.pop(next(iter(self.groups)))
        if self.watermark - self._last_sweep > self.corr.timespan + self.lateness:
            self.sweep()

    def sweep(self) -> None:
        """Forget groups whose newest match can no longer be part of any window."""
        self._last_sweep = self.watermark
        cutoff = self.watermark - self.corr.timespan - self.lateness
        stale = []
        for key, group in self.groups.items():
            if isinstance(group, tuple):
                if group[0] < cutoff:
                    stale.append(key)
            elif (not group.ts or group.ts[-1] < cutoff) and group.fired_until < cutoff:
                stale.append(key)
        for key in stale:
            del self.groups[key]

    def _check(
        self, group: _Group, ts: float
    ) -> tuple[float, float, int, tuple[int | str | tuple[int | str, ...], ...]] | None:
        """A complete window containing `ts`: (first time, last time, count, evidence ids)."""
        span = self.corr.timespan
        times = group.ts
        # windows that could have become complete end at an entry in [ts, ts + span]
        lo = bisect_left(times, ts)
        hi = bisect_right(times, ts + span)
        for end in range(lo, hi):
            start = bisect_left(times, times[end] - span)
            found = self._window(group, start, end)
            if found is not None:
                count, ids = found
                return times[start], times[end], count, ids
        return None

    def _window(
        self, group: _Group, start: int, end: int
    ) -> tuple[int, tuple[int | str | tuple[int | str, ...], ...]] | None:
        corr = self.corr
        ids = group.ids[start : end + 1]
        if corr.type is CorrelationType.EVENT_COUNT:
            count = end - start + 1
            return (count, tuple(ids)) if count >= corr.count else None
        if corr.type is CorrelationType.VALUE_COUNT:
            assert group.vals is not None
            distinct = set(group.vals[start : end + 1])
            return (end - start + 1, tuple(ids)) if len(distinct) >= corr.count else None
        assert group.rules is not None
        rules = group.rules[start : end + 1]
        if corr.type is CorrelationType.TEMPORAL:
            present = set(rules)
            if len(present & set(corr.members)) >= min(corr.count, len(set(corr.members))):
                return len(ids), tuple(ids)
            return None
        chain: list[int | str | tuple[int | str, ...]] = []
        position = 0
        for member in corr.members:  # temporal_ordered: members in order, greedily earliest
            while position < len(rules) and rules[position] != member:
                position += 1
            if position >= len(rules):
                return None
            chain.append(ids[position])
            position += 1
        return len(chain), tuple(chain)


def _flatten(ids: tuple[int | str | tuple[int | str, ...], ...]) -> tuple[int | str, ...]:
    out: list[int | str] = []
    for item in ids:
        if isinstance(item, tuple):
            out.extend(item)
        else:
            out.append(item)
    return tuple(dict.fromkeys(out))


class CorrelationEngine:
    """Feeds each rule match to the correlations that reference the rule."""

    def __init__(
        self,
        correlations: Iterable[CompiledCorrelation],
        *,
        lateness: float = DEFAULT_LATENESS,
        max_groups: int = 1_000_000,
        max_entries: int = 256,
    ) -> None:
        self.states = [
            CorrelationState(c, lateness=lateness, max_groups=max_groups, max_entries=max_entries)
            for c in correlations
        ]
        self.by_member: dict[str, list[CorrelationState]] = defaultdict(list)
        for state in self.states:
            for member in dict.fromkeys(state.corr.members):
                self.by_member[member].append(state)

    def observe(self, rule: CompiledRule, view: EventView) -> list[CorrelationHit]:
        """A rule matched an event: feed every correlation that references the rule."""
        hits = []
        record = view.record
        for state in self.by_member.get(rule.rule_id, ()):
            hit = state.observe(rule.rule_id, view, record.ts, record.id)
            if hit is not None:
                hits.append(hit)
        return hits

    def observe_hit(self, fired: CorrelationHit) -> list[CorrelationHit]:
        """A correlation fired: feed the correlations that reference it (e.g. success after brute force)."""
        hits = []
        for state in self.by_member.get(fired.correlation.rule_id, ()):
            hit = state.observe(fired.correlation.rule_id, fired.view, fired.ts, fired.event_ids)
            if hit is not None:
                hits.append(hit)
        return hits

    def horizon(self) -> float:
        """How far back a restart must replay events to rebuild every window."""
        return max((s.corr.timespan + s.lateness for s in self.states), default=0.0)

    def group_count(self) -> int:
        return sum(len(s.groups) for s in self.states)
