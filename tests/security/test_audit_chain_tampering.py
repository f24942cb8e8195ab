"""Issue 21, audit chain: SQLite's triggers refused UPDATE and DELETE but not INSERT OR REPLACE,
which deletes the conflicting row without firing DELETE triggers and writes a new one in its place
(PostgreSQL's ON CONFLICT DO UPDATE fires the UPDATE trigger and is refused too)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from core.audit import (
    GENESIS_HASH,
    Actor,
    AuditAction,
    Channel,
    VerifyResult,
    anchor_path,
    as_export_dict,
    checkpoint_statement,
    compute_hash,
    iter_records,
    read_anchor,
    record,
    stream_export,
    truncate_chain,
    verify_database,
    verify_export,
    verify_records,
)
from core.audit_keys import TrustedKeys, load_signing_key, public_raw, sign_statement
from core.clock import parse_time, utcnow
from core.db import Database
from core.models import AuditCheckpoint, AuditRecord
from core.settings import Settings
from pipeline.stages import StageContext, audit_checkpoint_stage


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
    with pytest.raises(DBAPIError), db.session() as session:
        session.connection().execute(text(replace), columns)
    assert _rows(db) == before
    with db.session(readonly=True) as session:
        assert verify_database(session).records == 3


# ---------------------------------------------------------------------------------------------------
# The rest of the review's audit-chain attacks (issue 21): cutting an export at either end, cutting
# records off the end of the table, rewriting the whole chain consistently, and forging a retention
# checkpoint. Before the signed head and checkpoints, each of these verified.

ALICE = Actor("principal:alice", Channel.CLI)


@contextmanager
def _triggers_off(db: Database, table: str) -> Iterator[None]:
    """What an attacker with the database's owner (or the SQLite file) does first."""
    if db.is_sqlite:
        with db.session() as session:
            triggers = (
                session.connection()
                .execute(
                    text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
                    {"t": table},
                )
                .all()
            )
            for name, _ in triggers:
                session.connection().exec_driver_sql(f"DROP TRIGGER {name}")
        yield
        with db.session() as session:
            for _, sql in triggers:
                session.connection().exec_driver_sql(sql)
        return
    with db.session() as session:
        session.connection().exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    yield
    with db.session() as session:
        session.connection().exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def _key(settings: Settings) -> Ed25519PrivateKey:
    return load_signing_key(settings.signing_key_path)


def _checkpoint(db: Database, settings: Settings, hours: int) -> None:
    """The cycle's stage, as serve runs it (`hours` after now, so each run is due)."""
    result = audit_checkpoint_stage(
        db, settings, Actor.system("scheduler"), StageContext(now=utcnow() + timedelta(hours=hours))
    )
    assert result.counts == {"checkpoints": 1}, result


def _verify_live(db: Database, settings: Settings) -> VerifyResult:
    """As `tenantguard audit verify --database` does: the installation's key, the copy beside it."""
    anchor = anchor_path(settings.signing_key_path)
    with db.session(readonly=True) as session:
        return verify_database(
            session,
            trusted=TrustedKeys.of([public_raw(_key(settings))]),
            anchors=[read_anchor(anchor)] if anchor.exists() else [],
        )


def _export(db: Database, settings: Settings, path: Path, fmt: str = "jsonl") -> Path:
    with db.session(readonly=True) as session:
        path.write_bytes(b"".join(stream_export(session, fmt, key=_key(settings))))
    return path


