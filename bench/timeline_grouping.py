"""Grouping throughput: findings/s through `group_findings` (pure) and through `build_incidents` (database).

Baselines measured in the same run:
* pure grouping vs. the *key-index floor* — one pass that only builds a dict from every grouping
  key to its findings, the least any key-based grouping has to do;
* the full build (grouping, incident rows, finding assignment, timeline entries, priority, audit)
  vs. *inserting the same findings* into the same database (the storage floor for that volume).

The build is reported in wall time and in CPU time (``time.process_time``: on a loaded machine the
wall time says more about the neighbours than about the build), on SQLite and — when the benchmark
PostgreSQL answers (``TENANTGUARD_BENCH_POSTGRES_URL``, see bench.limits) — on PostgreSQL.

Run: ``.venv/bin/python -m bench timeline_grouping`` (add ``--quick`` for a smoke run).
One build, for A/B runs of two trees and profiles: ``.venv/bin/python -m bench.timeline_grouping
--once [--postgres] [N]`` (``TENANTGUARD_BENCH_PROFILE=file`` writes a pyinstrument profile in CPU time).
"""

from __future__ import annotations

import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from bench.harness import Figure, Stats, print_table, rate, repeat
from core.db import Database
from core.models.finding import Finding
from core.settings import Settings
from timeline.grouping import FindingFacts, group_findings

START = datetime(2025, 3, 1, tzinfo=UTC)
DAYS = 30
GOAL = "≥ 20,000 findings/s"


def synthetic_findings(n: int, seed: int = 7, people_count: int = 3000) -> list[dict[str, Any]]:
    """Findings like a month of detections in a tenant of `people_count` people."""
    rng = random.Random(seed)
    people = [f"user{i}@northwind.example" for i in range(people_count)]
    rows: list[dict[str, Any]] = []
    for i in range(n):
        first = START + timedelta(seconds=rng.uniform(0, DAYS * 86400))
        entities: dict[str, list[str]] = {"people": [], "ips": [], "files": [], "apps": [], "accounts": []}
        if rng.random() < 0.9:
            entities["people"].append(rng.choice(people))
        if rng.random() < 0.6:
            entities["ips"].append(f"198.{rng.randint(18, 19)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}")
        if rng.random() < 0.2:
            entities["files"].append(f"document-{rng.randint(0, 5000)}.docx")
        if rng.random() < 0.1:
            entities["apps"].append(f"app-{rng.randint(0, 300)}")
        rows.append(
            {
                "rule_id": f"rule_{rng.randint(0, 60)}",
                "kind": rng.choice(("detection", "detection", "correlation", "anomaly", "posture")),
                "severity": rng.choice(("low", "medium", "medium", "high", "critical", "informational")),
                "confidence": round(rng.uniform(0.3, 1.0), 2),
                "title": f"synthetic finding {i}",
                "description": "",
                "provider": rng.choice(("m365", "google", "slack")),
                "status": "open",
                "entities": entities,
                "evidence_event_ids": [],
                "first_seen": first,
                "last_seen": first + timedelta(minutes=rng.uniform(0, 30)),
                "count": 1,
                "dedup_key": f"bench-{seed}-{i}",
                "mitre": [],
                "context": {},
                "runbook": "",
                "created_at": first + timedelta(minutes=5),
                "updated_at": first + timedelta(minutes=5),
            }
        )
    return rows


def _facts(rows: list[dict[str, Any]]) -> list[FindingFacts]:
    from timeline.entities import IdentityIndex, keys_for

    identities = IdentityIndex()
    facts = []
    for i, row in enumerate(rows, start=1):
        found = keys_for(row["entities"], identities)
        facts.append(
            FindingFacts(
                i,
                row["severity"],
                row["first_seen"],
                row["last_seen"],
                found.keys,
                found.labels,
                row["kind"] != "posture",
            )
        )
    return facts


