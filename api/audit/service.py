"""Audit export and verification, built on core.audit (the one chain format and verifier)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path

from starlette.requests import Request

from api.audit.schemas import ExportFormat, VerifyOut
from api.errors import Unprocessable
from core.audit import VerifyResult, export_csv, export_jsonl, iter_records, verify_database, verify_export
from core.db import Database
from core.errors import AuditChainError

# Records are batched into chunks of about this many bytes: fewer, larger writes stream faster.
_CHUNK_BYTES = 256 * 1024


def stream_export(db: Database, fmt: ExportFormat, since: datetime | None) -> Iterator[bytes]:
    """The chain in seq order as JSONL or CSV bytes, read in batches inside one read transaction."""
    with db.session(readonly=True) as session:
        records = iter_records(session, since=since)
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
