"""Fencing of checkpoint commits: a run claims its stream's checkpoint, and only the latest claim commits.

The task engine decides who runs a stream and keeps it to one run at a time (Procrastinate's job
lock across workers, APScheduler's ``max_instances=1`` in one process). What no engine can promise
is that a run it gave up on — a worker that stopped heartbeating, then woke up — is really gone;
so each run claims the checkpoint with a token of its own, and every page commit compares that
token in the same transaction (`collectors.store.save_checkpoint`): a superseded run raises
`RunSuperseded` and its page is rolled back.
"""

from __future__ import annotations

import uuid

from sqlalchemy import update
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


def run_token(worker: str) -> str:
    """A token unique to one run: the worker's name and a nonce."""
    return f"{worker}:{uuid.uuid4().hex[:8]}"[:200]


def claim(db: Database, checkpoint_id: int, token: str) -> None:
    """Make `token` the only run that may commit this checkpoint (any earlier run is fenced off)."""
    with db.session() as session:
        session.execute(
            update(Checkpoint)
            .where(col(Checkpoint.id) == checkpoint_id)
            .values(run_token=token, last_run_at=utcnow())
        )


def release(db: Database, checkpoint_id: int, token: str) -> None:
    """Clear the claim after the run, unless a later run already holds it."""
    with db.session() as session:
        session.execute(
            update(Checkpoint)
            .where(col(Checkpoint.id) == checkpoint_id, col(Checkpoint.run_token) == token)
            .values(run_token=None)
        )
