"""One worker per (connection, stream): a lease held by a live worker is refused, an expired one or
one held by a dead process on this host is taken over, and a worker that lost its lease cannot commit."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import update

from collectors.errors import LeaseLost
from collectors.leases import ensure_checkpoint, release, try_acquire
from collectors.store import save_checkpoint
from core.clock import utcnow
from core.db import Database
from core.models.connection import Checkpoint


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_held_lease_is_refused_until_released(db: Database, make_connection) -> None:
    conn = make_connection()
    cid = ensure_checkpoint(db, conn.id, "audit")
    assert ensure_checkpoint(db, conn.id, "audit") == cid
    assert try_acquire(db, cid, "otherhost:1:a", 60)
    assert not try_acquire(db, cid, "otherhost:2:b", 60)
    release(db, cid, "otherhost:1:a")
    assert try_acquire(db, cid, "otherhost:2:b", 60)


def test_an_expired_lease_is_taken_over(db: Database, make_connection) -> None:
    conn = make_connection()
    cid = ensure_checkpoint(db, conn.id, "audit")
    assert try_acquire(db, cid, "otherhost:1:a", 60)
    with db.session() as s:
        s.execute(update(Checkpoint).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    assert try_acquire(db, cid, "otherhost:2:b", 60)


def test_a_lease_of_a_dead_process_on_this_host_is_taken_over_at_once(db: Database, make_connection) -> None:
    conn = make_connection()
    cid = ensure_checkpoint(db, conn.id, "audit")
    dead = f"{socket.gethostname()}:{_dead_pid()}:x"
    assert try_acquire(db, cid, dead, 600)
    assert try_acquire(db, cid, "otherhost:2:b", 60)


def test_a_worker_that_lost_its_lease_cannot_commit(db: Database, make_connection) -> None:
    conn = make_connection()
    cid = ensure_checkpoint(db, conn.id, "audit")
    assert try_acquire(db, cid, "otherhost:1:a", 60)
    with db.session() as s:
        s.execute(update(Checkpoint).values(lease_owner="otherhost:2:b"))
    with pytest.raises(LeaseLost), db.session() as s:
        save_checkpoint(
            s, checkpoint_id=cid, owner="otherhost:1:a", cursor={"high_water": "x"}, lease_seconds=60
        )
    with db.session(readonly=True) as s:
        assert s.get(Checkpoint, cid).cursor == {}