def measure_pure(rows: list[dict[str, Any]], runs: int) -> tuple[Stats, Stats, int]:
    facts = _facts(rows)
    window = timedelta(hours=24)
    groups = len(group_findings(facts, [], window).groups)

    def grouping() -> int:
        group_findings(facts, [], window)
        return len(facts)

    def key_index_floor() -> int:
        index: dict[str, list[int]] = {}
        for fact in sorted(facts, key=lambda f: (f.first_seen, f.id)):
            for key in fact.keys:
                index.setdefault(key, []).append(fact.id)
        return len(facts)

    return repeat(rate(grouping), runs), repeat(rate(key_index_floor), runs), groups


def _fresh_database(tmp: Path, name: str) -> Database:
    db = Database(f"sqlite:///{tmp / name}")
    db.upgrade()
    return db


def measure_build(
    rows: list[dict[str, Any]], runs: int, url_factory: Any = None
) -> tuple[Stats, Stats, int, Stats, Stats]:
    """(build findings/s, insert findings/s, incidents made, build and insert findings/s in CPU
    time) on fresh databases (SQLite files, or what `url_factory(run)` opens)."""
    from timeline.build import build_incidents

    built: list[float] = []
    inserted: list[float] = []
    built_cpu: list[float] = []
    inserted_cpu: list[float] = []
    incidents = 0
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(runs):
            db = _fresh_database(Path(tmp), f"build-{run}.db") if url_factory is None else url_factory(run)
            start, cpu = time.perf_counter(), time.process_time()
            with db.session() as session:
                session.execute(insert(Finding), rows)
            inserted.append(len(rows) / (time.perf_counter() - start))
            inserted_cpu.append(len(rows) / max(time.process_time() - cpu, 1e-9))
            start, cpu = time.perf_counter(), time.process_time()
            incidents = len(
                build_incidents(
                    db, Settings(data_dir=Path(tmp)), notify=False, now=START + timedelta(days=DAYS)
                )
            )
            built.append(len(rows) / (time.perf_counter() - start))
            built_cpu.append(len(rows) / max(time.process_time() - cpu, 1e-9))
            db.dispose()
    return _stats(built), _stats(inserted), incidents, _stats(built_cpu), _stats(inserted_cpu)


def _postgres_builds(rows: list[dict[str, Any]], runs: int) -> tuple[Stats, Stats, int, Stats, Stats] | None:
    """The same build on fresh PostgreSQL databases, or None when the benchmark server is away."""
    from contextlib import ExitStack

    from bench.limits import postgres_database, postgres_problem

    if postgres_problem() is not None:
        return None
    with ExitStack() as stack:
        return measure_build(rows, runs, lambda run: Database(stack.enter_context(postgres_database())))


def _stats(values: list[float]) -> Stats:
    import statistics

    return Stats(statistics.median(values), min(values), max(values), len(values))


