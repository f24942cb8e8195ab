"""Several processes appending to one PostgreSQL chain at once still produce one unforked chain."""

from __future__ import annotations

import multiprocessing

import pytest

from core.audit import Actor, AuditAction, Channel, record, verify_database
from core.db import Database


def _appender(url: str, n: int, who: int) -> None:
    db = Database(url)
    for i in range(n):
        with db.session() as s:
            record(
                s,
                actor=Actor(f"process:{who}", Channel.CLI),
                action=AuditAction.INCIDENT_NOTE_ADDED,
                object_type="test",
                object_id=i,
            )
    db.dispose()


def test_processes_never_fork_the_chain(db: Database, database_url: str) -> None:
    if db.dialect != "postgresql":
        pytest.skip("several writer processes is a PostgreSQL deployment; SQLite is for one process")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_appender, args=(database_url, 20, k)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    with db.session(readonly=True) as s:
        result = verify_database(s)
    assert result.ok, result.reason
    assert result.records == 60