def _pinned(settings: Settings) -> TrustedKeys:
    return TrustedKeys.of([public_raw(_key(settings))])


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_dropping_the_first_lines_of_an_export_is_named(
    db: Database, settings: Settings, tmp_path: Path, fmt: str
) -> None:
    _append(db, 60)
    path = _export(db, settings, tmp_path / f"audit.{fmt}", fmt)
    assert verify_export(path, trusted=_pinned(settings)).ok
    lines = path.read_bytes().splitlines(keepends=True)
    header = lines[:1] if fmt == "csv" else []
    body = lines[len(header) :]
    cut = tmp_path / f"cut.{fmt}"
    cut.write_bytes(b"".join(header + body[50:]))
    result = verify_export(cut, trusted=_pinned(settings))
    assert not result.ok and result.first_bad_seq == 1
    assert "records 1..50 are missing from the start" in result.reason


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_dropping_the_last_lines_of_an_export_is_named(
    db: Database, settings: Settings, tmp_path: Path, fmt: str
) -> None:
    _append(db, 30)
    path = _export(db, settings, tmp_path / f"audit.{fmt}", fmt)
    lines = path.read_bytes().splitlines(keepends=True)
    # the last 10 lines (the signed head with them)
    (tmp_path / "tail.x").write_bytes(b"".join(lines[:-10]))
    result = verify_export(tmp_path / "tail.x", trusted=_pinned(settings))
    assert not result.ok and "no signed head at its end" in result.reason
    # the last 10 records, keeping the signed head
    (tmp_path / "records.x").write_bytes(b"".join(lines[:-11] + lines[-1:]))
    result = verify_export(tmp_path / "records.x", trusted=_pinned(settings))
    assert not result.ok and result.first_bad_seq == 21
    assert "records 21..30 are missing from the end" in result.reason


def test_an_altered_signed_head_fails(db: Database, settings: Settings, tmp_path: Path) -> None:
    _append(db, 5)
    path = _export(db, settings, tmp_path / "audit.jsonl")
    *records, head = path.read_bytes().splitlines(keepends=True)
    forged = orjson.loads(head)
    forged["signed_head"]["end_seq"] = 4
    path.write_bytes(b"".join(records[:-1]) + orjson.dumps(forged) + b"\n")
    result = verify_export(path, trusted=_pinned(settings))
    assert (
        not result.ok and "signed head is not valid" in result.reason and "forged or altered" in result.reason
    )


def test_records_cut_off_the_end_of_the_table_are_named(db: Database, settings: Settings) -> None:
    _append(db, 20)
    _checkpoint(db, settings, hours=1)  # serve signs the head (seq 20) and keeps a copy beside its key
    _append(db, 5)
    assert _verify_live(db, settings).ok
    with _triggers_off(db, "auditrecord"), db.session() as session:
        session.connection().exec_driver_sql("DELETE FROM auditrecord WHERE seq > 15")
    result = _verify_live(db, settings)
    assert not result.ok and result.first_bad_seq == 16
    assert "records 16..20 were cut off the end" in result.reason


