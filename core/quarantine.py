"""Input we could not use, kept verbatim with the reason (`QuarantinedRecord`): a malformed page,
an event no normaliser can read, an event a detector cannot score. Nothing is silently dropped."""

from __future__ import annotations

from typing import Any

import orjson
from sqlmodel import Session

from core.models import QuarantinedRecord

_QUARANTINE_RAW_LIMIT = 1_000_000


def quarantine(
    session: Session,
    *,
    connection_id: int | None,
    provider: str | None,
    stream: str | None,
    source: str,
    reason: str,
    raw: Any,
) -> QuarantinedRecord:
    """Keep unusable input verbatim (as text) with the reason, so nothing is silently dropped."""
    if isinstance(raw, bytes):
        body = raw.decode("utf-8", "replace")
    elif isinstance(raw, str):
        body = raw
    else:
        body = orjson.dumps(raw, default=str).decode()
    record = QuarantinedRecord(
        connection_id=connection_id,
        provider=provider,
        stream=stream,
        source=source[:1000],
        reason=reason,
        raw=body[:_QUARANTINE_RAW_LIMIT],
    )
    session.add(record)
    session.flush()
    return record
