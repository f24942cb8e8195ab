"""Serving the timeline of an incident backed by 100,000 evidence events.

The incident is built once (evidence collapsed into counted entries), then its first page and
the whole timeline are read through `timeline.queries.get_timeline`, as the API and CLI do.
Baseline measured in the same run: serving the same evidence *without* collapsed storage — read
the findings' evidence ids and fetch those events, time-ordered, to show the first 100.

Run: ``.venv/bin/python -m bench timeline_serve`` (``--quick`` for 20,000 events). PostgreSQL is
measured too when the benchmark server answers (TENANTGUARD_BENCH_POSTGRES_URL).
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Row, insert, select
from sqlmodel import col

from bench.harness import Figure, Stats, print_table
from core.db import Database
from core.models.event import Event
from core.models.finding import Finding
from core.settings import Settings

START = datetime(2025, 3, 10, 8, 0, tzinfo=UTC)
GOAL = "< 200 ms"


def _varied_events(n: int, seed: int = 13) -> list[dict[str, Any]]:
    """The hard case: 150 kinds of operation by 2,000 accounts from 5,000 IPs over two days."""
    rng = random.Random(seed)
    return [
        {
            "provider": "m365",
            "stream": "unified_audit",
            "provider_event_id": f"varied-{seed}-{i}",
            "occurred_at": START + timedelta(seconds=rng.uniform(0, 2 * 86400)),
            "ingested_at": START + timedelta(days=3),
            "actor": f"user{rng.randrange(2000)}@northwind.example",
            "action": f"Operation{rng.randrange(150)}",
            "target": f"/sites/s{rng.randrange(50)}/doc-{rng.randrange(20000)}",
            "ip": f"198.51.{rng.randrange(20)}.{rng.randrange(250)}",
            "outcome": rng.choice(("success", "failure")),
            "raw": {"n": i},
        }
        for i in range(n)
    ]


def _events(n: int, seed: int = 11) -> list[dict[str, Any]]:
    """A compromised account: a spray, then mass download and mailbox access over six hours."""
    rng = random.Random(seed)
    rows = []
    spray = n // 25
    mail = n // 100
    for i in range(n):
        if i < spray:
            action, ip, outcome, when = (
                "UserLoginFailed",
                f"203.0.{113 + i % 3}.{i % 250 + 1}",
                "failure",
                i * 0.5,
            )
        elif i < spray + mail:
            action, ip, outcome, when = (
                "MailItemsAccessed",
                "198.51.100.23",
                "success",
                spray * 0.5 + (i - spray) * 2.0,
            )
        else:
            action, ip, outcome, when = (
                "FileDownloaded",
                rng.choice(("198.51.100.23", "198.51.100.24")),
                "success",
                spray * 0.5 + 600 + (i - spray - mail) * 0.2,
            )
        rows.append(
            {
                "provider": "m365",
                "stream": "unified_audit",
                "provider_event_id": f"bench-{seed}-{i}",
                "occurred_at": START + timedelta(seconds=when),
                "ingested_at": START + timedelta(days=1),
                "actor": "alice@northwind.example",
                "action": action,
                "target": f"/sites/finance/doc-{rng.randint(0, 20000)}.xlsx"
                if action == "FileDownloaded"
                else None,
                "ip": ip,
                "outcome": outcome,
                "raw": {"Operation": action, "n": i},
            }
        )
    return rows


def _seed(db: Database, n: int, *, varied: bool = False) -> list[list[int]]:
    with db.session() as session:
        session.execute(insert(Event), _varied_events(n) if varied else _events(n))
        ids = list(session.execute(select(col(Event.id), col(Event.action)).order_by(col(Event.id))).all())
    if varied:
        every = [event_id for event_id, _ in ids]
        third = len(every) // 3
        groups = [every[:third], every[third : 2 * third], every[2 * third :]]
    else:
        by_action: dict[str, list[int]] = {}
        for event_id, action in ids:
            by_action.setdefault(action, []).append(event_id)
        groups = [by_action["UserLoginFailed"], by_action["MailItemsAccessed"], by_action["FileDownloaded"]]
    titles = ("Password spray then success", "Mailbox accessed from new IP", "Mass download of finance files")
    with db.session() as session:
        for n_finding, (title, evidence) in enumerate(zip(titles, groups, strict=True)):
            first = START + timedelta(minutes=n_finding * 10)
            session.add(
                Finding(
                    rule_id=title.lower().replace(" ", "_"),
                    kind="detection",
                    severity="high",
                    confidence=0.9,
                    title=title,
                    provider="m365",
                    entities={"people": ["alice@northwind.example"], "ips": ["198.51.100.23"]},
                    evidence_event_ids=evidence,
                    first_seen=first,
                    last_seen=first + timedelta(hours=6),
                    count=len(evidence),
                    dedup_key=f"bench-{n_finding}",
                    created_at=first,
                    updated_at=first,
                )
            )
    return groups


def _median_ms(measure: Callable[[], object], runs: int) -> Stats:
    values = []
    for _ in range(runs):
        start = time.perf_counter()
        measure()
        values.append((time.perf_counter() - start) * 1000)
    return Stats(statistics.median(values), min(values), max(values), runs)


def _naive_first_page(db: Database, incident_id: int) -> None:
    """Without collapsed storage: every evidence event of every finding, ordered, first 100 shown."""
    with db.session(readonly=True) as session:
        evidence = session.execute(
            select(col(Finding.evidence_event_ids)).where(col(Finding.incident_id) == incident_id)
        ).scalars()
        ids = sorted({int(e) for ids in evidence for e in ids})
        rows: list[Row[Any]] = []
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            rows.extend(
                session.execute(
                    select(
                        col(Event.id),
                        col(Event.occurred_at),
                        col(Event.action),
                        col(Event.actor),
                        col(Event.ip),
                        col(Event.target),
                    ).where(col(Event.id).in_(chunk))
                ).all()
            )
        rows.sort(key=lambda r: (r[1], r[0]))
        rows[:100]


def measure(db: Database, n: int, runs: int, label: str, *, varied: bool = False) -> list[Figure]:
    from timeline.build import build_incidents
    from timeline.queries import get_timeline

    _seed(db, n, varied=varied)
    if varied:
        label += ", 150 operations × 2,000 accounts × 5,000 IPs"
    start = time.perf_counter()
    [incident_id] = build_incidents(db, Settings(), notify=False, now=START + timedelta(days=1))
    build_seconds = time.perf_counter() - start
    page = get_timeline(db, incident_id, limit=100)
    walk_items = 0

    def walk() -> None:
        nonlocal walk_items
        cursor, walk_items = None, 0
        while True:
            result = get_timeline(db, incident_id, cursor=cursor, limit=100)
            walk_items += len(result.items)
            cursor = result.next_cursor
            if cursor is None:
                return

    first_page = _median_ms(lambda: get_timeline(db, incident_id, limit=100), runs)
    whole = _median_ms(walk, max(3, runs // 3))
    naive = _median_ms(lambda: _naive_first_page(db, incident_id), max(3, runs // 5))
    evidence_entries = sum(1 for i in page.items if i.kind == "evidence")
    return [
        Figure.from_stats(
            "timeline",
            f"timeline first page, {n:,} evidence events ({label})",
            first_page,
            "ms",
            baseline_name="uncollapsed events, first 100",
            baseline=naive.median,
            goal=GOAL,
            notes=f"{page.total} stored entries, {evidence_entries} of them evidence",
        ),
        Figure.from_stats(
            "timeline",
            f"timeline all pages ({walk_items} items, {label})",
            whole,
            "ms",
            baseline_name="uncollapsed events, first 100",
            baseline=naive.median,
            goal=GOAL,
        ),
        Figure(
            "timeline",
            f"build incident from {n:,} evidence events ({label})",
            build_seconds * 1000,
            "ms",
            notes="one-off: collapse into entries when findings change",
        ),
    ]


@contextmanager
def _sqlite() -> Iterator[Database]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'serve.db'}")
        db.upgrade()
        try:
            yield db
        finally:
            db.dispose()


def run(quick: bool = False) -> list[Figure]:
    n = 20_000 if quick else 100_000
    runs = 10 if quick else 30
    figures: list[Figure] = []
    with _sqlite() as db:
        figures += measure(db, n, runs, "SQLite")
    with _sqlite() as db:
        figures += measure(db, n, runs, "SQLite", varied=True)
    from bench.limits import postgres_database, postgres_problem

    if postgres_problem() is None:
        with postgres_database() as url:
            db = Database(url)
            try:
                figures += measure(db, n, runs, "PostgreSQL")
            finally:
                db.dispose()
    return figures


if __name__ == "__main__":
    import sys

    print_table(run(quick="--quick" in sys.argv))
