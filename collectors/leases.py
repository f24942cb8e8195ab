"""One worker at a time per (connection, stream): a lease row with an expiry, on any database.

A worker takes the lease when it is free, expired, or held by a process on this host that no
longer exists (so a restarted worker resumes at once after a crash); it renews the lease while
it runs (a keeper thread, plus every page commit), and every page commit is fenced on still
holding it (`collectors.store.save_checkpoint`), so a worker that lost its lease can never
commit. Workers on other hosts wait for the expiry.
"""

from __future__ import annotations

import os
import socket
import threading
from datetime import timedelta
from pathlib import Path

from sqlalchemy import or_, update
from sqlmodel import col, select

from collectors.store import dialect_insert
from core.clock import utcnow
from core.db import Database
from core.models.connection import Checkpoint


def ensure_checkpoint(db: Database, connection_id: int, stream: str) -> int:
    """The checkpoint row's id, created (race-free) on first use."""
    with db.session() as session:
        session.execute(
            dialect_insert(session, Checkpoint)
            .values(
                connection_id=connection_id, stream=stream, cursor={}, health="unknown", updated_at=utcnow()
            )
            .on_conflict_do_nothing(index_elements=["connection_id", "stream"])
        )
        row = session.exec(
            select(Checkpoint.id).where(
                Checkpoint.connection_id == connection_id, Checkpoint.stream == stream
            )
        ).one()
    assert row is not None
    return int(row)


def holder_is_gone(owner: str | None) -> bool:
    """True when `owner` (host:pid:nonce) names a process on this host that no longer runs."""
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a killed child not yet reaped by its parent is a zombie: gone for our purposes
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")


def try_acquire(db: Database, checkpoint_id: int, owner: str, lease_seconds: float) -> bool:
    """Take the lease if nobody live holds it; True when `owner` now holds it."""
    now = utcnow()
    expires = now + timedelta(seconds=lease_seconds)
    with db.session() as session:
        result = session.execute(
            update(Checkpoint)
            .where(
                col(Checkpoint.id) == checkpoint_id,
                or_(
                    col(Checkpoint.lease_owner).is_(None),
                    col(Checkpoint.lease_expires_at) < now,
                    col(Checkpoint.lease_owner) == owner,
                ),
            )
            .values(lease_owner=owner, lease_expires_at=expires, last_run_at=now)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            return True
        holder = session.exec(select(Checkpoint.lease_owner).where(Checkpoint.id == checkpoint_id)).one()
        if not holder_is_gone(holder):
            return False
        result = session.execute(
            update(Checkpoint)
            .where(col(Checkpoint.id) == checkpoint_id, col(Checkpoint.lease_owner) == holder)
            .values(lease_owner=owner, lease_expires_at=expires, last_run_at=now)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]


def renew(db: Database, checkpoint_id: int, owner: str, lease_seconds: float) -> bool:
    with db.session() as session:
        result = session.execute(
            update(Checkpoint)
            .where(col(Checkpoint.id) == checkpoint_id, col(Checkpoint.lease_owner) == owner)
            .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
        )
        return result.rowcount == 1  # type: ignore[attr-defined]


def release(db: Database, checkpoint_id: int, owner: str) -> None:
    with db.session() as session:
        session.execute(
            update(Checkpoint)
            .where(col(Checkpoint.id) == checkpoint_id, col(Checkpoint.lease_owner) == owner)
            .values(lease_owner=None, lease_expires_at=None)
        )


class LeaseKeeper:
    """Renews a lease in the background while a run waits on a slow or throttled provider."""

    def __init__(self, db: Database, checkpoint_id: int, owner: str, lease_seconds: float) -> None:
        self.db = db
        self.checkpoint_id = checkpoint_id
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lease-{checkpoint_id}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.lease_seconds)

    def _loop(self) -> None:
        interval = max(self.lease_seconds / 3, 0.2)
        while not self._stop.wait(interval):
            try:
                if not renew(self.db, self.checkpoint_id, self.owner, self.lease_seconds):
                    self.lost.set()
                    return
            except Exception:  # a blip in the database: the page fence still protects us
                continue