def run(quick: bool = False) -> list[Figure]:
    n = 4000 if quick else 20_000
    runs = 3 if quick else 5
    rows = synthetic_findings(n)
    pure, floor, groups = measure_pure(rows, runs)
    build, insert_floor, incidents, build_cpu, insert_cpu = measure_build(rows, 1 if quick else 3)
    # The same volume about fewer people: fewer, larger incidents (the cost is per incident).
    dense = synthetic_findings(n, seed=8, people_count=300)
    dense_build, dense_floor, dense_incidents, dense_cpu, dense_insert_cpu = measure_build(
        dense, 1 if quick else 3
    )
    postgres = _postgres_builds(rows, 1 if quick else 3)
    figures = [
        Figure.from_stats(
            "timeline",
            f"grouping {n:,} findings (pure, {groups:,} groups)",
            pure,
            "findings/s",
            baseline_name="key-index floor",
            baseline=floor.median,
            goal=GOAL,
        ),
        Figure.from_stats(
            "timeline",
            f"build_incidents {n:,} findings (SQLite, {incidents:,} incidents)",
            build,
            "findings/s",
            baseline_name="inserting the findings",
            baseline=insert_floor.median,
            goal=GOAL + " (grouping)",
            notes="grouping + incident rows + finding/evidence entries + priority + one audit record per incident",
        ),
        Figure.from_stats(
            "timeline",
            f"build_incidents {n:,} findings (SQLite, CPU time)",
            build_cpu,
            "findings/s",
            baseline_name="inserting the findings (CPU time)",
            baseline=insert_cpu.median,
            goal=GOAL,
        ),
        Figure.from_stats(
            "timeline",
            f"build_incidents {n:,} findings about 300 people (SQLite, {dense_incidents:,} incidents)",
            dense_build,
            "findings/s",
            baseline_name="inserting the findings",
            baseline=dense_floor.median,
            goal=GOAL + " (grouping)",
        ),
        Figure.from_stats(
            "timeline",
            f"build_incidents {n:,} findings about 300 people (SQLite, CPU time)",
            dense_cpu,
            "findings/s",
            baseline_name="inserting the findings (CPU time)",
            baseline=dense_insert_cpu.median,
            goal=GOAL,
        ),
    ]
    if postgres is not None:
        pg_build, pg_floor, pg_incidents, pg_cpu, pg_insert_cpu = postgres
        figures += [
            Figure.from_stats(
                "timeline",
                f"build_incidents {n:,} findings (PostgreSQL, {pg_incidents:,} incidents)",
                pg_build,
                "findings/s",
                baseline_name="inserting the findings",
                baseline=pg_floor.median,
                goal=GOAL,
            ),
            Figure.from_stats(
                "timeline",
                f"build_incidents {n:,} findings (PostgreSQL, CPU time of this process)",
                pg_cpu,
                "findings/s",
                baseline_name="inserting the findings (CPU time)",
                baseline=pg_insert_cpu.median,
                goal=GOAL,
            ),
        ]
    return figures


def build_once(n: int, postgres: bool = False, profile: str | None = None) -> str:
    """One `build_incidents` over `n` synthetic findings on a fresh database, in CPU and wall time
    (what an A/B of two trees alternates); with `profile`, a pyinstrument profile in CPU time."""
    from contextlib import ExitStack

    from timeline.build import build_incidents

    rows = synthetic_findings(n)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        if postgres:
            from bench.limits import postgres_database

            db = Database(stack.enter_context(postgres_database()))
        else:
            db = _fresh_database(Path(tmp), "once.db")
        with db.session() as session:
            session.execute(insert(Finding), rows)
        profiler = None
        if profile:
            from pyinstrument import Profiler
            from pyinstrument.stack_sampler import get_stack_sampler

            get_stack_sampler().timer_func = time.process_time
            profiler = Profiler(interval=0.001, async_mode="disabled")
            profiler.start()
        wall, cpu = time.perf_counter(), time.process_time()
        made = build_incidents(
            db, Settings(data_dir=Path(tmp)), notify=False, now=START + timedelta(days=DAYS)
        )
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if profiler is not None and profile:
            profiler.stop()
            Path(profile).write_text(profiler.output_text(unicode=False, color=False))
        db.dispose()
    return (
        f"build_incidents {n:,} findings ({'PostgreSQL' if postgres else 'SQLite'}, {len(made):,} incidents): "
        f"CPU {cpu:.2f} s = {n / cpu:,.0f} findings/s, wall {wall:.2f} s = {n / wall:,.0f} findings/s"
    )


if __name__ == "__main__":
    import os
    import sys

    if "--once" in sys.argv:
        # python -m bench.timeline_grouping --once [--postgres] [N]; TENANTGUARD_BENCH_PROFILE=file
        counts = [int(a) for a in sys.argv[1:] if a.isdigit()]
        print(
            build_once(
                counts[0] if counts else 20_000,
                "--postgres" in sys.argv,
                os.environ.get("TENANTGUARD_BENCH_PROFILE"),
            )
        )
    else:
        print_table(run(quick="--quick" in sys.argv))