def test_a_consistent_rewrite_of_the_whole_chain_without_the_key_fails(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    _append(db, 10)
    _checkpoint(db, settings, hours=1)
    _append(db, 10)
    _checkpoint(db, settings, hours=2)
    honest = _export(db, settings, tmp_path / "honest.jsonl")
    # mallory rewrites every record (actor changed), re-links and re-hashes them all, and signs
    # checkpoints and the export with a key of her own
    mallory = Ed25519PrivateKey.generate()
    with db.session(readonly=True) as session:
        rows = [as_export_dict(r) for r in iter_records(session)]
    prev = GENESIS_HASH
    for row in rows:
        row["actor"] = row["actor"].replace("alice", "mallory")
        row["prev_hash"] = prev
        if row["action"] == AuditAction.AUDIT_CHECKPOINTED:
            statement = checkpoint_statement(row["seq"] - 1, prev, row["details"]["at"])
            row["details"] = {**row["details"], "hash": prev, **sign_statement(mallory, statement)}
        row["hash"] = compute_hash(row)
        prev = row["hash"]
    assert verify_records(rows).ok  # consistent: unpinned, her chain links and her signatures verify
    with _triggers_off(db, "auditrecord"), db.session() as session:
        session.connection().exec_driver_sql("DELETE FROM auditrecord")
        table = AuditRecord.__table__
        session.connection().execute(table.insert(), [{**r, "at": parse_time(r["at"])} for r in rows])
    # the live chain fails: her checkpoints are not signed by the installation's key ...
    result = _verify_live(db, settings)
    assert not result.ok and "not a trusted key" in result.reason
    # ... and with her checkpoints dropped too, the copy kept beside the key no longer matches
    with _triggers_off(db, "auditrecord"), db.session() as session:
        session.connection().exec_driver_sql("DELETE FROM auditrecord WHERE action = 'audit.checkpointed'")
        session.connection().exec_driver_sql("DELETE FROM auditrecord")
        plain = [r for r in rows if r["action"] != AuditAction.AUDIT_CHECKPOINTED]
        prev = GENESIS_HASH
        for seq, row in enumerate(plain, start=1):
            row.update(seq=seq, prev_hash=prev)
            row["hash"] = compute_hash(row)
            prev = row["hash"]
        session.connection().execute(table.insert(), [{**r, "at": parse_time(r["at"])} for r in plain])
    _append(db, 5)  # the service goes on appending to her chain
    result = _verify_live(db, settings)
    assert not result.ok and "differs from the checkpoint anchored outside the database" in result.reason
    # an export of her chain signed with her key fails against the published key
    with db.session(readonly=True) as session:
        (tmp_path / "forged.jsonl").write_bytes(b"".join(stream_export(session, "jsonl", key=mallory)))
    result = verify_export(tmp_path / "forged.jsonl", trusted=_pinned(settings))
    assert not result.ok and "not a trusted key" in result.reason
    # while the export made before the rewrite still verifies, and an auditor's anchor proves the rewrite
    anchor = read_anchor(anchor_path(settings.signing_key_path))
    assert verify_export(honest, trusted=_pinned(settings), anchors=[anchor]).ok
    result = verify_export(tmp_path / "forged.jsonl", trusted=TrustedKeys(), anchors=[anchor])
    assert not result.ok


def test_a_forged_truncation_checkpoint_fails(db: Database, settings: Settings) -> None:
    """The delete trigger lets records at or below a checkpoint go: an attacker who adds a checkpoint
    row (and its audit.truncated record, hashed and linked properly) can delete the oldest records."""
    _append(db, 12)
    with db.session() as session:
        anchor = session.get(AuditRecord, 8).hash
        rec = record(
            session,
            actor=Actor.system("retention"),
            action=AuditAction.AUDIT_TRUNCATED,
            object_type="audit",
            object_id=8,
            details={"up_to_seq": 8, "anchor_hash": anchor, "records_deleted": 8},
        )
        session.add(
            AuditCheckpoint(up_to_seq=8, anchor_hash=anchor, record_seq=rec.seq, records_deleted=8, at=rec.at)
        )
        session.flush()
        session.connection().exec_driver_sql("DELETE FROM auditrecord WHERE seq <= 8")
    result = _verify_live(db, settings)
    assert not result.ok and result.first_bad_seq == 13
    assert "retention truncation up to seq 8 is not valid: it is not signed" in result.reason
    # the forged row cannot be taken back either: checkpoints are append-only
    with pytest.raises(DBAPIError), db.session() as session:
        session.connection().exec_driver_sql("DELETE FROM auditcheckpoint")


def test_a_truncation_signed_with_another_key_fails_and_retention_s_own_verifies(
    db: Database, settings: Settings
) -> None:
    _append(db, 6)
    with db.session() as session:
        assert (
            truncate_chain(
                session, up_to_seq=3, actor=Actor.system("retention"), details={}, key=_key(settings)
            )
            == 3
        )
    assert _verify_live(db, settings).ok
    with db.session() as session:
        truncate_chain(
            session,
            up_to_seq=5,
            actor=Actor.system("retention"),
            details={},
            key=Ed25519PrivateKey.generate(),
        )
    result = _verify_live(db, settings)
    assert not result.ok and "retention truncation up to seq 5 is not valid" in result.reason
    assert "not a trusted key" in result.reason


def test_an_altered_checkpoint_record_fails(db: Database, settings: Settings) -> None:
    _append(db, 4)
    _checkpoint(db, settings, hours=1)
    with db.session(readonly=True) as session:
        rows = [as_export_dict(r) for r in iter_records(session)]
    rows[-1]["details"]["seq"] = 3  # claims a different head; re-hashed so only the signature can tell
    rows[-1]["hash"] = compute_hash(rows[-1])
    result = verify_records(rows, _pinned(settings))
    assert not result.ok and result.first_bad_seq == 5 and "forged or altered" in result.reason
