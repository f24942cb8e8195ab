"""What a leak check searches: every value of every table, read straight from the database."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import SQLModel

from core.db import Database

# Typed into free-text fields by the tests; none of it may be stored in clear.
SECRET = "xoxb-1234567890-abcdefghijkl"
PHONE = "+44 20 7946 0958"


def stored_text(db: Database) -> str:
    with db.session(readonly=True) as session:
        return "\n".join(
            repr(tuple(row))
            for table in SQLModel.metadata.sorted_tables
            for row in session.execute(select(table)).all()
        )


def assert_stored_redacted(db: Database) -> None:
    stored = stored_text(db)
    assert SECRET not in stored and "7946 0958" not in stored
    assert "[REDACTED:secret]" in stored or "[REDACTED:phone]" in stored
