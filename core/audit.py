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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import String, Text, cast, func, text, type_coerce
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from core.audit_keys import TrustedKeys, sign_statement
from core.bulk import insert_many
from core.clock import as_utc, isoformat, parse_time, utcnow
from core.errors import AuditChainError
from core.models.audit import AuditCheckpoint, AuditRecord
from core.spreadsheet import escape_cell, unescape_cell

GENESIS_HASH = "0" * 64
# The last line of a signed export (JSONL: the key of its one object; CSV: its `seq` cell).
SIGNED_HEAD = "signed_head"
EXPORT_FORMAT = "tenantguard-audit-export/2"
CHECKPOINT_FORMAT = "tenantguard-audit-checkpoint/1"
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
    AUDIT_CHECKPOINTED = "audit.checkpointed"
    AUDIT_EXPORTED = "audit.exported"
    AUDIT_TRUNCATED = "audit.truncated"
    CHANGE_WINDOW_CANCELLED = "change_window.cancelled"
    CHANGE_WINDOW_DECLARED = "change_window.declared"
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
    DIGEST_CREATED = "digest.created"
    DIGEST_NOTIFIED = "digest.notified"
    ENCRYPTION_KEY_ROTATED = "encryption_key.rotated"
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
    RESPONSE_CHANNEL_INVITED = "response.channel.invited"
    RESPONSE_DRILL_FINISHED = "response.drill.finished"
    RESPONSE_DRILL_STARTED = "response.drill.started"
    RESPONSE_POSTMORTEM_DRAFTED = "response.postmortem.drafted"
    RESPONSE_POSTMORTEM_REVIEWED = "response.postmortem.reviewed"
    RESPONSE_POSTMORTEM_SIGNED_OFF = "response.postmortem.signed_off"
    RESPONSE_SUBSCRIBERS_NOTIFIED = "response.subscribers.notified"
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
    insert_many(session.connection(), AuditRecord.__table__, rows)  # type: ignore[attr-defined]
    return len(rows)


