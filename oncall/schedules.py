"""Who is on call: layers, rotations, restrictions and overrides turned into shifts (pure functions).

A layer hands off every day, week or `shift_hours` at the wall-clock time of its `start` in its
zone (the schedule's unless the layer names one), so a 09:00 handoff stays at 09:00 across
daylight-saving changes. Restrictions cut a layer down to weekly windows in that zone. Where several layers have someone, the last one wins;
overrides beat every layer (the last listed wins). What is left uncovered is a gap; moments two or
more layers cover are reported as double coverage.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from core.clock import as_utc
from oncall.spec import Layer, Restriction, Schedule

# How far ahead `next` looks for a change of hands.
HORIZON = timedelta(days=90)


@dataclass(frozen=True)
class Shift:
    start: datetime
    end: datetime
    user: str | None  # None: nobody (a gap)

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


@dataclass(frozen=True)
class Coverage:
    shifts: list[Shift]  # the final schedule, gaps included (user None)
    gaps: list[Shift]
    double: list[Shift]  # moments covered by more than one layer (user: the one who wins)


def _utc(local: datetime, zone: ZoneInfo) -> datetime:
    return local.replace(tzinfo=zone).astimezone(UTC)


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    return as_utc(moment).astimezone(zone).replace(tzinfo=None)


def _restriction_windows(
    restrictions: Iterable[Restriction], zone: ZoneInfo, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    windows = []
    first = _local(start, zone).date() - timedelta(days=1)
    last = _local(end, zone).date() + timedelta(days=1)
    for restriction in restrictions:
        numbers = {day.number for day in restriction.days}
        day = first
        while day <= last:
            if day.weekday() in numbers:
                opens = datetime.combine(day, restriction.start)
                closes = datetime.combine(day, restriction.end)
                if closes <= opens:
                    closes += timedelta(days=1)
                windows.append((_utc(opens, zone), _utc(closes, zone)))
            day += timedelta(days=1)
    return sorted(windows)


def layer_shifts(layer: Layer, zone: ZoneInfo, start: datetime, end: datetime) -> Iterator[Shift]:
    """The layer's shifts that overlap [start, end), cut to its restrictions (not clipped to the span)."""
    length = timedelta(hours=layer.shift_length_hours)
    local_start = _local(start, zone)
    index = max(0, (local_start - layer.start) // length) if local_start > layer.start else 0
    windows = _restriction_windows(layer.restrictions, zone, start, end) if layer.restrictions else None
    while True:
        shift_start = _utc(layer.start + index * length, zone)
        if shift_start >= end:
            return
        shift_end = _utc(layer.start + (index + 1) * length, zone)
        user = layer.users[index % len(layer.users)]
        index += 1
        if shift_end <= start:
            continue
        if windows is None:
            yield Shift(shift_start, shift_end, user)
            continue
        for opens, closes in windows:
            lo, hi = max(opens, shift_start), min(closes, shift_end)
            if lo < hi:
                yield Shift(lo, hi, user)


def coverage(schedule: Schedule, start: datetime, end: datetime) -> Coverage:
    """The final schedule over [start, end), with its gaps and double coverage."""
    start, end = as_utc(start), as_utc(end)
    layers = [
        list(layer_shifts(layer, ZoneInfo(layer.timezone or schedule.timezone), start, end))
        for layer in schedule.layers
    ]
    overrides = [Shift(as_utc(o.start), as_utc(o.end), o.user) for o in schedule.overrides]
    overrides = [o for o in overrides if o.end > start and o.start < end]
    cuts = {start, end}
    for shift in [s for shifts in layers for s in shifts] + overrides:
        cuts.update(t for t in (shift.start, shift.end) if start < t < end)
    bounds = sorted(cuts)
    final: list[Shift] = []
    double: list[Shift] = []
    cursors = [0] * len(layers)
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        covering: list[str] = []
        for number, shifts in enumerate(layers):
            while cursors[number] < len(shifts) and shifts[cursors[number]].end <= lo:
                cursors[number] += 1
            position = cursors[number]
            if position < len(shifts) and shifts[position].start <= lo:
                covering.append(shifts[position].user or "")
        override = next((o.user for o in reversed(overrides) if o.start <= lo < o.end), None)
        user = override or (covering[-1] if covering else None)
        if len(covering) > 1 and override is None:
            _append(double, Shift(lo, hi, user))
        _append(final, Shift(lo, hi, user))
    return Coverage(final, [s for s in final if s.user is None], double)


def _append(shifts: list[Shift], shift: Shift) -> None:
    """Add `shift`, merged into the previous one when it continues it with the same person."""
    if shifts and shifts[-1].end == shift.start and shifts[-1].user == shift.user:
        shifts[-1] = Shift(shifts[-1].start, shift.end, shift.user)
    else:
        shifts.append(shift)


def on_call_at(schedule: Schedule, moment: datetime) -> str | None:
    moment = as_utc(moment)
    found = coverage(schedule, moment, moment + timedelta(seconds=1)).shifts
    return found[0].user if found else None


def next_shift(schedule: Schedule, moment: datetime, horizon: timedelta = HORIZON) -> Shift | None:
    """The first shift after the one running at `moment` (someone else, or a gap), within `horizon`."""
    shifts = coverage(schedule, as_utc(moment), as_utc(moment) + horizon).shifts
    return shifts[1] if len(shifts) > 1 else None
