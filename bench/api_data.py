"""Bulk-loading a realistic API dataset fast: findings, incidents and a valid audit chain.

Rows are built from the models themselves (a template instance supplies every column's
default, so columns other stages add later are filled too), then written with the fastest path
each database offers: one `executemany` transaction on SQLite, `COPY` on PostgreSQL. The audit
chain is hash-linked with core.audit's own canonical hashing, so exports of it verify.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlmodel import SQLModel

from core.audit import GENESIS_HASH, AuditAction, compute_hash
from core.clock import isoformat
from core.db import Database
from core.models import AuditRecord, Finding, Incident

END = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
SPAN = timedelta(days=180)
PROVIDERS = ("m365", "google", "slack")
SEVERITIES = ("informational", "low", "medium", "high", "critical")
SEVERITY_WEIGHTS = (10, 30, 35, 20, 5)
KINDS = ("detection", "anomaly", "posture", "drift", "correlation", "identity")
KIND_WEIGHTS = (60, 15, 10, 5, 8, 2)
FINDING_STATUSES = ("open", "resolved", "suppressed")
FINDING_STATUS_WEIGHTS = (20, 75, 5)
INCIDENT_STATUSES = ("new", "triaged", "contained", "resolved", "closed", "false_positive")
INCIDENT_STATUS_WEIGHTS = (10, 10, 5, 25, 45, 5)
PRIORITIES = ("P1", "P2", "P3", "P4")
PRIORITY_WEIGHTS = (5, 20, 40, 35)
BATCH = 50_000


@dataclass(frozen=True)
class Dataset:
    findings: int
    incidents: int
    audit_records: int
    people: tuple[str, ...]
    rules: tuple[str, ...]


def people(n: int = 5000) -> tuple[str, ...]:
    return tuple(f"user{i:05d}@northwind.example" for i in range(n))


def rules() -> tuple[str, ...]:
    return tuple(f"{PROVIDERS[i % 3]}_rule_{i:02d}" for i in range(80))


def _template(model: type[SQLModel], **required: Any) -> dict[str, Any]:
    """Every column with the model's own default, then the values given."""
    instance = model(**required)
    return {c.name: getattr(instance, c.name) for c in model.__table__.columns if c.name != "id"}  # type: ignore[attr-defined]


def finding_rows(
    n: int, dataset_people: Sequence[str], dataset_rules: Sequence[str], incidents: int, seed: int = 7
) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    template = _template(
        Finding,
        rule_id="r",
        kind="detection",
        severity="low",
        title="t",
        first_seen=END,
        last_seen=END,
        dedup_key="d",
    )
    span = SPAN.total_seconds()
    for i in range(1, n + 1):
        rule = dataset_rules[rng.randrange(len(dataset_rules))]
        first = END - timedelta(seconds=rng.random() * span)
        person = dataset_people[rng.randrange(len(dataset_people))]
        row = dict(template)
        row.update(
            id=i,
            rule_id=rule,
            kind=rng.choices(KINDS, KIND_WEIGHTS)[0],
            severity=rng.choices(SEVERITIES, SEVERITY_WEIGHTS)[0],
            confidence=round(rng.uniform(0.4, 1.0), 2),
            title=f"{rule.replace('_', ' ')} for {person}",
            provider=rule.split("_", 1)[0],
            status=rng.choices(FINDING_STATUSES, FINDING_STATUS_WEIGHTS)[0],
            entities={"people": [person], "ips": [f"203.0.{rng.randrange(256)}.{rng.randrange(1, 255)}"]},
            evidence_event_ids=[rng.randrange(1, 10_000_000) for _ in range(rng.randrange(1, 4))],
            first_seen=first,
            last_seen=first + timedelta(seconds=rng.random() * 7200),
            count=rng.randrange(1, 20),
            dedup_key=f"{rule}|{person}|{i}",
            mitre=["T1078"],
            context={"n": i},
            incident_id=rng.randrange(1, incidents + 1) if incidents and rng.random() < 0.4 else None,
            created_at=first,
            updated_at=first,
        )
        yield row


def incident_rows(n: int, dataset_people: Sequence[str], seed: int = 11) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    template = _template(Incident, title="t", severity="low", first_seen=END, last_seen=END)
    span = SPAN.total_seconds()
    for i in range(1, n + 1):
        first = END - timedelta(seconds=rng.random() * span)
        person = dataset_people[rng.randrange(len(dataset_people))]
        status = rng.choices(INCIDENT_STATUSES, INCIDENT_STATUS_WEIGHTS)[0]
        row = dict(template)
        row.update(
            id=i,
            title=f"Suspicious activity of {person}",
            incident_type=f"rule_{rng.randrange(40)}",
            status=status,
            priority=rng.choices(PRIORITIES, PRIORITY_WEIGHTS)[0],
            severity=rng.choices(SEVERITIES, SEVERITY_WEIGHTS)[0],
            assignee=f"analyst{rng.randrange(20)}" if status != "new" else None,
            entities={"people": [person], "ips": []},
            first_seen=first,
            last_seen=first + timedelta(seconds=rng.random() * 86400),
            created_at=first + timedelta(minutes=5),
            updated_at=first + timedelta(minutes=5),
            finding_count=rng.randrange(1, 10),
        )
        yield row


