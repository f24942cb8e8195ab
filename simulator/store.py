"""Event streams served from deterministic, cached day chunks plus story and write-time events.

A stream's events for one UTC day (a *chunk*) are the background records of the local days that
overlap it, the story records of that day and the events later writes added, sorted by
(ts, uid). Chunks live in small LRU caches, so memory stays bounded whatever the tenant size
and time range; a chunk evicted and rebuilt is identical.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from simulator.activity import Background, DayPlan, Planner, Record
from simulator.scenario import Options
from simulator.tenant import Person, Tenant
from simulator.timestamps import DAY

EVENT_STREAMS: tuple[str, ...] = (
    "m365:signins",
    "m365:directory_audits",
    "m365:unified_audit",
    "m365:risk_detections",
    "m365:security_alerts",
    "google:login",
    "google:admin",
    "google:drive",
    "google:token",
    "google:saml",
    "google:user_accounts",
    "google:takeout",
    "google:gmail_log",
    "google:mobile",
    "slack:audit",
    "okta:logs",
)
STORY_UID_BASE = 1 << 60
DYNAMIC_UID_BASE = 1 << 61


class Lru:
    """A tiny thread-safe LRU cache; values are rebuilt (identically) after eviction.

    Concurrent misses on one key are built once: the other callers wait for the first.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[Any, threading.Event] = {}

    def get(self, key: Any, make: Callable[[], Any]) -> Any:
        while True:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key]
                pending = self._building.get(key)
                if pending is None:
                    self._building[key] = threading.Event()
                    break
            pending.wait()
        try:
            value = make()
            with self._lock:
                self._items[key] = value
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
            return value
        finally:
            with self._lock:
                self._building.pop(key).set()

    def discard(self, key: Any) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


@dataclass(frozen=True)
class Window:
    """Which records a query wants: a time range, an order, optionally one person's only."""

    start: int
    end: int  # exclusive
    descending: bool = True
    person: Person | None = None


class EventStore:
    def __init__(self, tenant: Tenant, story_records: dict[str, list[Record]], cache_days: int = 48) -> None:
        self.tenant = tenant
        self.options: Options = tenant.options
        self.planner = Planner(tenant)
        self.background = Background(tenant)
        # Small tenants keep every day's plans; big ones keep a few days (about 100k person-days).
        self._plans = Lru(max(4, min(self.options.days + 3, 100_000 // max(1, len(tenant.people)))))
        self._local = Lru(cache_days)
        self._chunks = Lru(cache_days)
        self._story: dict[str, dict[int, list[Record]]] = defaultdict(lambda: defaultdict(list))
        self._story_by_person: dict[tuple[str, int], list[Record]] = defaultdict(list)
        for stream, records in story_records.items():
            for record in records:
                self._story[stream][record[0] // DAY].append(record)
                if record[3] is not None:
                    self._story_by_person[(stream, record[3].index)].append(record)
        self._dynamic: dict[str, dict[int, list[Record]]] = defaultdict(lambda: defaultdict(list))
        self._dynamic_lock = threading.Lock()
        self._dynamic_seq = 0

    # ---------------------------------------------------------------- generation

    def plans(self, local_day: int) -> list[DayPlan]:
        return self._plans.get(
            local_day, lambda: [self.planner.plan(p, local_day) for p in self.tenant.people]
        )

    def local_day_records(self, stream: str, local_day: int) -> list[Record]:
        def make() -> list[Record]:
            out: list[Record] = []
            for plan in self.plans(local_day):
                out.extend(self.background.records(stream, plan))
            return out

        return self._local.get((stream, local_day), make)

    def chunk(self, stream: str, day: int) -> list[Record]:
        """All records of a stream with ts in UTC day `day`, sorted by (ts, uid)."""
        return self._chunks.get((stream, day), lambda: self._make_chunk(stream, day))

    def _make_chunk(self, stream: str, day: int) -> list[Record]:
        low = max(day * DAY, self.options.start)
        high = min((day + 1) * DAY, self.options.end)
        records: list[Record] = []
        if low < high:
            for local_day in (day - 1, day, day + 1):
                records.extend(r for r in self.local_day_records(stream, local_day) if low <= r[0] < high)
        records.extend(self._story[stream].get(day, ()))
        with self._dynamic_lock:
            records.extend(self._dynamic[stream].get(day, ()))
        records.sort(key=_order)
        return records

    def person_records(self, stream: str, person: Person, start: int, end: int) -> list[Record]:
        """One person's records in [start, end), generated directly (no whole-tenant chunks)."""
        records: list[Record] = []
        low, high = max(start, self.options.start), min(end, self.options.end)
        for local_day in range(low // DAY - 1, high // DAY + 2):
            if low >= high:
                break
            plan = self.planner.plan(person, local_day)
            records.extend(r for r in self.background.records(stream, plan) if low <= r[0] < high)
        records.extend(
            r for r in self._story_by_person.get((stream, person.index), ()) if start <= r[0] < end
        )
        with self._dynamic_lock:
            for day_records in self._dynamic[stream].values():
                records.extend(r for r in day_records if r[3] is person and start <= r[0] < end)
        records.sort(key=_order)
        return records

    # ---------------------------------------------------------------- writes add events

    def add_dynamic(self, stream: str, ts: int, kind: str, person: Person | None, extra: Any) -> Record:
        with self._dynamic_lock:
            self._dynamic_seq += 1
            record: Record = (ts - ts % 1000, DYNAMIC_UID_BASE + self._dynamic_seq, kind, person, None, extra)
            self._dynamic[stream][ts // DAY].append(record)
        self._chunks.discard((stream, ts // DAY))
        return record

    def last_day(self) -> int:
        """The last UTC day holding any record (writes may add events after the scenario's end)."""
        with self._dynamic_lock:
            dynamic_days = [d for days in self._dynamic.values() for d in days]
        return max([(self.options.end - 1) // DAY, *dynamic_days])

    # ---------------------------------------------------------------- reading

    def iterate(self, stream: str, window: Window, after: tuple[int, int] | None = None) -> Iterator[Record]:
        """Records in the window, in order, strictly after the cursor position `after`."""
        if window.person is not None:
            records = self.person_records(stream, window.person, window.start, window.end)
            yield from _slice(records, window, after)
            return
        first = max(window.start, self.options.start) // DAY
        last = min((window.end - 1) // DAY, self.last_day())
        days = range(last, first - 1, -1) if window.descending else range(first, last + 1)
        for day in days:
            if after is not None:
                if window.descending and day * DAY > after[0]:
                    continue
                if not window.descending and (day + 1) * DAY <= after[0]:
                    continue
            yield from _slice(self.chunk(stream, day), window, after)

    def all_records(self, stream: str) -> Iterator[Record]:
        yield from self.iterate(stream, Window(self.options.start, 1 << 62, descending=False))


def _order(record: Record) -> tuple[int, int]:
    return record[0], record[1]


def _slice(records: list[Record], window: Window, after: tuple[int, int] | None) -> Iterator[Record]:
    low = bisect.bisect_left(records, (window.start, -1), key=_order)
    high = bisect.bisect_left(records, (window.end, -1), key=_order)
    if after is not None:
        if window.descending:
            high = min(high, bisect.bisect_left(records, after, key=_order))
        else:
            low = max(low, bisect.bisect_right(records, after, key=_order))
    if window.descending:
        for i in range(high - 1, low - 1, -1):
            yield records[i]
    else:
        for i in range(low, high):
            yield records[i]
