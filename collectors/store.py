"""Writes the collectors make, each inside the caller's transaction.

Events and messages are inserted with ON CONFLICT DO NOTHING on the provider's own id, so a page
read twice (after a crash, or through the overlap window) changes nothing. Events go in as one
batch per page through the driver, without an ORM object or a compiled statement per row: SQLite
``executemany`` of one prepared INSERT, PostgreSQL ``COPY`` into a temporary table and one
``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` from it — inside the caller's transaction, so the
page and its checkpoint still commit together. The checkpoint is
saved in the same transaction, fenced on the run's claim (`collectors.fencing`): if a later run
claimed the stream, the update matches no row and the whole transaction (events included) is
rolled back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from collectors.errors import RunSuperseded
from core.clock import utcnow
from core.models import ConfigSnapshot, Event, Message
from core.models.connection import Checkpoint, CollectionRun
from core.normalise import NormalisedEvent, NormalisedMessage
from core.redaction import RedactionPolicy, redact

_BATCH = 500
EVENT_COLUMNS = (
    "connection_id",
    "provider",
    "stream",
    "provider_event_id",
    "occurred_at",
    "ingested_at",
    "actor",
    "action",
    "target",
    "ip",
    "country",
    "outcome",
    "raw",
)
EVENT_KEY = ("connection_id", "stream", "provider_event_id")
_EVENT_STAGING = "tg_event_in"
_processors: dict[str, list[Any]] = {}


def dialect_insert(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def _json_safe(value: Any) -> Any:
    """What the JSON column will hand back (datetimes and the like become text)."""
    return orjson.loads(orjson.dumps(value, default=str))


def insert_events(
    session: Session,
    *,
    connection_id: int | None,
    provider: str,
    stream: str,
    events: Iterable[NormalisedEvent],
) -> int:
    """Store events not seen before; returns how many were new."""
    unique: dict[str, NormalisedEvent] = {}
    for event in events:
        unique.setdefault(event.provider_event_id, event)
    if not unique:
        return 0
    now = utcnow()
    rows = [
        (
            connection_id,
            provider,
            stream,
            e.provider_event_id[:500],
            e.occurred_at,
            now,
            e.actor,
            e.action,
            e.target,
            e.ip,
            e.country,
            e.outcome,
            e.raw,
        )
        for e in unique.values()
    ]
    connection = session.connection()
    dialect = connection.dialect
    rows = _bound(dialect, rows)
    driver = connection.connection.driver_connection
    if dialect.name == "sqlite":
        return _sqlite_insert_events(driver, rows)
    if dialect.name == "postgresql":
        return _postgres_copy_events(driver, rows)
    return _insert_new(session, Event, [dict(zip(EVENT_COLUMNS, r, strict=True)) for r in rows], EVENT_KEY)


def _bound(dialect: Any, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The rows as the driver takes them: each column's own bind processing (the raw record
    packed by `PackedJSON`, datetimes as `UTCDateTime` stores them), done once per value."""
    processors = _processors.get(dialect.name)
    if processors is None:
        columns = Event.__table__.c  # type: ignore[attr-defined]
        processors = [columns[name].type.bind_processor(dialect) for name in EVENT_COLUMNS]
        _processors[dialect.name] = processors
    active = [(i, p) for i, p in enumerate(processors) if p is not None]
    out = []
    for row in rows:
        values = list(row)
        for i, process in active:
            values[i] = process(values[i])
        out.append(tuple(values))
    return out


def _sqlite_insert_events(driver: Any, rows: list[tuple[Any, ...]]) -> int:
    """One executemany; the rows a conflict skipped change nothing, so rowcount = new rows."""
    sql = (
        f"INSERT INTO event ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))}) "
        f"ON CONFLICT ({', '.join(EVENT_KEY)}) DO NOTHING"
    )
    cursor = driver.cursor()
    try:
        cursor.executemany(sql, rows)
        return int(cursor.rowcount)
    finally:
        cursor.close()


