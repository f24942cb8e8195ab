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
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import String, Text, cast, func, text, type_coerce
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from core.clock import isoformat, parse_time, utcnow
from core.errors import AuditChainError
from core.models.audit import AuditCheckpoint, AuditRecord
from core.spreadsheet import escape_cell, unescape_cell

GENESIS_HASH = "0" * 64
CSV_FIELDS = ("seq", "at", "actor", "action", "object_type", "object_id", "details", "prev_hash", "hash")
_PG_AUDIT_LOCK_KEY = 0x7467_6175_6469_74  # "tgaudit"
# Exports are written in chunks of about this size: fewer, larger writes stream faster.
_CHUNK_BYTES = 256 * 1024
# How SQLAlchemy stores a UTC time on SQLite (see core.models.types.UTCDateTime).
_SQLITE_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")


class Channel(StrEnum):
    """How a change reached us."""

    API = "api"
    CLI = "cli"
    SLACK = "slack"
    SCHEDULER = "scheduler"
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """Who made a change, through which channel, for which request: what every audit record names.

    `name` is the principal as the audit trail spells it ("principal:alice", "slack:U123",
    "system:collector"); `request_id` ties an API or Slack change to the request that made it.
    """

    name: str
    channel: Channel
    request_id: str = ""

    def __str__(self) -> str:
        return self.name

    @classmethod
    def system(cls, name: str) -> Actor:
        """A job of the service itself (collection, detection, grouping, notification)."""
        return cls(name if ":" in name else f"system:{name}", Channel.SCHEDULER)

    @classmethod
    def cli(cls, name: str) -> Actor:
        return cls(name, Channel.CLI)


