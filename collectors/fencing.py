"""Fencing of checkpoint commits: a run claims its stream's checkpoint, and only the latest claim commits.

The task engine decides who runs a stream and keeps it to one run at a time (Procrastinate's job
lock across workers, APScheduler's ``max_instances=1`` in one process). What no engine can promise
is that a run it gave up on — a worker that stopped heartbeating, then woke up — is really gone;
so each run claims the checkpoint with a token of its own, and every page commit compares that
token in the same transaction (`collectors.store.save_checkpoint`): a superseded run raises
`RunSuperseded` and its page is rolled back.

A run's own bookkeeping is two transactions around its pages: `claim_stream` (make the checkpoint
if need be, claim it, read its cursor) and, once the run succeeded, `finish_claim` (store the
run's marks and its success and clear the claim, all fenced on the token). `ensure_checkpoint`,
`claim` and `release` are the same steps one transaction each.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import update
from sqlmodel import Session, col, select

from collectors.errors import RunSuperseded
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


def claim_stream(session: Session, connection_id: int, stream: str, token: str) -> tuple[int, dict[str, Any]]:
    """In the caller's transaction: the stream's checkpoint claimed for `token` (any earlier run
    is fenced off from then on), made first if it is new; returns (checkpoint id, cursor).

    One ``UPDATE … RETURNING`` on both databases (an ``INSERT … ON CONFLICT DO NOTHING`` before
    it on a stream's first run only: ``ON CONFLICT DO UPDATE`` is compiled anew every time)."""
    now = utcnow()
    claiming = (
        update(Checkpoint)
        .where(col(Checkpoint.connection_id) == connection_id, col(Checkpoint.stream) == stream)
        .values(run_token=token, last_run_at=now)
        .returning(col(Checkpoint.id), col(Checkpoint.cursor))
    )
    row = session.execute(claiming).first()
    if row is None:
        session.execute(
            dialect_insert(session, Checkpoint)
            .values(connection_id=connection_id, stream=stream, cursor={}, health="unknown", updated_at=now)
            .on_conflict_do_nothing(index_elements=["connection_id", "stream"])
        )
        row = session.execute(claiming).one()
    return int(row[0]), dict(row[1] or {})


def finish_claim(
    session: Session, checkpoint_id: int, token: str, *, marks: Mapping[str, Any] | None = None
) -> None:
    """In the caller's transaction, for a run that succeeded: merge `marks` into the cursor, note
    the success and clear the claim — only while `token` is still the latest claim, else
    `RunSuperseded` (and the caller's transaction must roll back)."""
    now = utcnow()
    values: dict[str, Any] = {"run_token": None, "last_success_at": now}
    if marks:
        cursor = dict(
            session.exec(select(Checkpoint.cursor).where(Checkpoint.id == checkpoint_id)).one() or {}
        )
        if any(cursor.get(k) != v for k, v in marks.items()):
            values["cursor"] = orjson.loads(orjson.dumps({**cursor, **marks}, default=str))
            values["updated_at"] = now
    result = session.execute(
        update(Checkpoint)
        .where(col(Checkpoint.id) == checkpoint_id, col(Checkpoint.run_token) == token)
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise RunSuperseded(f"checkpoint {checkpoint_id}: a later run claimed this stream; not committing")
