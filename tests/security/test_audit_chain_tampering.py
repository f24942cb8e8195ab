"""Issue 21, audit chain: SQLite's triggers refused UPDATE and DELETE but not INSERT OR REPLACE,
which deletes the conflicting row without firing DELETE triggers and writes a new one in its place
(PostgreSQL's ON CONFLICT DO UPDATE fires the UPDATE trigger and is refused too)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from core.audit import Actor, AuditAction, Channel, record, verify_database
from core.db import Database
from core.models import AuditRecord


def _append(db: Database, n: int) -> None:
    for i in range(n):
        with db.session() as session:
            record(
                session,
                actor=Actor("principal:alice", Channel.CLI),
                action=AuditAction.CONNECTION_CREATED,
                object_type="connection",
                object_id=str(i),
                details={"n": i},
            )


def _rows(db: Database) -> list[tuple[int, str, str]]:
    with db.session(readonly=True) as session:
        return [(r.seq, r.actor, r.hash) for r in session.exec(select(AuditRecord).order_by(AuditRecord.seq))]


def test_a_record_cannot_be_replaced_in_place(db: Database) -> None:
    _append(db, 3)
    before = _rows(db)
    with db.session(readonly=True) as session:
        second = session.exec(select(AuditRecord).where(AuditRecord.seq == 2)).one()
        columns = {
            "seq": second.seq,
            "at": second.at,
            "prev_hash": second.prev_hash,
            "hash": second.hash,
        }
    replace = (
        "INSERT OR REPLACE INTO auditrecord (seq, at, actor, action, object_type, object_id, details, prev_hash, hash) "
        "VALUES (:seq, :at, 'principal:mallory', 'connection.created', 'connection', '1', '{}', :prev_hash, :hash)"
        if db.is_sqlite
        else "INSERT INTO auditrecord (seq, at, actor, action, object_type, object_id, details, prev_hash, hash) "
        "VALUES (:seq, :at, 'principal:mallory', 'connection.created', 'connection', '1', '{}', :prev_hash, :hash) "
        "ON CONFLICT (seq) DO UPDATE SET actor = EXCLUDED.actor"
    )
    from sqlalchemy import text

    with pytest.raises(DBAPIError), db.session() as session:
        session.connection().execute(text(replace), columns)
    assert _rows(db) == before
    with db.session(readonly=True) as session:
        assert verify_database(session).records == 3
