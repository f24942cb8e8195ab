"""Make the audit table append-only in the database itself (UPDATE, DELETE and TRUNCATE refused).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION tenantguard_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'auditrecord is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER auditrecord_append_only BEFORE UPDATE OR DELETE ON auditrecord "
            "FOR EACH ROW EXECUTE FUNCTION tenantguard_audit_append_only()"
        )
        op.execute(
            "CREATE TRIGGER auditrecord_no_truncate BEFORE TRUNCATE ON auditrecord "
            "FOR EACH STATEMENT EXECUTE FUNCTION tenantguard_audit_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER auditrecord_no_{verb.lower()} BEFORE {verb} ON auditrecord "
                f"BEGIN SELECT RAISE(ABORT, 'auditrecord is append-only: {verb} refused'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS auditrecord_append_only ON auditrecord")
        op.execute("DROP TRIGGER IF EXISTS auditrecord_no_truncate ON auditrecord")
        op.execute("DROP FUNCTION IF EXISTS tenantguard_audit_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS auditrecord_no_update")
        op.execute("DROP TRIGGER IF EXISTS auditrecord_no_delete")
