"""Audit export and verification: core.audit's chain format and verifier, with a faster reader for exports."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import String, Text, cast, select, type_coerce
from sqlmodel import Session
from starlette.requests import Request

from api.audit.schemas import ExportFormat, VerifyOut
from api.errors import Unprocessable
from core.audit import CSV_FIELDS, VerifyResult, verify_database, verify_export
from core.clock import isoformat, parse_time
from core.db import Database
from core.errors import AuditChainError
from core.models import AuditRecord

# Records are batched into chunks of about this many bytes: fewer, larger writes stream faster.
_CHUNK_BYTES = 256 * 1024
_BATCH = 10_000
# How SQLAlchemy stores a UTC time on SQLite (see core.models.types.UTCDateTime).
_SQLITE_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")


def _details(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # e.g. an integer beyond 64 bits: the standard parser copes
        return json.loads(text)


def _iso_from_sqlite(text: str) -> str:
    """core.clock.isoformat of a stored SQLite time, straight from its text (no datetime round trip)."""
    if not _SQLITE_TIME.match(text):
        return isoformat(parse_time(text))
    if text.endswith(".000000"):  # datetime.isoformat leaves out a zero fraction
        text = text[:-7]
    return text.replace(" ", "T", 1) + "Z"


def export_fields(session: Session, *, since: datetime | None = None) -> Iterator[dict[str, Any]]:
    """Each record as core.audit.as_export_dict gives it, in chain order, read as plain rows.

    core's exporter builds an ORM object per record and decodes JSON with the standard library;
    for exports of millions of records this reads raw columns instead (several times faster).
    The result is byte-for-byte core's export (tests compare the two).
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
        query = select(*columns).where(table.c.seq > last_seq)
        if since is not None:
            query = query.where(table.c.at >= since)
        rows = session.connection().execute(query.order_by(table.c.seq).limit(_BATCH)).all()
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
                "details": _details(details),
                "prev_hash": prev_hash,
                "hash": hash_,
            }
        last_seq = rows[-1][0]


def _jsonl(fields: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    dumps, option = orjson.dumps, orjson.OPT_SORT_KEYS
    for record in fields:
        yield dumps(record, option=option) + b"\n"


def _csv(fields: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_FIELDS)
    for record in fields:
        record["details"] = orjson.dumps(record["details"], option=orjson.OPT_SORT_KEYS).decode()
        writer.writerow([record[name] for name in CSV_FIELDS])
        if buffer.tell() >= _CHUNK_BYTES:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def stream_export(db: Database, fmt: ExportFormat, since: datetime | None) -> Iterator[bytes]:
    """The chain in seq order as JSONL or CSV bytes, read in batches inside one read transaction."""
    with db.session(readonly=True) as session:
        fields = export_fields(session, since=since)
        pieces = _jsonl(fields) if fmt is ExportFormat.JSONL else _csv(fields)
        buffer: list[bytes] = []
        size = 0
        for piece in pieces:
            buffer.append(piece)
            size += len(piece)
            if size >= _CHUNK_BYTES:
                yield b"".join(buffer)
                buffer, size = [], 0
        if buffer:
            yield b"".join(buffer)


def _out(result: VerifyResult) -> VerifyOut:
    return VerifyOut(
        ok=result.ok,
        records=result.records,
        first_bad_seq=result.first_bad_seq,
        reason=result.reason,
        head_hash=result.head_hash,
    )


def verify_live(db: Database) -> VerifyOut:
    with db.session(readonly=True) as session:
        return _out(verify_database(session))


async def spool_body(request: Request, directory: Path) -> Path:
    """Write the request body to a file (verification reads files; bodies may be large)."""
    path = directory / "upload"
    with path.open("wb") as handle:
        stream: AsyncIterator[bytes] = request.stream()
        async for chunk in stream:
            handle.write(chunk)
    return path


def verify_file(path: Path) -> VerifyOut:
    if path.stat().st_size == 0:
        raise Unprocessable(
            "the body is empty; send an export made by /audit/export or `tenantguard audit export`"
        )
    try:
        return _out(verify_export(path))
    except AuditChainError as exc:
        raise Unprocessable(str(exc).replace(str(path), "body"))
    except UnicodeDecodeError:
        raise Unprocessable("the body is neither a JSONL nor a CSV audit export (it is not UTF-8 text)")
