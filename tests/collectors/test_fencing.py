"""Fencing of checkpoint commits: each run claims its stream's checkpoint, and a run that a later
claim superseded (a worker the engine gave up on, then woke up) can never commit a page."""

from __future__ import annotations

import pytest

from collectors.errors import RunSuperseded
from collectors.fencing import claim, claim_stream, ensure_checkpoint, finish_claim, release, run_token
from collectors.store import save_checkpoint
from core.db import Database
from core.models.connection import Checkpoint


def test_the_checkpoint_row_is_made_once(db: Database, make_connection) -> None:
    conn = make_connection()
    assert ensure_checkpoint(db, conn.id, "audit") == ensure_checkpoint(db, conn.id, "audit")


def test_the_latest_claim_commits_and_an_earlier_run_is_refused(db: Database, make_connection) -> None:
    conn = make_connection()
    cid = ensure_checkpoint(db, conn.id, "audit")
    first, second = run_token("host:1:a"), run_token("host:1:a")
    assert first != second
    claim(db, cid, first)
    with db.session() as s:
        save_checkpoint(s, checkpoint_id=cid, token=first, cursor={"high_water": "1"})
    # given a second run that claimed the stream (the engine presumed the first one dead)
    claim(db, cid, second)
    # when the first run tries to commit its next page, then nothing of that page is kept
    with pytest.raises(RunSuperseded), db.session() as s:
        save_checkpoint(s, checkpoint_id=cid, token=first, cursor={"high_water": "2"})
    with db.session(readonly=True) as s:
        assert s.get(Checkpoint, cid).cursor == {"high_water": "1"}
    with db.session() as s:
        save_checkpoint(s, checkpoint_id=cid, token=second, cursor={"high_water": "3"})
    with db.session(readonly=True) as s:
        assert s.get(Checkpoint, cid).cursor == {"high_water": "3"}


def test_release_leaves_a_later_claim_in_place(db: Database, make_connection) -> None:
    conn = make_connection()
    cid = ensure_checkpoint(db, conn.id, "audit")
    claim(db, cid, "old")
    claim(db, cid, "new")
    release(db, cid, "old")
    with db.session(readonly=True) as s:
        assert s.get(Checkpoint, cid).run_token == "new"
    release(db, cid, "new")
    with db.session(readonly=True) as s:
        assert s.get(Checkpoint, cid).run_token is None


def test_a_run_claims_in_one_statement_and_a_superseded_run_cannot_finish(
    db: Database, make_connection
) -> None:
    conn = make_connection()
    first, second = run_token("host:1:a"), run_token("host:1:a")
    with db.session() as s:
        cid, cursor = claim_stream(s, conn.id, "users", first)
    assert cursor == {} and cid == ensure_checkpoint(db, conn.id, "users")
    # given a later run that claimed the stream while the first was still reading
    with db.session() as s:
        assert claim_stream(s, conn.id, "users", second) == (cid, {})
    # when the first run finishes, then neither its marks nor its success are kept
    with pytest.raises(RunSuperseded), db.session() as s:
        finish_claim(s, cid, first, marks={"reconciled_at": "2026-01-01T00:00:00+00:00"})
    with db.session(readonly=True) as s:
        row = s.get(Checkpoint, cid)
        assert (row.cursor, row.run_token, row.last_success_at) == ({}, second, None)
    with db.session() as s:
        finish_claim(s, cid, second, marks={"reconciled_at": "2026-01-02T00:00:00+00:00"})
    with db.session(readonly=True) as s:
        row = s.get(Checkpoint, cid)
        assert row.cursor == {"reconciled_at": "2026-01-02T00:00:00+00:00"}
        assert row.run_token is None and row.last_success_at is not None