class AuditAction(StrEnum):
    """Every action the audit chain records: `<object>.<past participle>`."""

    ANOMALY_DETECTED = "anomaly.detected"
    AUDIT_EXPORTED = "audit.exported"
    AUDIT_TRUNCATED = "audit.truncated"
    COLLECTOR_PAGE_QUARANTINED = "collector.page_quarantined"
    COLLECTOR_STREAM_HEALTH_CHANGED = "collector.stream_health_changed"
    COMPLIANCE_EVIDENCE_PACKAGED = "compliance.evidence_packaged"
    COMPLIANCE_EXCEPTION_APPROVED = "compliance.exception.approved"
    COMPLIANCE_EXCEPTION_EXPIRED = "compliance.exception.expired"
    COMPLIANCE_EXCEPTION_EXPIRING = "compliance.exception.expiring"
    COMPLIANCE_EXCEPTION_REQUESTED = "compliance.exception.requested"
    COMPLIANCE_REPORT_EXPORTED = "compliance.report_exported"
    CONNECTION_CREATED = "connection.created"
    CONNECTION_DISABLED = "connection.disabled"
    CONNECTION_ENABLED = "connection.enabled"
    CONNECTION_HEALTH_CHANGED = "connection.health_changed"
    CONNECTION_UPDATED = "connection.updated"
    DATA_PURGED = "data.purged"
    DEMO_SCENARIO_LOADED = "demo.scenario_loaded"
    EVENTS_PURGED = "events.purged"
    FINDING_CREATED = "finding.created"
    FINDING_RESOLVED = "finding.resolved"
    FINDING_UPDATED = "finding.updated"
    IDENTITY_RESOLVED = "identity.resolved"
    IDENTITY_SCORED = "identity.scored"
    INCIDENT_ASSIGNED = "incident.assigned"
    INCIDENT_CONVERSATION_LINKED = "incident.conversation_linked"
    INCIDENT_CONVERSATIONS_LINKED = "incident.conversations_linked"
    INCIDENT_CREATED = "incident.created"
    INCIDENT_FINDINGS_ADDED = "incident.findings_added"
    INCIDENT_MERGED = "incident.merged"
    INCIDENT_NOTE_ADDED = "incident.note_added"
    INCIDENT_NOTIFIED_ANNOUNCE = "incident.notified.announce"
    INCIDENT_NOTIFIED_UPDATE = "incident.notified.update"
    INCIDENT_POSTMORTEM_UPDATED = "incident.postmortem_updated"
    INCIDENT_PRIORITY_CHANGED = "incident.priority_changed"
    INCIDENT_SPLIT = "incident.split"
    INCIDENT_TRANSITIONED = "incident.transitioned"
    LEGAL_HOLD_PLACED = "legal_hold.placed"
    LEGAL_HOLD_RELEASED = "legal_hold.released"
    ONCALL_DEFINITION_CREATED = "oncall.definition.created"
    ONCALL_DEFINITION_DELETED = "oncall.definition.deleted"
    ONCALL_DEFINITION_UPDATED = "oncall.definition.updated"
    ONCALL_ESCALATION_ACKNOWLEDGED = "oncall.escalation.acknowledged"
    ONCALL_ESCALATION_STARTED = "oncall.escalation.started"
    ONCALL_ESCALATION_STOPPED = "oncall.escalation.stopped"
    ONCALL_ESCALATED_NOW = "oncall.escalation.escalated_now"
    ONCALL_ESCALATION_REASSIGNED = "oncall.escalation.reassigned"
    ONCALL_ESCALATION_RESOLVED = "oncall.escalation.resolved"
    ONCALL_REFUSED = "oncall.refused"
    ONCALL_PAGE_ABANDONED = "oncall.page.abandoned"
    ONCALL_PAGE_DELIVERY = "oncall.page.delivery"
    ONCALL_PAGE_FAILED = "oncall.page.failed"
    ONCALL_PAGE_SENT = "oncall.page.sent"
    ONCALL_STEP_FIRED = "oncall.step.fired"
    POSTURE_EVALUATED = "posture.evaluated"
    PRINCIPAL_CREATED = "principal.created"
    PRINCIPAL_DISABLED = "principal.disabled"
    PRIVACY_ERASED = "privacy.erased"
    PRIVACY_ERASURE_REQUESTED = "privacy.erasure_requested"
    PRIVACY_EXPORTED = "privacy.exported"
    REMEDIATION_APPROVAL_RECORDED = "remediation.approval_recorded"
    REMEDIATION_APPROVED = "remediation.approved"
    REMEDIATION_AUTO_APPROVED = "remediation.auto_approved"
    REMEDIATION_EXECUTION_STARTED = "remediation.execution_started"
    REMEDIATION_FAILED = "remediation.failed"
    REMEDIATION_NOT_RUN = "remediation.not_run"
    REMEDIATION_PROPOSED = "remediation.proposed"
    REMEDIATION_REFUSED = "remediation.refused"
    REMEDIATION_REJECTED = "remediation.rejected"
    REMEDIATION_REPLANNED = "remediation.replanned"
    REMEDIATION_ROLLBACK_FAILED = "remediation.rollback_failed"
    REMEDIATION_ROLLED_BACK = "remediation.rolled_back"
    REMEDIATION_STOPPED = "remediation.stopped"
    REMEDIATION_SUCCEEDED = "remediation.succeeded"
    RESPONSE_ALERT_RECEIVED = "response.alert.received"
    RESPONSE_ALERT_REFUSED = "response.alert.refused"
    RESPONSE_CHANNEL_CREATED = "response.channel.created"
    RESPONSE_CHANNEL_FAILED = "response.channel.failed"
    RESPONSE_DRILL_FINISHED = "response.drill.finished"
    RESPONSE_DRILL_STARTED = "response.drill.started"
    RESPONSE_POSTMORTEM_DRAFTED = "response.postmortem.drafted"
    RESPONSE_TICKET_CREATED = "response.ticket.created"
    RESPONSE_TICKET_SYNCED = "response.ticket.synced"
    RESPONSE_UPDATE_DUE = "response.update.due"
    RESPONSE_UPDATE_PUBLISHED = "response.update.published"
    RESPONSE_UPDATE_WRITTEN = "response.update.written"
    SUPPRESSION_CREATED = "suppression.created"
    SUPPRESSION_DELETED = "suppression.deleted"


_NOTHING: Any = object()


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


@dataclass(frozen=True)
class AuditEntry:
    """One change to record, for :func:`record_many` (the same fields :func:`record` takes)."""

    actor: Actor
    action: AuditAction
    object_type: str
    object_id: str | int
    details: dict[str, Any] | None = None
    before: Any = _NOTHING
    after: Any = _NOTHING
    at: datetime | None = None


def _chain_fields(entry: AuditEntry, seq: int, prev_hash: str) -> dict[str, Any]:
    """The stored fields (hash included) of `entry` as record `seq` after `prev_hash`."""
    action = AuditAction(entry.action)
    details = {**(entry.details or {}), "via": entry.actor.channel.value}
    if entry.actor.request_id:
        details["request_id"] = entry.actor.request_id
    if entry.before is not _NOTHING:
        details["before"] = entry.before
    if entry.after is not _NOTHING:
        details["after"] = entry.after
    fields: dict[str, Any] = {
        "seq": seq,
        "at": isoformat(entry.at or utcnow()),
        "actor": entry.actor.name,
        "action": action.value,
        "object_type": entry.object_type,
        "object_id": str(entry.object_id),
        "details": _normalise(details),
        "prev_hash": prev_hash,
    }
    fields["hash"] = compute_hash(fields)
    return fields


