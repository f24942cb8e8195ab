"""SQLite: refuse INSERT OR REPLACE (and REPLACE INTO) over an audit record. Its conflict resolution
deletes the conflicting row without firing DELETE triggers (unless recursive_triggers is on, which
a tamperer would not set), so the append-only triggers never saw it. An insert whose seq, hash or
prev_hash is already in the chain is refused before it runs. PostgreSQL's ON CONFLICT DO UPDATE
fires the UPDATE trigger and is refused already.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_SQLITE_NO_REPLACE = (
    "CREATE TRIGGER auditrecord_no_replace BEFORE INSERT ON auditrecord "
    "WHEN EXISTS (SELECT 1 FROM auditrecord WHERE seq = NEW.seq OR hash = NEW.hash OR prev_hash = NEW.prev_hash) "
    "BEGIN SELECT RAISE(ABORT, 'auditrecord is append-only: an insert over an existing record is refused'); END"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS auditrecord_no_replace")
        op.execute(_SQLITE_NO_REPLACE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS auditrecord_no_replace")