def truncate_chain(
    session: Session, *, up_to_seq: int, actor: Actor, details: dict[str, Any], key: Ed25519PrivateKey
) -> int:
    """Delete records 1..`up_to_seq` as a verifiable truncation, in the caller's transaction: first an
    ``audit.truncated`` record naming `up_to_seq` and the hash of that record (the anchor the first
    surviving record links to), signed with `key`, then the checkpoint row the database's delete
    trigger requires, then the deletion. `verify_database` checks that the first surviving record is
    exactly the one the newest checkpoint and its signed in-chain record name (a checkpoint row
    written without the key is a forgery). Returns how many records were deleted."""
    table = AuditRecord.__table__  # type: ignore[attr-defined]
    session.flush()
    _lock_chain(session)
    anchor = session.execute(sa_select(table.c.hash).where(table.c.seq == up_to_seq)).scalar_one_or_none()
    first = session.execute(sa_select(func.min(table.c.seq))).scalar_one_or_none()
    if anchor is None or first is None or first > up_to_seq:
        return 0
    count = up_to_seq - int(first) + 1
    statement = truncation_statement(up_to_seq, anchor, count)
    rec = record(
        session,
        actor=actor,
        action=AuditAction.AUDIT_TRUNCATED,
        object_type="audit",
        object_id=up_to_seq,
        details={**details, **statement, **sign_statement(key, statement)},
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


def csv_chunks(
    fields: Iterable[dict[str, Any]],
    chunk_chars: int = _CHUNK_BYTES,
    trailer: Callable[[], dict[str, Any]] | None = None,
) -> Iterator[str]:
    """The CSV export: the header row, one row per record, then — given `trailer` — the signed head
    as a last row (``seq`` = ``signed_head``, the head's JSON in ``details``)."""
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
    if trailer is not None:
        head = orjson.dumps(trailer(), option=orjson.OPT_SORT_KEYS).decode()
        writer.writerow(
            [SIGNED_HEAD if name == "seq" else head if name == "details" else "" for name in CSV_FIELDS]
        )
    if buffer.tell():
        yield buffer.getvalue()


def export_jsonl(records: Iterable[AuditRecord]) -> Iterator[bytes]:
    return jsonl_lines(as_export_dict(rec) for rec in records)


def export_csv(records: Iterable[AuditRecord]) -> Iterator[str]:
    return csv_chunks(as_export_dict(rec) for rec in records)


# -------------------------------------------------------------------------------- signed statements


def checkpoint_statement(seq: Any, hash_: Any, at: Any) -> dict[str, Any]:
    """What a periodic checkpoint signs: the chain's head (`seq`, its `hash`) as of `at`."""
    return {"kind": "audit.checkpoint", "seq": seq, "hash": hash_, "at": at}


def truncation_statement(up_to_seq: Any, anchor_hash: Any, records_deleted: Any) -> dict[str, Any]:
    """What a retention truncation signs: records up to `up_to_seq` deleted, the first survivor
    linking to `anchor_hash`."""
    return {
        "kind": "audit.truncation",
        "up_to_seq": up_to_seq,
        "anchor_hash": anchor_hash,
        "records_deleted": records_deleted,
    }


def _signed_part(details: dict[str, Any]) -> dict[str, Any]:
    return {name: details.get(name) for name in ("signature", "public_key", "key")}


def latest_checkpoint(session: Session) -> AuditRecord | None:
    """The newest ``audit.checkpointed`` record (None: the head was never signed)."""
    return session.exec(
        select(AuditRecord)
        .where(AuditRecord.action == AuditAction.AUDIT_CHECKPOINTED.value)
        .order_by(col(AuditRecord.seq).desc())
        .limit(1)
    ).first()


def write_checkpoint(
    session: Session,
    key: Ed25519PrivateKey,
    *,
    actor: Actor,
    every: timedelta = timedelta(0),
    now: datetime | None = None,
) -> AuditRecord | None:
    """Sign the chain's head as a checkpoint, in the caller's transaction, when the head has moved
    since the newest checkpoint and that one is at least `every` old; the signature is appended as
    the ``audit.checkpointed`` record right after the head it signs (so exports carry it). Decided
    under the chain lock: two workers running it at once write one checkpoint. Returns the record,
    or None when none was due."""
    now = as_utc(now or utcnow())
    session.flush()
    seq, head = _chain_head(session)
    if seq == 0:
        return None
    latest = latest_checkpoint(session)
    if latest is not None and (latest.seq == seq or as_utc(latest.at) > now - every):
        return None
    statement = checkpoint_statement(seq, head, isoformat(now))
    return record(
        session,
        actor=actor,
        action=AuditAction.AUDIT_CHECKPOINTED,
        object_type="audit",
        object_id=seq,
        details={**statement, **sign_statement(key, statement)},
        at=now,
    )


def checkpoint_document(rec: AuditRecord) -> dict[str, Any]:
    """A checkpoint as it is anchored outside the database (printed, mailed, published, and the copy
    serve keeps beside its key): the signed head and the signature, verifiable with the public key."""
    details = rec.details
    return {
        "format": CHECKPOINT_FORMAT,
        "seq": details["seq"],
        "hash": details["hash"],
        "at": details["at"],
        "record_seq": rec.seq,
        **_signed_part(details),
    }


def read_anchor(path: Path) -> dict[str, Any]:
    """A checkpoint document from `path` (what `tenantguard audit checkpoint` printed)."""
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise AuditChainError(f"cannot read the checkpoint {path}: {exc.strerror or exc}") from None
    try:
        doc = orjson.loads(body[:65536])
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
        raise AuditChainError(f"{path} is not a checkpoint printed by `tenantguard audit checkpoint`")
    return doc


def write_anchor(path: Path, doc: dict[str, Any]) -> None:
    """Keep `doc` at `path` (atomically), unless the copy there is of a later head already."""
    try:
        current = read_anchor(path) if path.exists() else None
    except AuditChainError:
        current = None
    if current is not None and int(current.get("seq", 0)) >= int(doc["seq"]):
        return
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    tmp.replace(path)


def anchor_path(key_path: Path) -> Path:
    """Where serve keeps the newest checkpoint it signed: beside the key, outside the database."""
    return key_path.with_name(key_path.name + ".checkpoint.json")


# ------------------------------------------------------------------------------------------ export


class _ExportBounds:
    """Watches the records an export streams, then signs what it saw as the export's head."""

    def __init__(self, key: Ed25519PrivateKey, since: datetime | None) -> None:
        self.key = key
        self.since = since
        self.first: dict[str, Any] | None = None
        self.last: dict[str, Any] | None = None
        self.count = 0

    def watch(self, fields: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in fields:
            if self.first is None:
                self.first = row
            self.last = row
            self.count += 1
            yield row

    def trailer(self) -> dict[str, Any]:
        statement = export_statement(
            start_seq=self.first["seq"] if self.first else None,
            start_prev_hash=self.first["prev_hash"] if self.first else None,
            end_seq=self.last["seq"] if self.last else None,
            end_hash=self.last["hash"] if self.last else None,
            records=self.count,
            since=isoformat(self.since) if self.since else None,
            exported_at=isoformat(utcnow()),
        )
        return {SIGNED_HEAD: statement, **sign_statement(self.key, statement)}


def export_statement(**bounds: Any) -> dict[str, Any]:
    """What an export's last line signs: its first and last record (seq and the hashes around them),
    how many it holds, from when, and when it was made."""
    return {"kind": "audit.export", "format": EXPORT_FORMAT, **bounds}


def stream_export(
    session: Session, fmt: str, *, since: datetime | None = None, key: Ed25519PrivateKey
) -> Iterator[bytes]:
    """The chain from `since` as JSONL or CSV bytes, in chunks of about 256 KiB (CLI and API), ending
    with the signed head: start and end seq, the hashes at both ends, the record count, signed
    with `key` — so a verifier sees lines cut from either end."""
    bounds = _ExportBounds(key, since)
    fields = bounds.watch(export_fields(session, since=since))
    if fmt == "csv":
        for chunk in csv_chunks(fields, trailer=bounds.trailer):
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
    buffer.append(orjson.dumps(bounds.trailer(), option=orjson.OPT_SORT_KEYS) + b"\n")
    yield b"".join(buffer)


# ------------------------------------------------------------------------------------ verification


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    first_bad_seq: int | None = None
    reason: str = ""
    head_hash: str | None = None
    start_seq: int | None = None
    end_seq: int | None = None
    signed: bool = False  # the export's head (or the live chain's checkpoints) carry valid signatures
    signed_by: tuple[str, ...] = ()  # fingerprints of the keys whose signatures were checked
    pinned: bool = False  # those keys were the trusted ones given, not just the ones the data carries
    checkpoints: int = 0  # signed checkpoints found and checked
    notes: tuple[str, ...] = ()


def _parse_export(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record fields) from a JSONL or CSV export; the signed head (its last line) as
    ``{"signed_head": ...}``."""
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
                f"{path}: does not begin with the audit export's CSV header (columns {', '.join(CSV_FIELDS)}): "
                "not an audit export, or its first lines were removed"
            )
        for lineno, cells in enumerate(reader, start=2):
            row = {
                name: unescape_cell(cell) if isinstance(cell, str) else cell for name, cell in cells.items()
            }
            try:
                if row["seq"] == SIGNED_HEAD:
                    yield lineno, orjson.loads(row["details"])
                    continue
                yield lineno, {**row, "seq": int(row["seq"]), "details": orjson.loads(row["details"])}
            except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
                raise AuditChainError(f"{path}:{lineno}: malformed record ({exc})") from exc


class _Failed(Exception):
    def __init__(self, seq: int | None, reason: str) -> None:
        super().__init__(reason)
        self.seq = seq
        self.reason = reason


_CHECKPOINTED = AuditAction.AUDIT_CHECKPOINTED.value
_SIGNED_ACTIONS = frozenset({_CHECKPOINTED, AuditAction.AUDIT_TRUNCATED.value})


class _ChainWalk:
    """One pass over records in chain order: seq, links and hashes, and the signatures the chain
    carries (periodic checkpoints, retention truncations), checked against `trusted`. Remembers the
    hash of each seq in `watch` (anchored checkpoints to compare with)."""

    def __init__(self, trusted: TrustedKeys, watch: Iterable[int] = ()) -> None:
        self.trusted = trusted
        self.expected_seq: int | None = None
        self.prev_hash: str | None = None
        self.first: dict[str, Any] | None = None
        self.count = 0
        self.checkpoints = 0
        self.last_checkpoint_seq: int | None = None
        self.watch = set(watch)
        self.seen: dict[int, str] = {}

    def add(self, fields: dict[str, Any]) -> None:
        seq = fields.get("seq")
        if not isinstance(seq, int):
            raise _Failed(self.expected_seq, f"record {self.count + 1} has no integer seq")
        if self.expected_seq is None:
            self.expected_seq = seq
            self.prev_hash = GENESIS_HASH if seq == 1 else fields.get("prev_hash")
            self.first = fields
        if seq != self.expected_seq:
            what = "missing (deleted)" if seq > self.expected_seq else "out of order"
            raise _Failed(
                self.expected_seq,
                f"seq {self.expected_seq} {what}: found seq {seq} where {self.expected_seq} belongs",
            )
        if fields.get("prev_hash") != self.prev_hash:
            raise _Failed(seq, f"seq {seq} does not link to the record before it")
        try:
            actual = compute_hash(fields)
        except (KeyError, TypeError) as exc:
            raise _Failed(seq, f"seq {seq} is missing a field ({exc})") from None
        if actual != fields.get("hash"):
            raise _Failed(seq, f"seq {seq} was altered: its content does not match its hash")
        action = fields.get("action")
        if action in _SIGNED_ACTIONS:  # plain strs: comparing with the enum members costs 6x per record
            if action == _CHECKPOINTED:
                self._checkpoint(seq, fields)
            else:
                self._truncation(seq, fields)
        if seq in self.watch:
            self.seen[seq] = str(actual)
        self.prev_hash = actual
        self.expected_seq = seq + 1
        self.count += 1

    def _checkpoint(self, seq: int, fields: dict[str, Any]) -> None:
        details = fields.get("details") or {}
        statement = checkpoint_statement(details.get("seq"), details.get("hash"), details.get("at"))
        why = self.trusted.check(statement, _signed_part(details))
        if why:
            raise _Failed(seq, f"seq {seq}: the checkpoint of seq {details.get('seq')} is not valid: {why}")
        if details.get("seq") != seq - 1 or details.get("hash") != fields.get("prev_hash"):
            raise _Failed(
                seq,
                f"seq {seq}: the signed checkpoint of seq {details.get('seq')} names a head that is not the record "
                "before it (the chain was rewritten)",
            )
        self.checkpoints += 1
        self.last_checkpoint_seq = seq - 1

    def _truncation(self, seq: int, fields: dict[str, Any]) -> None:
        details = fields.get("details") or {}
        statement = truncation_statement(
            details.get("up_to_seq"), details.get("anchor_hash"), details.get("records_deleted")
        )
        why = self.trusted.check(statement, _signed_part(details))
        if why:
            raise _Failed(
                seq,
                f"seq {seq}: the retention truncation up to seq {details.get('up_to_seq')} is not valid: {why}",
            )

    def result(self, **extra: Any) -> VerifyResult:
        return VerifyResult(
            True,
            self.count,
            head_hash=self.prev_hash,
            start_seq=self.first["seq"] if self.first else None,
            end_seq=self.expected_seq - 1 if self.expected_seq is not None else None,
            signed_by=tuple(sorted(self.trusted.seen)),
            pinned=self.trusted.pinned,
            checkpoints=self.checkpoints,
            **extra,
        )


def _failed(walk: _ChainWalk, failure: _Failed) -> VerifyResult:
    return VerifyResult(False, walk.count, failure.seq, failure.reason, pinned=walk.trusted.pinned)


def verify_records(records: Iterable[dict[str, Any]], trusted: TrustedKeys | None = None) -> VerifyResult:
    """Check hashes, links and the signatures in the chain; the result names the first sequence
    number that is wrong."""
    walk = _ChainWalk(trusted or TrustedKeys())
    try:
        for fields in records:
            walk.add(fields)
    except _Failed as failure:
        return _failed(walk, failure)
    return walk.result()


def _check_anchors(
    walk: _ChainWalk,
    anchors: Sequence[dict[str, Any]],
    *,
    first_seq: int | None,
    end_seq: int | None,
    made_at: str | None,
) -> list[str]:
    """Each anchored checkpoint against the records walked; raises _Failed, returns notes. A checkpoint
    past the last record of a chain read after it was signed (`made_at`: when the export was made,
    None for the live chain) means records were cut off the end."""
    notes = []
    for doc in anchors:
        seq, hash_ = doc.get("seq"), doc.get("hash")
        statement = checkpoint_statement(seq, hash_, doc.get("at"))
        why = walk.trusted.check(statement, _signed_part(doc))
        if why or not isinstance(seq, int):
            raise _Failed(None, f"the anchored checkpoint of seq {seq} is not valid: {why or 'no seq'}")
        if first_seq is not None and seq < first_seq:
            notes.append(
                f"the anchored checkpoint of seq {seq} is before the first record here ({first_seq})"
            )
        elif end_seq is None or seq > end_seq:
            if made_at is None or parse_time(str(doc.get("at"))) <= parse_time(made_at):
                last = end_seq or 0
                raise _Failed(
                    last + 1,
                    f"records {last + 1}..{seq} were cut off the end: a checkpoint signed at seq {seq} "
                    f"(kept outside the database) is past the chain's last record ({last})",
                )
            notes.append(
                f"the anchored checkpoint of seq {seq} is after this export's last record ({end_seq})"
            )
        elif walk.seen.get(seq) != hash_:
            raise _Failed(
                seq,
                f"seq {seq} differs from the checkpoint anchored outside the database (the chain was rewritten)",
            )
    return notes


def _iter_export(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, dict[str, Any] | None]]:
    """(line number, record, signed head) per line, at most one of the two set."""
    for lineno, fields in _parse_export(path):
        if isinstance(fields, dict) and SIGNED_HEAD in fields and "seq" not in fields:
            yield lineno, None, fields
        else:
            yield lineno, fields, None


def verify_export(
    path: Path,
    *,
    trusted: TrustedKeys | None = None,
    anchors: Sequence[dict[str, Any]] = (),
    require_signed: bool = True,
) -> VerifyResult:
    """An export: every record's hash and link, the signatures the chain carries, and its signed head
    (its last line) — the records must run exactly from the head's start seq to its end seq, so lines
    cut from either end are named. `trusted`: the keys to accept (unpinned: whichever the export
    carries, named in the result). `anchors`: checkpoints kept outside, compared with the records.
    `require_signed=False` accepts an export without a signed head (made before exports were signed),
    checking its links only."""
    trusted = trusted or TrustedKeys()
    walk = _ChainWalk(trusted, watch=[int(a["seq"]) for a in anchors if isinstance(a.get("seq"), int)])
    trailer: dict[str, Any] | None = None
    try:
        for lineno, fields, head in _iter_export(path):
            if trailer is not None:
                raise _Failed(walk.expected_seq, f"line {lineno} comes after the signed head (its last line)")
            if head is not None:
                trailer = head
                continue
            assert fields is not None
            walk.add(fields)
        notes: list[str] = []
        if trailer is None:
            if require_signed:
                raise _Failed(
                    walk.expected_seq,
                    "the export has no signed head at its end: its last lines were removed (or it was made "
                    "before exports were signed: --allow-unsigned checks its links only)",
                )
            notes.append("unsigned export: its links verify, but lines cut from either end cannot be seen")
        else:
            _check_head(walk, trailer)
        first = walk.first["seq"] if walk.first else None
        last = walk.expected_seq - 1 if walk.expected_seq is not None else None
        made_at = str((trailer or {}).get(SIGNED_HEAD, {}).get("exported_at") or "0001-01-01T00:00:00Z")
        notes += _check_anchors(walk, anchors, first_seq=first, end_seq=last, made_at=made_at)
    except _Failed as failure:
        return _failed(walk, failure)
    return walk.result(signed=trailer is not None, notes=tuple(notes))


def _check_head(walk: _ChainWalk, trailer: dict[str, Any]) -> None:
    statement = trailer.get(SIGNED_HEAD)
    if not isinstance(statement, dict) or statement.get("kind") != "audit.export":
        raise _Failed(None, "the export's last line is not a signed head")
    why = walk.trusted.check(statement, _signed_part(trailer))
    if why:
        raise _Failed(None, f"the export's signed head is not valid: {why}")
    start, end = statement.get("start_seq"), statement.get("end_seq")
    first = walk.first["seq"] if walk.first else None
    last = walk.expected_seq - 1 if walk.expected_seq is not None else None
    if start is None:
        if walk.count:
            raise _Failed(
                first, f"the signed head says the export is empty, but it holds {walk.count} records"
            )
        return
    if not isinstance(start, int) or not isinstance(end, int):
        raise _Failed(None, "the export's signed head has no start and end seq")
    if first is None or last is None:
        raise _Failed(start, f"records {start}..{end} are missing: the export holds only its signed head")
    if first > start:
        raise _Failed(
            start,
            f"records {start}..{first - 1} are missing from the start of the export (its first "
            f"{first - start} records were removed; the signed head says it starts at seq {start})",
        )
    if first < start or walk.first is None or walk.first.get("prev_hash") != statement.get("start_prev_hash"):
        raise _Failed(first, f"the export's first record is not the one its signed head names (seq {start})")
    if last < end:
        raise _Failed(
            last + 1,
            f"records {last + 1}..{end} are missing from the end of the export (its last {end - last} "
            f"records were removed; the signed head says it ends at seq {end})",
        )
    if last > end or walk.prev_hash != statement.get("end_hash"):
        raise _Failed(end, f"the export's last record is not the one its signed head names (seq {end})")
    if walk.count != statement.get("records"):
        raise _Failed(
            None, f"the export holds {walk.count} records; its signed head says {statement.get('records')}"
        )


def verify_database(
    session: Session, *, trusted: TrustedKeys | None = None, anchors: Sequence[dict[str, Any]] = ()
) -> VerifyResult:
    """The live chain: every hash, link and signature in it; after a retention truncation, that the
    first surviving record links to the anchor the newest checkpoint names and that every checkpoint
    row has its signed ``audit.truncated`` record (a row written without the key is a forgery); and
    each checkpoint in `anchors` (kept outside the database) is still in the chain with its hash —
    one past the last record means records were cut off the end."""
    trusted = trusted or TrustedKeys()
    walk = _ChainWalk(trusted, watch=[int(a["seq"]) for a in anchors if isinstance(a.get("seq"), int)])
    try:
        for rec in iter_records(session):
            walk.add(as_export_dict(rec))
        truncated = _check_truncations(session, walk)
        first = walk.first["seq"] if walk.first else None
        last = walk.expected_seq - 1 if walk.expected_seq is not None else None
        notes = _check_anchors(walk, anchors, first_seq=first, end_seq=last, made_at=None)
    except _Failed as failure:
        return _failed(walk, failure)
    if last is not None:
        covered = walk.last_checkpoint_seq
        if covered is None:
            notes.append(f"no signed checkpoint yet: records {first}..{last} are covered by none")
        elif covered + 1 < last:
            notes.append(
                f"records {covered + 2}..{last} are newer than the last signed checkpoint (seq {covered})"
            )
    return walk.result(reason=truncated, signed=walk.checkpoints > 0, notes=tuple(notes))


def _check_truncations(session: Session, walk: _ChainWalk) -> str:
    first = walk.first
    checkpoints = session.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.up_to_seq))).all()
    first_seq = int(first["seq"]) if first else None
    for checkpoint in checkpoints:
        if first_seq is not None and checkpoint.record_seq < first_seq:
            continue  # its own record was truncated by a later truncation
        noted = session.get(AuditRecord, checkpoint.record_seq)
        if (
            noted is None
            or noted.action != AuditAction.AUDIT_TRUNCATED
            or noted.details.get("up_to_seq") != checkpoint.up_to_seq
            or noted.details.get("anchor_hash") != checkpoint.anchor_hash
        ):
            raise _Failed(
                checkpoint.record_seq,
                f"truncation checkpoint {checkpoint.up_to_seq} has no matching signed audit.truncated record "
                "(written without the key: forged)",
            )
    if first_seq is None or first_seq == 1:
        return ""
    newest = checkpoints[-1] if checkpoints else None
    if newest is None or newest.up_to_seq != first_seq - 1:
        raise _Failed(1, f"records 1..{first_seq - 1} are missing and no checkpoint covers them")
    assert first is not None
    if newest.anchor_hash != first["prev_hash"]:
        raise _Failed(first_seq, f"seq {first_seq} does not link to checkpoint {newest.up_to_seq}")
    return (
        f"records 1..{newest.up_to_seq} truncated by retention "
        f"({newest.records_deleted} in the last truncation; checkpoint record seq {newest.record_seq})"
    )