def _chain_head(session: Session) -> tuple[int, str]:
    """(seq, hash) of the newest record, under the chain lock (see `_lock_chain`)."""
    _lock_chain(session)
    table = AuditRecord.__table__  # type: ignore[attr-defined]
    last = session.execute(sa_select(table.c.seq, table.c.hash).order_by(table.c.seq.desc()).limit(1)).first()
    return (int(last[0]), str(last[1])) if last else (0, GENESIS_HASH)


def record(
    session: Session,
    *,
    actor: Actor,
    action: AuditAction,
    object_type: str,
    object_id: str | int,
    details: dict[str, Any] | None = None,
    before: Any = _NOTHING,
    after: Any = _NOTHING,
    at: datetime | None = None,
) -> AuditRecord:
    """Append the one record of a change, in the caller's transaction (change and record commit together).

    The record names the actor's channel (`via`) and request id, and the object's state before and after
    when the caller gives them. Never pass a secret in details, before or after.
    """
    entry = AuditEntry(actor, AuditAction(action), object_type, object_id, details, before, after, at)
    session.flush()  # the head read below must see records this session has not flushed yet
    seq, prev_hash = _chain_head(session)
    fields = _chain_fields(entry, seq + 1, prev_hash)
    rec = AuditRecord(**{**fields, "at": parse_time(fields["at"])})
    session.add(rec)
    session.flush()
    return rec


def record_many(session: Session, entries: Iterable[AuditEntry]) -> int:
    """Append one record per change, in order, as one chain append: one lock, one head read and
    one multi-row insert for the lot, in the caller's transaction. The chain is exactly what
    calling :func:`record` once per entry would leave. Returns how many were appended."""
    entries = list(entries)
    if not entries:
        return 0
    session.flush()
    seq, prev_hash = _chain_head(session)
    rows = []
    for entry in entries:
        seq += 1
        fields = _chain_fields(entry, seq, prev_hash)
        prev_hash = fields["hash"]
        rows.append({**fields, "at": parse_time(fields["at"])})
    table = AuditRecord.__table__  # type: ignore[attr-defined]
    connection = session.connection()
    for start in range(0, len(rows), 1000):
        connection.execute(table.insert(), rows[start : start + 1000])
    return len(rows)


def truncate_chain(session: Session, *, up_to_seq: int, actor: Actor, details: dict[str, Any]) -> int:
    """Delete records 1..`up_to_seq` as a verifiable truncation, in the caller's transaction: first an
    ``audit.truncated`` record naming `up_to_seq` and the hash of that record (the anchor the first
    surviving record links to), then the checkpoint row the database's delete trigger requires, then
    the deletion. `verify_database` checks that the first surviving record is exactly the one the
    newest checkpoint and its in-chain record name. Returns how many records were deleted."""
    table = AuditRecord.__table__  # type: ignore[attr-defined]
    session.flush()
    _lock_chain(session)
    anchor = session.execute(sa_select(table.c.hash).where(table.c.seq == up_to_seq)).scalar_one_or_none()
    first = session.execute(sa_select(func.min(table.c.seq))).scalar_one_or_none()
    if anchor is None or first is None or first > up_to_seq:
        return 0
    count = up_to_seq - int(first) + 1
    rec = record(
        session,
        actor=actor,
        action=AuditAction.AUDIT_TRUNCATED,
        object_type="audit",
        object_id=up_to_seq,
        details={**details, "up_to_seq": up_to_seq, "anchor_hash": anchor, "records_deleted": count},
    )
    session.add(
        AuditCheckpoint(
            up_to_seq=up_to_seq, anchor_hash=anchor, record_seq=rec.seq, records_deleted=count, at=rec.at
        )
    )
    session.flush()
    session.execute(table.delete().where(table.c.seq <= up_to_seq))
    return count


def iter_records(
    session: Session, *, since: datetime | None = None, batch: int = 5000
) -> Iterator[AuditRecord]:
    """Every record in chain order as ORM objects, read in batches (what the live verifier walks)."""
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


