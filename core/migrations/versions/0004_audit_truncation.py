"""Let retention truncate the audit chain, verifiably: DELETE is allowed only for records at or below
the highest recorded checkpoint (`auditcheckpoint`, written with its `audit.truncated` record in the
same transaction); UPDATE, TRUNCATE and any other DELETE stay refused.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_PG_DELETE_FUNCTION = """
CREATE OR REPLACE FUNCTION tenantguard_audit_delete_below_checkpoint() RETURNS trigger AS $$
BEGIN
    IF OLD.seq <= (SELECT COALESCE(MAX(up_to_seq), 0) FROM auditcheckpoint) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'auditrecord is append-only: DELETE refused (seq % is above every checkpoint)', OLD.seq
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""
_SQLITE_DELETE = (
    "CREATE TRIGGER auditrecord_no_delete BEFORE DELETE ON auditrecord "
    "WHEN OLD.seq > (SELECT COALESCE(MAX(up_to_seq), 0) FROM auditcheckpoint) "
    "BEGIN SELECT RAISE(ABORT, 'auditrecord is append-only: DELETE refused'); END"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS auditrecord_append_only ON auditrecord")
        op.execute(_PG_DELETE_FUNCTION)
        op.execute(
            "CREATE TRIGGER auditrecord_append_only BEFORE UPDATE ON auditrecord "
            "FOR EACH ROW EXECUTE FUNCTION tenantguard_audit_append_only()"
        )
        op.execute(
            "CREATE TRIGGER auditrecord_delete_below_checkpoint BEFORE DELETE ON auditrecord "
            "FOR EACH ROW EXECUTE FUNCTION tenantguard_audit_delete_below_checkpoint()"
        )
    else:
        op.execute("DROP TRIGGER IF EXISTS auditrecord_no_delete")
        op.execute(_SQLITE_DELETE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS auditrecord_delete_below_checkpoint ON auditrecord")
        op.execute("DROP TRIGGER IF EXISTS auditrecord_append_only ON auditrecord")
        op.execute("DROP FUNCTION IF EXISTS tenantguard_audit_delete_below_checkpoint()")
        op.execute(
            "CREATE TRIGGER auditrecord_append_only BEFORE UPDATE OR DELETE ON auditrecord "
            "FOR EACH ROW EXECUTE FUNCTION tenantguard_audit_append_only()"
        )
    else:
        op.execute("DROP TRIGGER IF EXISTS auditrecord_no_delete")
        op.execute(
            "CREATE TRIGGER auditrecord_no_delete BEFORE DELETE ON auditrecord "
            "BEGIN SELECT RAISE(ABORT, 'auditrecord is append-only: DELETE refused'); END"
        )
