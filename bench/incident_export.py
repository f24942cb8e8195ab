"""Incident export benchmark: OCSF Incident Finding (validated per event) vs plain JSONL, and whether
memory stays flat as the table grows.

Builds SQLite databases of N incidents with three findings each (bulk inserts), then streams
`compliance.incident_export.stream_incidents` to nowhere: incidents/s for OCSF with JSONL as the
same-run baseline, and the tracemalloc peak at two sizes (a constant-memory export has the same
peak at 5x the rows).
"""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.harness import Figure
from compliance.incident_export import stream_incidents
from compliance.ocsf import FindingFormat
from core.db import Database
from core.models import Finding, Incident

AREA = "incident_export"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def build(path: Path, incidents: int) -> Database:
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    incident_table = Incident.__table__  # type: ignore[attr-defined]
    finding_table = Finding.__table__  # type: ignore[attr-defined]
    with db.session() as session:
        connection = session.connection()
        for start in range(0, incidents, 2000):
            count = min(2000, incidents - start)
            connection.execute(
                incident_table.insert(),
                [
                    {
                        "id": start + i + 1, "title": f"Account takeover {start + i}", "status": "closed",
                        "priority": "P2", "severity": "high", "entities": {"people": [f"u{i}@corp.test"]},
                        "first_seen": T0, "last_seen": T0 + timedelta(hours=1), "closed_at": T0 + timedelta(days=1),
                        "created_at": T0, "updated_at": T0, "priority_factors": {}, "grouping": [], "keys": [],
                        "linked_conversations": [], "notifications": {}, "summary": "", "root_cause": "",
                        "lessons": "", "impact": "", "incident_type": "m365_impossible_travel",
                        "created_by": "system:timeline", "finding_count": 3, "evidence_count": 0,
                        "message_count": 0, "messages_scanned_id": 0,
                    }
                    for i in range(count)
                ],
            )  # fmt: skip
            connection.execute(
                finding_table.insert(),
                [
                    {
                        "rule_id": "m365_impossible_travel", "kind": "detection", "severity": "high",
                        "confidence": 0.9, "title": "Impossible travel", "description": "", "status": "resolved",
                        "entities": {}, "evidence_event_ids": [], "first_seen": T0, "last_seen": T0, "count": 1,
                        "dedup_key": f"d{start + i}-{k}", "mitre": ["T1078"], "context": {}, "runbook": "",
                        "incident_id": start + i + 1, "created_at": T0, "updated_at": T0,
                    }
                    for i in range(count)
                    for k in range(3)
                ],
            )  # fmt: skip
    return db


def _export(db: Database, fmt: FindingFormat, *, traced: bool = False) -> tuple[float, int]:
    """(seconds, tracemalloc peak or 0) of one full export; timed runs are not traced (tracing
    slows Python several times over)."""
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    with db.session(readonly=True) as session:
        for _ in stream_incidents(session, fmt):
            pass
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] if traced else 0
    if traced:
        tracemalloc.stop()
    return elapsed, peak


def run(*, quick: bool = False) -> list[Figure]:
    small, large = (1000, 5000) if quick else (4000, 20000)
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        peaks = {}
        for n in (small, large):
            db = build(Path(tmp) / f"inc{n}.db", n)
            _export(db, FindingFormat.OCSF)  # warm: imports the schema models once
            seconds, _ = _export(db, FindingFormat.OCSF)
            plain_seconds, _ = _export(db, FindingFormat.JSONL)
            peaks[n] = _export(db, FindingFormat.OCSF, traced=True)[1]
            if n == large:
                figures.append(
                    Figure(
                        AREA,
                        f"OCSF Incident Finding export, {n} incidents x 3 findings",
                        n / seconds,
                        "incidents/s",
                        baseline_name="plain JSONL export",
                        baseline=n / plain_seconds,
                        notes="each event validated by the OCSF 1.7.0 schema models",
                    )  # fmt: skip
                )
            db.dispose()
        figures.append(
            Figure(
                AREA,
                f"export memory peak at {large} incidents",
                peaks[large] / 2**20,
                "MiB",
                baseline_name=f"peak at {small} incidents",
                baseline=peaks[small] / 2**20,
                goal="ratio ~1 (constant memory)",
            )  # fmt: skip
        )
    return figures