def _details_of(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # e.g. an integer beyond 64 bits: the standard parser copes
        return json.loads(text)


def _iso_from_sqlite(text: str) -> str:
    """`isoformat` of a time as SQLite stores it, straight from its text (no datetime round trip)."""
    if not _SQLITE_TIME.match(text):
        return isoformat(parse_time(text))
    if text.endswith(".000000"):  # datetime.isoformat leaves out a zero fraction
        text = text[:-7]
    return text.replace(" ", "T", 1) + "Z"


def export_fields(
    session: Session, *, since: datetime | None = None, batch: int = 10_000
) -> Iterator[dict[str, Any]]:
    """Each record as `as_export_dict` gives it, in chain order, read as plain rows.

    Exports of millions of records read raw columns rather than building an ORM object and
    decoding JSON per record (several times faster); the output is exactly `as_export_dict`'s.
    """
    table = AuditRecord.__table__  # type: ignore[attr-defined]
    sqlite = session.get_bind().dialect.name == "sqlite"
    at_column = type_coerce(table.c.at, String) if sqlite else table.c.at
    columns = [
        table.c.seq,
        at_column,
        table.c.actor,
        table.c.action,
        table.c.object_type,
        table.c.object_id,
        type_coerce(cast(table.c.details, Text), String),
        table.c.prev_hash,
        table.c.hash,
    ]
    last_seq = 0
    while True:
        query = sa_select(*columns).where(table.c.seq > last_seq)
        if since is not None:
            query = query.where(table.c.at >= since)
        rows = session.connection().execute(query.order_by(table.c.seq).limit(batch)).all()
        if not rows:
            return
        for seq, at, actor, action, object_type, object_id, details, prev_hash, hash_ in rows:
            yield {
                "seq": seq,
                "at": _iso_from_sqlite(at) if sqlite else isoformat(at),
                "actor": actor,
                "action": action,
                "object_type": object_type,
                "object_id": object_id,
                "details": _details_of(details),
                "prev_hash": prev_hash,
                "hash": hash_,
            }
        last_seq = rows[-1][0]


def jsonl_lines(fields: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    dumps, option = orjson.dumps, orjson.OPT_SORT_KEYS
    for record in fields:
        yield dumps(record, option=option) + b"\n"


def csv_chunks(fields: Iterable[dict[str, Any]], chunk_chars: int = _CHUNK_BYTES) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_FIELDS)
    for record in fields:
        row = {**record, "details": orjson.dumps(record["details"], option=orjson.OPT_SORT_KEYS).decode()}
        writer.writerow([escape_cell(row[name]) for name in CSV_FIELDS])
        if buffer.tell() >= chunk_chars:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def export_jsonl(records: Iterable[AuditRecord]) -> Iterator[bytes]:
    return jsonl_lines(as_export_dict(rec) for rec in records)


def export_csv(records: Iterable[AuditRecord]) -> Iterator[str]:
    return csv_chunks(as_export_dict(rec) for rec in records)


def stream_export(session: Session, fmt: str, *, since: datetime | None = None) -> Iterator[bytes]:
    """The chain from `since` as JSONL or CSV bytes, in chunks of about 256 KiB (CLI and API)."""
    fields = export_fields(session, since=since)
    if fmt == "csv":
        for chunk in csv_chunks(fields):
            yield chunk.encode()
        return
    buffer: list[bytes] = []
    size = 0
    for line in jsonl_lines(fields):
        buffer.append(line)
        size += len(line)
        if size >= _CHUNK_BYTES:
            yield b"".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield b"".join(buffer)


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
    # A record's details can exceed the csv module's default 128 KiB cell: allow what we write.
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != CSV_FIELDS:
            raise AuditChainError(
                f"{path}: not an audit export (expected CSV columns {', '.join(CSV_FIELDS)})"
            )
        for lineno, cells in enumerate(reader, start=2):
            row = {
                name: unescape_cell(cell) if isinstance(cell, str) else cell for name, cell in cells.items()
            }
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
    """The live chain: every hash and link, and — after a retention truncation — that the first
    surviving record links to the anchor the newest checkpoint names and that the checkpoint's own
    ``audit.truncated`` record in the chain says the same (a gap without one is a deletion)."""
    result = verify_records(as_export_dict(rec) for rec in iter_records(session))
    if not result.ok:
        return result
    first = session.exec(select(AuditRecord).order_by(col(AuditRecord.seq)).limit(1)).first()
    if first is None or first.seq == 1:
        return result
    checkpoint = session.exec(
        select(AuditCheckpoint).order_by(col(AuditCheckpoint.up_to_seq).desc()).limit(1)
    ).first()
    if checkpoint is None or checkpoint.up_to_seq != first.seq - 1:
        return VerifyResult(
            False, 0, 1, f"records 1..{first.seq - 1} are missing and no checkpoint covers them"
        )
    if checkpoint.anchor_hash != first.prev_hash:
        return VerifyResult(
            False, 0, first.seq, f"seq {first.seq} does not link to checkpoint {checkpoint.up_to_seq}"
        )
    noted = session.get(AuditRecord, checkpoint.record_seq)
    if (
        noted is None
        or noted.action != AuditAction.AUDIT_TRUNCATED
        or noted.details.get("up_to_seq") != checkpoint.up_to_seq
        or noted.details.get("anchor_hash") != checkpoint.anchor_hash
    ):
        return VerifyResult(
            False,
            0,
            checkpoint.record_seq,
            f"checkpoint {checkpoint.up_to_seq} has no matching audit.truncated record",
        )
    return replace(
        result,
        reason=f"records 1..{checkpoint.up_to_seq} truncated by retention "
        f"({checkpoint.records_deleted} in the last truncation; checkpoint record seq {checkpoint.record_seq})",
    )
