"""The audit chain: one write path, exports, and an offline verifier.

Each record holds the hash of the record before it, and its own hash covers a canonical JSON
encoding of every field. Appends are serialised (PostgreSQL advisory transaction lock; SQLite's
``BEGIN IMMEDIATE``) and ``seq``/``prev_hash`` are unique, so concurrent writers can never fork
the chain: the database refuses a second record with the same predecessor.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text
from sqlmodel import Session, col, select

from core.clock import isoformat, parse_time, utcnow
from core.errors import AuditChainError
from core.models.audit import AuditRecord

GENESIS_HASH = "0" * 64
CSV_FIELDS = ("seq", "at", "actor", "action", "object_type", "object_id", "details", "prev_hash", "hash")
_PG_AUDIT_LOCK_KEY = 0x7467_6175_6469_74  # "tgaudit"


def _normalise(details: dict[str, Any] | None) -> dict[str, Any]:
    """Round-trip through JSON so what we hash is exactly what the database hands back."""
    return orjson.loads(orjson.dumps(details or {}, default=str))


def canonical_bytes(fields: dict[str, Any]) -> bytes:
    """The bytes a record's hash covers: sorted keys, no whitespace, times in ISO 8601 UTC."""
    body = {name: fields[name] for name in CSV_FIELDS if name != "hash"}
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def compute_hash(fields: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(fields)).hexdigest()


def as_export_dict(rec: AuditRecord) -> dict[str, Any]:
    return {
        "seq": rec.seq,
        "at": isoformat(rec.at),
        "actor": rec.actor,
        "action": rec.action,
        "object_type": rec.object_type,
        "object_id": rec.object_id,
        "details": rec.details,
        "prev_hash": rec.prev_hash,
        "hash": rec.hash,
    }


def _lock_chain(session: Session) -> None:
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_AUDIT_LOCK_KEY})


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | int,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditRecord:
    """Append one record, in the caller's transaction (so the change and its record commit together)."""
    _lock_chain(session)
    last = session.exec(select(AuditRecord).order_by(col(AuditRecord.seq).desc()).limit(1)).first()
    when = at or utcnow()
    fields: dict[str, Any] = {
        "seq": (last.seq + 1) if last else 1,
        "at": isoformat(when),
        "actor": actor,
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "details": _normalise(details),
        "prev_hash": last.hash if last else GENESIS_HASH,
    }
    fields["hash"] = compute_hash(fields)
    rec = AuditRecord(**{**fields, "at": parse_time(fields["at"])})
    session.add(rec)
    session.flush()
    return rec


def iter_records(
    session: Session, *, since: datetime | None = None, batch: int = 5000
) -> Iterator[AuditRecord]:
    """Every record in chain order, read in batches so exports stream in bounded memory."""
    last_seq = 0
    while True:
        query = select(AuditRecord).where(AuditRecord.seq > last_seq)
        if since is not None:
            query = query.where(AuditRecord.at >= since)
        rows = session.exec(query.order_by(col(AuditRecord.seq)).limit(batch)).all()
        if not rows:
            return
        yield from rows
        last_seq = rows[-1].seq


def export_jsonl(records: Iterable[AuditRecord]) -> Iterator[bytes]:
    for rec in records:
        yield orjson.dumps(as_export_dict(rec), option=orjson.OPT_SORT_KEYS) + b"\n"


def export_csv(records: Iterable[AuditRecord]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_FIELDS)
    for rec in records:
        row = as_export_dict(rec)
        row["details"] = orjson.dumps(row["details"], option=orjson.OPT_SORT_KEYS).decode()
        writer.writerow([row[name] for name in CSV_FIELDS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.getvalue():
        yield buffer.getvalue()


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    first_bad_seq: int | None = None
    reason: str = ""
    head_hash: str | None = None


def _parse_export(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record fields) from a JSONL or CSV export."""
    with path.open("rb") as fh:
        head = fh.read(64).lstrip()
    if head.startswith(b"{"):
        with path.open("rb") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    yield lineno, orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise AuditChainError(f"{path}:{lineno}: not a JSON record ({exc})") from exc
        return
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != CSV_FIELDS:
            raise AuditChainError(
                f"{path}: not an audit export (expected CSV columns {', '.join(CSV_FIELDS)})"
            )
        for lineno, row in enumerate(reader, start=2):
            try:
                yield lineno, {**row, "seq": int(row["seq"]), "details": orjson.loads(row["details"])}
            except (ValueError, orjson.JSONDecodeError) as exc:
                raise AuditChainError(f"{path}:{lineno}: malformed record ({exc})") from exc


def verify_records(records: Iterable[dict[str, Any]]) -> VerifyResult:
    """Check hashes and links; the result names the first sequence number that is wrong."""
    expected_seq: int | None = None
    prev_hash: str | None = None
    count = 0
    for fields in records:
        seq = fields.get("seq")
        if not isinstance(seq, int):
            return VerifyResult(False, count, expected_seq, f"record {count + 1} has no integer seq")
        if expected_seq is None:
            expected_seq = seq
            prev_hash = GENESIS_HASH if seq == 1 else fields.get("prev_hash")
        if seq != expected_seq:
            what = "missing (deleted)" if seq > expected_seq else "out of order"
            return VerifyResult(
                False,
                count,
                expected_seq,
                f"seq {expected_seq} {what}: found seq {seq} where {expected_seq} belongs",
            )
        if fields.get("prev_hash") != prev_hash:
            return VerifyResult(False, count, seq, f"seq {seq} does not link to the record before it")
        try:
            actual = compute_hash(fields)
        except (KeyError, TypeError) as exc:
            return VerifyResult(False, count, seq, f"seq {seq} is missing a field ({exc})")
        if actual != fields.get("hash"):
            return VerifyResult(
                False, count, seq, f"seq {seq} was altered: its content does not match its hash"
            )
        prev_hash = fields["hash"]
        expected_seq = seq + 1
        count += 1
    return VerifyResult(True, count, head_hash=prev_hash)


def verify_export(path: Path) -> VerifyResult:
    return verify_records(fields for _, fields in _parse_export(path))


def verify_database(session: Session) -> VerifyResult:
    return verify_records(as_export_dict(rec) for rec in iter_records(session))
