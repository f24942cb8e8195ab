"""Key evidence for a timeline: thousands of raw events collapsed into a few counted entries.

Events with the same provider, stream, action, actor, source IP and outcome that follow each other
within ``gap`` become one entry ("412 × UserLoginFailed by alice@… from 203.0.113.5"), keeping
the first/last time, the count, a few sample event ids to open, and how many distinct targets
were touched. When that still leaves more than ``max_entries`` entries (a spray from thousands of
IPs), the collapse gets coarser — the source IP, then the actor, then the outcome are folded into
counts of distinct values — so an incident's timeline never holds thousands of evidence rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from core.models.event import Event

SAMPLE_IDS = 5
EXAMPLES = 5
ID_CHUNK = 5000
# Finest first: what stays in the key at each level; the rest is counted as distinct values.
LEVELS: tuple[tuple[str, ...], ...] = (
    ("actor", "ip", "outcome"),
    ("actor", "outcome"),
    ("outcome",),
    (),
)
_COUNTED = ("actor", "ip", "outcome", "target")


@dataclass(frozen=True)
class EventFacts:
    id: int
    occurred_at: datetime
    provider: str
    stream: str
    action: str | None
    actor: str | None
    ip: str | None
    outcome: str | None
    target: str | None


@dataclass(frozen=True)
class EvidenceEntry:
    first_at: datetime
    last_at: datetime
    count: int
    provider: str
    stream: str
    action: str | None
    fixed: dict[str, str | None]  # the key fields kept at this level (actor, ip, outcome)
    sample_ids: tuple[int, ...]
    distinct: dict[str, int]  # how many distinct values of the folded fields
    examples: dict[str, list[str]]

    @property
    def title(self) -> str:
        action = self.action or "activity"
        parts = [f"{self.count} × {action}" if self.count > 1 else action]
        actor = self.fixed.get("actor")
        if actor:
            parts.append(f"by {actor}")
        elif self.distinct.get("actor", 0) > 1:
            parts.append(f"by {self.distinct['actor']} accounts")
        ip = self.fixed.get("ip")
        if ip:
            parts.append(f"from {ip}")
        elif self.distinct.get("ip", 0) > 1:
            parts.append(f"from {self.distinct['ip']:,} IPs")
        outcome = self.fixed.get("outcome")
        if outcome:
            parts.append(f"({outcome})")
        if self.distinct.get("target", 0) > 1:
            parts.append(f"on {self.distinct['target']:,} targets")
        elif self.examples.get("target"):
            parts.append(f"on {self.examples['target'][0]}")
        return " ".join(parts)

    def body(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "stream": self.stream,
            "action": self.action,
            **{name: value for name, value in self.fixed.items()},
            "first_at": self.first_at.isoformat(),
            "last_at": self.last_at.isoformat(),
            "sample_event_ids": list(self.sample_ids),
            "distinct": self.distinct,
            "examples": self.examples,
        }


class _Run:
    __slots__ = ("first", "last", "count", "samples", "values", "head")

    def __init__(self, event: EventFacts) -> None:
        self.head = event
        self.first = event.occurred_at
        self.last = event.occurred_at
        self.count = 0
        self.samples: list[int] = []
        self.values: dict[str, set[str]] = {name: set() for name in _COUNTED}

    def add(self, event: EventFacts) -> None:
        self.last = event.occurred_at
        self.count += 1
        if len(self.samples) < SAMPLE_IDS:
            self.samples.append(event.id)
        for name in _COUNTED:
            value = getattr(event, name)
            if value is not None:
                self.values[name].add(value)

    def entry(self, fields: tuple[str, ...]) -> EvidenceEntry:
        folded = [name for name in _COUNTED if name not in fields]
        return EvidenceEntry(
            first_at=self.first,
            last_at=self.last,
            count=self.count,
            provider=self.head.provider,
            stream=self.head.stream,
            action=self.head.action,
            fixed={name: getattr(self.head, name) for name in fields},
            sample_ids=tuple(self.samples),
            distinct={name: len(self.values[name]) for name in folded},
            examples={name: sorted(self.values[name])[:EXAMPLES] for name in folded if self.values[name]},
        )


def _collapse_at(
    events: Sequence[EventFacts], fields: tuple[str, ...], gap: timedelta, limit: int
) -> list[EvidenceEntry] | None:
    open_runs: dict[tuple[Any, ...], _Run] = {}
    closed: list[EvidenceEntry] = []
    for event in events:
        key = (event.provider, event.stream, event.action, *(getattr(event, f) for f in fields))
        run = open_runs.get(key)
        if run is not None and event.occurred_at - run.last > gap:
            closed.append(run.entry(fields))
            run = None
        if run is None:
            run = open_runs[key] = _Run(event)
            if len(closed) + len(open_runs) > limit:
                return None
        run.add(event)
    closed.extend(run.entry(fields) for run in open_runs.values())
    return closed


def collapse(events: Iterable[EventFacts], *, gap: timedelta, max_entries: int) -> list[EvidenceEntry]:
    """Collapse events into at most `max_entries` entries (the coarsest level may exceed it only
    when there are more distinct provider/stream/action runs than that), ordered by time."""
    ordered = sorted(events, key=lambda e: (e.occurred_at, e.id))
    entries: list[EvidenceEntry] | None = None
    for fields in LEVELS:
        limit = max_entries if fields else len(ordered) + 1
        entries = _collapse_at(ordered, fields, gap, limit)
        if entries is not None:
            break
    assert entries is not None
    return sorted(entries, key=lambda e: (e.first_at, e.sample_ids[:1]))


def _chunks(ids: Sequence[int], size: int = ID_CHUNK) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def load_events(session: Session, ids: Iterable[int]) -> list[EventFacts]:
    """The indexed columns (never the raw JSON) of the events with these ids that still exist."""
    wanted = sorted({int(i) for i in ids})
    facts: list[EventFacts] = []
    columns = (
        col(Event.id),
        col(Event.occurred_at),
        col(Event.provider),
        col(Event.stream),
        col(Event.action),
        col(Event.actor),
        col(Event.ip),
        col(Event.outcome),
        col(Event.target),
    )
    for chunk in _chunks(wanted):
        rows = session.execute(select(*columns).where(col(Event.id).in_(chunk))).all()
        facts.extend(EventFacts(*row) for row in rows)
    return facts
