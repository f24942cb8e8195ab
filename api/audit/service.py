"""Audit export and verification through core.audit (one exporter, one verifier for CLI and API)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path

from starlette.requests import Request

from api.audit.schemas import ExportFormat, VerifyOut
from api.errors import Unprocessable
from core.audit import VerifyResult, anchor_path, read_anchor, verify_database, verify_export
from core.audit import stream_export as core_stream_export
from core.audit_keys import TrustedKeys, load_signing_key, public_raw
from core.db import Database
from core.errors import AuditChainError


def stream_export(db: Database, fmt: ExportFormat, since: datetime | None) -> Iterator[bytes]:
    """The chain in seq order as JSONL or CSV bytes (core.audit's exporter), ending with the head
    signed with the installation's key, in one read transaction."""
    key = load_signing_key(db.settings.signing_key_path)
    with db.session(readonly=True) as session:
        yield from core_stream_export(session, fmt.value, since=since, key=key)


def _trusted(db: Database) -> TrustedKeys:
    return TrustedKeys.of([public_raw(load_signing_key(db.settings.signing_key_path))])


def _out(result: VerifyResult) -> VerifyOut:
    return VerifyOut(
        ok=result.ok,
        records=result.records,
        first_bad_seq=result.first_bad_seq,
        reason=result.reason,
        head_hash=result.head_hash,
        start_seq=result.start_seq,
        end_seq=result.end_seq,
        signed=result.signed,
        signed_by=list(result.signed_by),
        checkpoints=result.checkpoints,
        notes=list(result.notes),
    )


def verify_live(db: Database) -> VerifyOut:
    """The live chain against this installation's key and the checkpoint kept beside it."""
    local = anchor_path(db.settings.signing_key_path)
    anchors = [read_anchor(local)] if local.is_file() else []
    with db.session(readonly=True) as session:
        return _out(verify_database(session, trusted=_trusted(db), anchors=anchors))


async def spool_body(request: Request, directory: Path) -> Path:
    """Write the request body to a file (verification reads files; bodies may be large)."""
    path = directory / "upload"
    with path.open("wb") as handle:
        stream: AsyncIterator[bytes] = request.stream()
        async for chunk in stream:
            handle.write(chunk)
    return path


def verify_file(path: Path, db: Database | None = None) -> VerifyOut:
    """An uploaded export, against this installation's key (`db`'s settings; none: unpinned)."""
    if path.stat().st_size == 0:
        raise Unprocessable(
            "the body is empty; send an export made by /audit/export or `tenantguard audit export`"
        )
    try:
        return _out(verify_export(path, trusted=_trusted(db) if db is not None else None))
    except AuditChainError as exc:
        raise Unprocessable(str(exc).replace(str(path), "body"))
    except UnicodeDecodeError:
        raise Unprocessable("the body is neither a JSONL nor a CSV audit export (it is not UTF-8 text)")