def audit_rows(n: int, seed: int = 13) -> Iterator[dict[str, Any]]:
    """A hash-linked chain, exactly as core.audit.record would have written it."""
    rng = random.Random(seed)
    previous = GENESIS_HASH
    start = END - SPAN
    step = SPAN.total_seconds() / max(n, 1)
    actions = (
        AuditAction.INCIDENT_TRANSITIONED.value,
        AuditAction.INCIDENT_ASSIGNED.value,
        AuditAction.INCIDENT_NOTE_ADDED.value,
        AuditAction.REMEDIATION_APPROVED.value,
        AuditAction.FINDING_CREATED.value,
    )
    for seq in range(1, n + 1):
        fields: dict[str, Any] = {
            "seq": seq,
            "at": isoformat(start + timedelta(seconds=seq * step)),
            "actor": f"principal:analyst{rng.randrange(20)}",
            "action": actions[rng.randrange(len(actions))],
            "object_type": "incident",
            "object_id": str(rng.randrange(1, 100_000)),
            "details": {
                "request_id": f"{seq:032x}",
                "before": {"status": "new"},
                "after": {"status": "triaged"},
            },
            "prev_hash": previous,
        }
        fields["hash"] = previous = compute_hash(fields)
        yield {**fields, "at": start + timedelta(seconds=seq * step)}


# ---- writing -------------------------------------------------------------------------------------


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        # SQLAlchemy's SQLite DateTime storage format (naive UTC): comparisons are textual.
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return int(value)
    return value


def _pg_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value


def bulk_insert(db: Database, table: str, rows: Iterator[dict[str, Any]]) -> int:
    """Insert rows (all with the same keys) as fast as the database allows; returns the count."""
    raw = db.engine.raw_connection()
    count = 0
    try:
        first = next(rows, None)
        if first is None:
            return 0
        columns = list(first)
        quoted = ", ".join(f'"{c}"' for c in columns)

        def batches() -> Iterator[list[dict[str, Any]]]:
            batch = [first]
            for row in rows:
                batch.append(row)
                if len(batch) >= BATCH:
                    yield batch
                    batch = []
            if batch:
                yield batch

        if db.is_sqlite:
            sql = f'INSERT INTO "{table}" ({quoted}) VALUES ({", ".join("?" for _ in columns)})'
            cursor = raw.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            for batch in batches():
                cursor.executemany(sql, [tuple(_sqlite_value(r[c]) for c in columns) for r in batch])
                count += len(batch)
            cursor.execute("COMMIT")
        else:
            driver = raw.driver_connection  # the psycopg connection, for COPY
            with driver.cursor() as cursor:  # type: ignore[union-attr]
                with cursor.copy(f'COPY "{table}" ({quoted}) FROM STDIN') as copy:
                    for batch in batches():
                        for r in batch:
                            copy.write_row(tuple(_pg_value(r[c]) for c in columns))
                        count += len(batch)
                if "id" in columns:
                    cursor.execute(
                        f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), (SELECT max(id) FROM \"{table}\"))"
                    )
            driver.commit()  # type: ignore[union-attr]
    finally:
        raw.close()
    return count


@contextmanager
def indexes_rebuilt(db: Database, tables: Sequence[str]) -> Iterator[None]:
    """Drop the secondary indexes of `tables`, and build them again afterwards (much faster in bulk).

    Unique constraints and primary keys stay: they are part of what the rows must satisfy.
    """
    with db.engine.connect() as conn:
        if db.is_sqlite:
            marks = ", ".join(f"'{t}'" for t in tables)
            found = conn.exec_driver_sql(
                f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({marks})"
            ).all()
        else:
            found = conn.exec_driver_sql(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = ANY(%(tables)s) "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
                {"tables": list(tables)},
            ).all()
        for name, _ in found:
            conn.exec_driver_sql(f'DROP INDEX "{name}"')
        conn.commit()
    try:
        yield
    finally:
        with db.engine.connect() as conn:
            for _, ddl in found:
                conn.exec_driver_sql(ddl)
            conn.commit()


def load(db: Database, *, findings: int, incidents: int, audit_records: int) -> Dataset:
    """Fill an empty, migrated database; returns what is in it."""
    dataset = Dataset(findings, incidents, audit_records, people(), rules())
    incident, finding, audit = (str(model.__tablename__) for model in (Incident, Finding, AuditRecord))
    with indexes_rebuilt(db, [incident, finding, audit]):
        bulk_insert(db, incident, incident_rows(incidents, dataset.people))
        bulk_insert(db, finding, finding_rows(findings, dataset.people, dataset.rules, incidents))
        bulk_insert(db, audit, audit_rows(audit_records))
    with db.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    return dataset
