"""Make the truncation checkpoints append-only too: a checkpoint row cannot be changed or removed
(UPDATE, DELETE, TRUNCATE on PostgreSQL, and SQLite's INSERT OR REPLACE over an existing one), so a
forged one — which verification names, since its ``audit.truncated`` record is not signed by the
installation's key — stays for the verifier to see.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION tenantguard_audit_checkpoint_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'auditcheckpoint is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""
_SQLITE = {
    "auditcheckpoint_no_update": "BEFORE UPDATE ON auditcheckpoint "
    "BEGIN SELECT RAISE(ABORT, 'auditcheckpoint is append-only: UPDATE refused'); END",
    "auditcheckpoint_no_delete": "BEFORE DELETE ON auditcheckpoint "
    "BEGIN SELECT RAISE(ABORT, 'auditcheckpoint is append-only: DELETE refused'); END",
    "auditcheckpoint_no_replace": "BEFORE INSERT ON auditcheckpoint "
    "WHEN EXISTS (SELECT 1 FROM auditcheckpoint WHERE up_to_seq = NEW.up_to_seq) "
    "BEGIN SELECT RAISE(ABORT, 'auditcheckpoint is append-only: an insert over an existing checkpoint is refused'); END",
}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER auditcheckpoint_append_only BEFORE UPDATE OR DELETE ON auditcheckpoint "
            "FOR EACH ROW EXECUTE FUNCTION tenantguard_audit_checkpoint_append_only()"
        )
        op.execute(
            "CREATE TRIGGER auditcheckpoint_no_truncate BEFORE TRUNCATE ON auditcheckpoint "
            "FOR EACH STATEMENT EXECUTE FUNCTION tenantguard_audit_checkpoint_append_only()"
        )
    else:
        for name, body in _SQLITE.items():
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
            op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS auditcheckpoint_append_only ON auditcheckpoint")
        op.execute("DROP TRIGGER IF EXISTS auditcheckpoint_no_truncate ON auditcheckpoint")
        op.execute("DROP FUNCTION IF EXISTS tenantguard_audit_checkpoint_append_only()")
    else:
        for name in _SQLITE:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