def _postgres_copy_events(driver: Any, rows: list[tuple[Any, ...]]) -> int:
    """COPY into a per-session temporary table (emptied at commit), then one INSERT ... SELECT
    that skips ids already stored; its rowcount is the number of new rows."""
    columns = ", ".join(EVENT_COLUMNS)
    with driver.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_EVENT_STAGING} ON COMMIT DELETE ROWS AS "
            f"SELECT {columns} FROM event WITH NO DATA"
        )
        with cursor.copy(f"COPY {_EVENT_STAGING} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO event ({columns}) SELECT {columns} FROM {_EVENT_STAGING} "
            f"ON CONFLICT ({', '.join(EVENT_KEY)}) DO NOTHING"
        )
        new = int(cursor.rowcount)
        cursor.execute(f"DELETE FROM {_EVENT_STAGING}")
    return new


def _insert_new(session: Session, model: Any, rows: list[dict[str, Any]], key: tuple[str, ...]) -> int:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id, as an executemany of one cached statement
    (SQLAlchemy batches it into multi-row INSERTs), so the count of new rows is exact and cheap."""
    if not rows:
        return 0
    table = model.__table__
    statement = (
        dialect_insert(session, table).on_conflict_do_nothing(index_elements=list(key)).returning(table.c.id)
    )
    connection = session.connection()
    new = 0
    for start in range(0, len(rows), _BATCH):
        new += len(connection.execute(statement, rows[start : start + _BATCH]).all())
    return new


def insert_messages(
    session: Session,
    *,
    connection_id: int | None,
    provider: str,
    stream: str,
    messages: Iterable[NormalisedMessage],
    redaction: Mapping[str, Any] | None = None,
) -> int:
    """Redact, then store messages not seen before; the clear text never leaves this function."""
    policy = RedactionPolicy.from_config(redaction) if redaction else None
    unique: dict[str, NormalisedMessage] = {}
    for message in messages:
        unique.setdefault(message.provider_message_id, message)
    rows = []
    for m in unique.values():
        body = redact(m.text, policy)
        counts = dict(body.counts)
        subject = None
        if m.subject:
            redacted_subject = redact(m.subject, policy)
            subject = redacted_subject.text[:1000]
            for kind, n in redacted_subject.counts.items():
                counts[kind] = counts.get(kind, 0) + n
        rows.append(
            {
                "connection_id": connection_id,
                "provider": provider,
                "stream": stream,
                "provider_message_id": m.provider_message_id[:500],
                "channel": m.channel,
                "thread_id": m.thread_id,
                "author": m.author,
                "sent_at": m.sent_at,
                "subject": subject,
                "text_redacted": body.text,
                "redactions": counts,
                "meta": _json_safe(m.meta),
            }
        )
    return _insert_new(session, Message, rows, ("connection_id", "stream", "provider_message_id"))


# ---- configuration snapshots --------------------------------------------------------------------


def content_hash(data: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()


@dataclass(frozen=True)
class SnapshotChanges:
    """What one read of an object type changed."""

    added: int = 0
    changed: int = 0
    deleted: int = 0
    unchanged: int = 0

    @property
    def rows_written(self) -> int:
        return self.added + self.changed + self.deleted


def latest_snapshots(
    session: Session, connection_id: int, object_type: str, object_ids: Iterable[str] | None = None
) -> dict[str, ConfigSnapshot]:
    """The newest row of each object of one type (deleted ones included), or of the ones named."""
    where = [ConfigSnapshot.connection_id == connection_id, ConfigSnapshot.object_type == object_type]
    if object_ids is None:
        chunks: list[list[str] | None] = [None]
    else:
        ids = sorted({str(i)[:500] for i in object_ids})
        chunks = [ids[start : start + _BATCH] for start in range(0, len(ids), _BATCH)]
    found: dict[str, ConfigSnapshot] = {}
    for chunk in chunks:
        newest = select(func.max(ConfigSnapshot.id)).where(*where)
        if chunk is not None:
            newest = newest.where(col(ConfigSnapshot.object_id).in_(chunk))
        rows = session.exec(
            select(ConfigSnapshot).where(
                col(ConfigSnapshot.id).in_(newest.group_by(ConfigSnapshot.object_id))
            )
        ).all()
        found.update((row.object_id, row) for row in rows)
    return found


def store_snapshots(
    session: Session,
    *,
    connection_id: int,
    provider: str,
    object_type: str,
    objects: Mapping[str, Mapping[str, Any]],
    collected_at: datetime | None = None,
    partial: bool = False,
    removed: Iterable[str] = (),
    covers_field: str | None = None,
    covers: frozenset[str] = frozenset(),
    merge: bool = False,
) -> SnapshotChanges:
    """Compare a read of `object_type` with the newest stored state.

    A new row only when an object's content changed (or it is new); an object that was there
    before and is gone now gets a `deleted` row carrying its last known data. A complete read
    says what is gone by leaving it out; a `partial` one (see `Page`) by `removed` ids and by the
    `covers` subjects it re-read in full. `merge` lays each object over its stored data.
    """
    at = collected_at or utcnow()
    gone = {str(i) for i in removed}
    if partial and covers_field is None:
        previous = latest_snapshots(session, connection_id, object_type, [*objects, *gone])
    else:
        previous = latest_snapshots(session, connection_id, object_type)
    if partial:
        gone |= {
            object_id
            for object_id, before in previous.items()
            if covers_field is not None
            and object_id not in objects
            and str((before.data or {}).get(covers_field, "")).lower() in covers
        }
    else:
        gone = {object_id for object_id in previous if object_id not in objects}
    added = changed = deleted = unchanged = 0
    for object_id, data in objects.items():
        before = previous.get(object_id)
        if merge and before is not None and not before.deleted:
            data = {**(before.data or {}), **{k: v for k, v in data.items() if not k.startswith("@")}}
        safe = _json_safe(dict(data))
        digest = content_hash(safe)
        if before is not None and not before.deleted and before.content_hash == digest:
            unchanged += 1
            continue
        if before is None or before.deleted:
            added += 1
        else:
            changed += 1
        session.add(
            ConfigSnapshot(
                connection_id=connection_id,
                provider=provider,
                object_type=object_type,
                object_id=str(object_id)[:500],
                content_hash=digest,
                data=safe,
                collected_at=at,
            )
        )
    for object_id in sorted(gone):
        before = previous.get(object_id)
        if before is None or before.deleted:
            continue
        deleted += 1
        session.add(
            ConfigSnapshot(
                connection_id=connection_id,
                provider=provider,
                object_type=object_type,
                object_id=object_id,
                content_hash=before.content_hash,
                data=before.data,
                collected_at=at,
                deleted=True,
            )
        )
    session.flush()
    return SnapshotChanges(added=added, changed=changed, deleted=deleted, unchanged=unchanged)


# ---- quarantine ---------------------------------------------------------------------------------


# ---- checkpoints and runs -----------------------------------------------------------------------


def save_checkpoint(
    session: Session,
    *,
    checkpoint_id: int,
    token: str,
    cursor: Mapping[str, Any],
    success: bool = False,
) -> None:
    """Move the checkpoint — only while the run's `token` is still the latest claim
    (`collectors.fencing`); otherwise the whole transaction must roll back."""
    now = utcnow()
    values: dict[str, Any] = {"cursor": _json_safe(dict(cursor)), "updated_at": now}
    if success:
        values["last_success_at"] = now
    result = session.execute(
        update(Checkpoint)
        .where(col(Checkpoint.id) == checkpoint_id, col(Checkpoint.run_token) == token)
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise RunSuperseded(f"checkpoint {checkpoint_id}: a later run claimed this stream; not committing")


def touch_run(session: Session, run_id: int, *, pages: int, read: int, new: int) -> None:
    session.execute(
        update(CollectionRun)
        .where(col(CollectionRun.id) == run_id)
        .values(
            heartbeat_at=utcnow(),
            pages=CollectionRun.pages + pages,
            records_read=CollectionRun.records_read + read,
            records_new=CollectionRun.records_new + new,
        )
    )


def prune_runs(session: Session, *, keep_days: float) -> int:
    """Forget finished runs older than `keep_days` (the history is for operators, not evidence)."""
    from sqlalchemy import delete

    cutoff = utcnow() - timedelta(days=keep_days)
    result = session.execute(
        delete(CollectionRun).where(
            col(CollectionRun.finished_at).is_not(None), col(CollectionRun.started_at) < cutoff
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
