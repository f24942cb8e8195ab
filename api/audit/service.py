"""Audit export and verification, built on core.audit (the one chain format and verifier)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Text, cast, select
from sqlmodel import Session
from starlette.requests import Request

from api.audit.schemas import ExportFormat, VerifyOut
from api.errors import Unprocessable
from core.audit import VerifyResult, export_csv, export_jsonl, verify_database, verify_export
from core.db import Database
from core.errors import AuditChainError
from core.models import AuditRecord

# Records are batched into chunks of about this many bytes: fewer, larger writes stream faster.
_CHUNK_BYTES = 256 * 1024


class ExportRow(NamedTuple):
    """The fields core.audit's exporters read from a record, without an ORM object per row."""

    seq: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


def _details(text: str) -> dict[str, Any]:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # e.g. an integer beyond 64 bits: the standard parser copes
        return json.loads(text)


def export_rows(
    session: Session, *, since: datetime | None = None, batch: int = 10_000
) -> Iterator[ExportRow]:
    """Every record in chain order, like core.audit.iter_records, read as plain rows (several times faster).

    The output is still produced by core.audit.export_jsonl / export_csv, so the format is core's
    by construction; tests check the bytes are identical to core's own export.
    """
    table = AuditRecord.__table__  # type: ignore[attr-defined]
    # Positional order of the select below: every field but details, then details as text.
    columns = [table.c[name] for name in ExportRow._fields if name != "details"]
    last_seq = 0
    while True:
        query = select(*columns, cast(table.c.details, Text).label("details")).where(table.c.seq > last_seq)
        if since is not None:
            query = query.where(table.c.at >= since)
        rows = session.connection().execute(query.order_by(table.c.seq).limit(batch)).all()
        if not rows:
            return
        for seq, at, actor, action, object_type, object_id, prev_hash, hash_, details in rows:
            yield ExportRow(
                seq, at, actor, action, object_type, object_id, _details(details), prev_hash, hash_
            )
        last_seq = rows[-1].seq


def stream_export(db: Database, fmt: ExportFormat, since: datetime | None) -> Iterator[bytes]:
    """The chain in seq order as JSONL or CSV bytes, read in batches inside one read transaction."""
    with db.session(readonly=True) as session:
        # core's exporters read attributes only: plain rows stand in for AuditRecord objects.
        records: Any = export_rows(session, since=since)
        pieces = (
            export_jsonl(records) if fmt is ExportFormat.JSONL else (s.encode() for s in export_csv(records))
        )
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
