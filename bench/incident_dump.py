"""Same inputs, same incidents: dump what `build_incidents` leaves, to compare two versions of it.

A change to the build that is meant to make it faster must leave byte-identical results: the
incidents (every column), their timeline entries with their ids (bodies decrypted), which incident
each finding is in, and the audit chain with its hashes. Three steps:

``prepare OUT [SCENARIO ...]`` collects, detects and resolves people for each simulator scenario
(all of bench.timeline_quality's by default) into ``OUT/<scenario>.db`` with its key file, stopping
before the build, and writes the synthetic findings of bench.timeline_grouping (``OUT/synthetic``,
built in two halves). ``build OUT DUMPS`` builds incidents on a copy of each prepared database with
the clock frozen (two builds per database: the second must change nothing, or join the second half
of the synthetic findings) and writes ``DUMPS/<name>.jsonl``. ``compare A B`` reports the first
difference per dump. To compare with another tree, run ``build`` from that tree's directory
(``python -m bench.incident_dump`` imports the product from the current directory). The name
``synthetic-postgresql`` builds the synthetic findings on the benchmark PostgreSQL instead.

Run: ``.venv/bin/python -m bench.incident_dump prepare /tmp/prepared``, then ``build`` and ``compare``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

FROZEN = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
SYNTHETIC = 20_000


def _use_key_of(prepared: Path) -> None:
    """One key file for the prepared databases and every build on their copies (bench's own
    default is a temporary one, gone when the process ends)."""
    os.environ["TENANTGUARD_ENCRYPTION_KEY_FILE"] = str(prepared / "encryption.key")


def _settings(base: Path, name: str) -> Any:
    from core.settings import Settings

    return Settings(data_dir=base / name, database_url=f"sqlite:///{base / name}.db")


def prepare(out: Path, scenarios: list[str]) -> None:
    from bench.timeline_grouping import synthetic_findings
    from bench.timeline_quality import SCENARIOS, _identity, declare_changes
    from collectors import collect_once, connections_from_simulator
    from collectors.connections import sync_connections
    from core.audit import Actor
    from core.db import Database
    from detectors.pipeline import detect_new
    from simulator.handle import start

    out.mkdir(parents=True, exist_ok=True)
    _use_key_of(out)
    for scenario in scenarios or SCENARIOS:
        handle = start(scenario)
        try:
            settings = _settings(out, scenario)
            db = Database.from_settings(settings)
            db.upgrade()
            sync_connections(
                db, connections_from_simulator(handle.info, conversations=True), actor=Actor.system("bench")
            )
            declare_changes(db, handle.truth)
            collect_once(db, settings)
            detect_new(db, settings)
            _identity(db)
            db.dispose()
        finally:
            handle.stop()
        print("prepared", scenario, flush=True)
    (out / "synthetic.json").write_bytes(
        orjson.dumps(synthetic_findings(SYNTHETIC), option=orjson.OPT_NAIVE_UTC)
    )


def _freeze_clock() -> None:
    """Every `utcnow` the product imported answers FROZEN (entry and audit timestamps)."""
    import core.clock

    original = core.clock.utcnow

    def frozen() -> datetime:
        return FROZEN

    for module in list(sys.modules.values()):
        if getattr(module, "utcnow", None) is original:
            module.utcnow = frozen  # type: ignore[attr-defined]


def build(prepared: Path, dumps: Path, names: list[str]) -> None:
    import timeline.build  # noqa: F401  (loaded before the clock is frozen in it)
    from core.db import Database

    _freeze_clock()
    _use_key_of(prepared)
    from timeline.build import build_incidents

    dumps.mkdir(parents=True, exist_ok=True)
    wanted = names or sorted(p.stem for p in prepared.glob("*.db")) + ["synthetic"]
    for name in wanted:
        with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
            work = Path(tmp)
            settings = _settings(work, name)
            if name.startswith("synthetic"):
                db = _synthetic_database(stack, name, settings)
                rows = _synthetic_rows(prepared / "synthetic.json")
                half = len(rows) // 2
                _insert(db, rows[:half])
                build_incidents(db, settings, notify=False, now=FROZEN)
                _insert(db, rows[half:])
                build_incidents(db, settings, notify=False, now=FROZEN + timedelta(hours=1))
            else:
                shutil.copy(prepared / f"{name}.db", work / f"{name}.db")
                shutil.copytree(prepared / name, work / name)
                db = Database.from_settings(settings)
                build_incidents(db, settings, notify=False, now=FROZEN)
                build_incidents(db, settings, notify=False, now=FROZEN + timedelta(hours=1))
            with open(dumps / f"{name}.jsonl", "wb") as fh:
                for line in dump(db):
                    fh.write(line + b"\n")
            db.dispose()
        print("built", name, flush=True)


def _synthetic_database(stack: ExitStack, name: str, settings: Any) -> Any:
    """`synthetic`: a fresh SQLite database; `synthetic-postgresql`: a fresh database on the
    benchmark PostgreSQL (bench.limits)."""
    from core.db import Database

    if name == "synthetic-postgresql":
        from bench.limits import postgres_database

        return Database(stack.enter_context(postgres_database()), settings=settings)
    db = Database.from_settings(settings)
    db.upgrade()
    return db


def _synthetic_rows(path: Path) -> list[dict[str, Any]]:
    rows = orjson.loads(path.read_bytes())
    for row in rows:
        for name in ("first_seen", "last_seen", "created_at", "updated_at"):
            row[name] = datetime.fromisoformat(row[name])
    return list(rows)


def _insert(db: Any, rows: list[dict[str, Any]]) -> None:
    from sqlalchemy import insert

    from core.models.finding import Finding

    with db.session() as session:
        session.execute(insert(Finding), rows)


def dump(db: Any) -> Iterator[bytes]:
    """One JSON line per row: incidents, timeline entries (decrypted), findings' incidents, the audit
    chain; each table in primary key order."""
    from sqlalchemy import select

    from core.models.audit import AuditRecord
    from core.models.finding import Finding
    from core.models.incident import Incident, TimelineEntry

    tables: list[tuple[str, Any, Any]] = [
        ("incident", Incident.__table__, None),  # type: ignore[attr-defined]
        ("entry", TimelineEntry.__table__, None),  # type: ignore[attr-defined]
        ("finding", Finding.__table__, ("id", "incident_id", "status")),  # type: ignore[attr-defined]
        ("audit", AuditRecord.__table__, None),  # type: ignore[attr-defined]
    ]
    with db.session() as session:
        for label, table, columns in tables:
            picked = [table.c[c] for c in columns] if columns else list(table.c)
            order = list(table.primary_key.columns)
            for row in session.execute(select(*picked).order_by(*order)):
                yield orjson.dumps(
                    [label, dict(row._mapping)],
                    option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
                    default=str,
                )


def compare(a: Path, b: Path) -> bool:
    same = True
    names = sorted({p.name for p in a.glob("*.jsonl")} | {p.name for p in b.glob("*.jsonl")})
    for name in names:
        left, right = a / name, b / name
        if not left.exists() or not right.exists():
            print(f"{name}: only in {'B' if not left.exists() else 'A'}")
            same = False
            continue
        la, lb = left.read_bytes().splitlines(), right.read_bytes().splitlines()
        if la == lb:
            print(f"{name}: identical ({len(la)} rows)")
            continue
        same = False
        first = next(
            (i for i, (x, y) in enumerate(zip(la, lb, strict=False)) if x != y), min(len(la), len(lb))
        )
        print(f"{name}: DIFFERENT ({len(la)} vs {len(lb)} rows), first at line {first + 1}")
        print("  A:", la[first][:600] if first < len(la) else "-")
        print("  B:", lb[first][:600] if first < len(lb) else "-")
    return same


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "prepare":
        prepare(Path(argv[1]), argv[2:])
        return 0
    if len(argv) >= 3 and argv[0] == "build":
        build(Path(argv[1]), Path(argv[2]), argv[3:])
        return 0
    if len(argv) == 3 and argv[0] == "compare":
        return 0 if compare(Path(argv[1]), Path(argv[2])) else 1
    print(__doc__)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
