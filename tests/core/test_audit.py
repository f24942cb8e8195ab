"""The audit chain: appends link up, exports verify, and any tampering is named by sequence number."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from core.audit import (
    GENESIS_HASH,
    Actor,
    AuditAction,
    Channel,
    record,
    stream_export,
    verify_database,
    verify_export,
)
from core.audit_keys import load_signing_key
from core.db import Database
from core.models import AuditRecord


def _append(db: Database, n: int, actor: Actor = Actor("principal:alice", Channel.CLI)) -> None:
    for i in range(n):
        with db.session() as s:
            record(
                s,
                actor=actor,
                action=AuditAction.INCIDENT_NOTE_ADDED,
                object_type="incident",
                object_id=i,
                details={"i": i},
            )


def _export(db: Database, path: Path, fmt: str = "jsonl") -> Path:
    key = load_signing_key(path.parent / "signing.key")
    with db.session(readonly=True) as s:
        path.write_bytes(b"".join(stream_export(s, fmt, key=key)))
    return path


def test_appends_form_a_linked_chain_that_verifies(db: Database) -> None:
    _append(db, 5)
    with db.session(readonly=True) as s:
        rows = s.exec(select(AuditRecord).order_by(AuditRecord.seq)).all()
        result = verify_database(s)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == GENESIS_HASH
    assert all(rows[i].prev_hash == rows[i - 1].hash for i in range(1, 5))
    assert result.ok and result.records == 5 and result.head_hash == rows[-1].hash


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_untouched_export_verifies(db: Database, tmp_path: Path, fmt: str) -> None:
    _append(db, 4)
    result = verify_export(_export(db, tmp_path / f"audit.{fmt}", fmt))
    assert result.ok, result.reason
    assert result.records == 4


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_edited_record_is_named(db: Database, tmp_path: Path) -> None:
    _append(db, 6)
    path = _export(db, tmp_path / "audit.jsonl")
    records = _lines(path)
    records[3]["details"]["i"] = 99
    _write(path, records)
    result = verify_export(path)
    assert not result.ok and result.first_bad_seq == 4
    assert "altered" in result.reason


def test_deleted_record_is_named(db: Database, tmp_path: Path) -> None:
    _append(db, 6)
    path = _export(db, tmp_path / "audit.jsonl")
    records = _lines(path)
    del records[2]
    _write(path, records)
    result = verify_export(path)
    assert not result.ok and result.first_bad_seq == 3
    assert "missing" in result.reason


def test_swapped_records_are_named(db: Database, tmp_path: Path) -> None:
    _append(db, 6)
    path = _export(db, tmp_path / "audit.jsonl")
    records = _lines(path)
    records[2], records[3] = records[3], records[2]
    _write(path, records)
    result = verify_export(path)
    assert not result.ok and result.first_bad_seq == 3


def test_rehashed_edit_still_breaks_the_link(db: Database, tmp_path: Path) -> None:
    """Re-computing the edited record's own hash does not help: the next record no longer links."""
    from core.audit import compute_hash

    _append(db, 5)
    path = _export(db, tmp_path / "audit.jsonl")
    records = _lines(path)
    records[1]["actor"] = "principal:mallory"
    records[1]["hash"] = compute_hash(records[1])
    _write(path, records)
    result = verify_export(path)
    assert not result.ok and result.first_bad_seq == 3


def test_database_refuses_update_and_delete_of_audit_records(db: Database) -> None:
    _append(db, 2)
    with pytest.raises(DBAPIError), db.session() as s:
        s.exec(select(AuditRecord)).first()
        s.connection().exec_driver_sql("UPDATE auditrecord SET actor = 'x' WHERE seq = 1")
    with pytest.raises(DBAPIError), db.session() as s:
        s.connection().exec_driver_sql("DELETE FROM auditrecord WHERE seq = 2")
    with db.session(readonly=True) as s:
        assert verify_database(s).records == 2


def test_record_rolls_back_with_the_change_it_describes(db: Database) -> None:
    with pytest.raises(RuntimeError), db.session() as s:
        record(
            s,
            actor=Actor("system:test", Channel.CLI),
            action=AuditAction.AUDIT_EXPORTED,
            object_type="t",
            object_id=1,
        )
        raise RuntimeError("the change failed")
    with db.session(readonly=True) as s:
        assert s.exec(select(AuditRecord)).all() == []


def test_concurrent_appenders_never_fork_the_chain(db: Database) -> None:
    threads, per_thread = 4, 15
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            _append(db, per_thread, actor=Actor(f"thread:{n}", Channel.CLI))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors
    with db.session(readonly=True) as s:
        result = verify_database(s)
    assert result.ok, result.reason
    assert result.records == threads * per_thread


def test_many_records_in_one_append_chain_like_single_appends_and_verify(db: Database) -> None:
    from core.audit import AuditEntry, record_many

    # given a record appended alone, then many in one append, then one more alone
    actor = Actor("system:test", Channel.SCHEDULER)
    _append(db, 1)
    with db.session() as s:
        entries = [AuditEntry(actor, AuditAction.FINDING_CREATED, "finding", i, {"i": i}) for i in range(25)]
        assert record_many(s, entries) == 25
        record(s, actor=actor, action=AuditAction.FINDING_UPDATED, object_type="finding", object_id=3)
    # then there is one record per change, in order, linked, and the chain verifies
    with db.session(readonly=True) as s:
        rows = s.exec(select(AuditRecord).order_by(AuditRecord.seq)).all()
        result = verify_database(s)
    assert [r.seq for r in rows] == list(range(1, 28))
    assert [r.object_id for r in rows[1:26]] == [str(i) for i in range(25)]
    assert all(r.details["via"] == "scheduler" for r in rows[1:])
    assert all(rows[i].prev_hash == rows[i - 1].hash for i in range(1, len(rows)))
    assert result.ok and result.records == 27
