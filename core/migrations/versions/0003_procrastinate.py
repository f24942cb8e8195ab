"""Procrastinate's job tables, in the data's own PostgreSQL database (the worker engine, pipeline/workers.py).

Applied by `tenantguard db upgrade` (and by every command that migrates on start, `tenantguard
worker` included). The SQL is Procrastinate's own schema for the installed version; a later
Procrastinate release that ships migrations (procrastinate/sql/migrations) gets a revision here
that runs them. SQLite has no worker engine: nothing to do there.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_DROP_FUNCTIONS = """
DO $$
DECLARE f record;
BEGIN
    FOR f IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
             JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE p.proname LIKE 'procrastinate%' AND n.nspname = current_schema()
    LOOP
        EXECUTE 'DROP FUNCTION IF EXISTS ' || f.signature || ' CASCADE';
    END LOOP;
END $$;
"""


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from procrastinate.schema import SchemaManager

    # the driver's own connection: the schema is many statements with $$ bodies and % signs
    bind.connection.driver_connection.execute(SchemaManager.get_schema())


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in (
        "procrastinate_events",
        "procrastinate_periodic_defers",
        "procrastinate_jobs",
        "procrastinate_workers",
    ):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    op.execute(_DROP_FUNCTIONS)
    for kind in ("procrastinate_job_to_defer_v1", "procrastinate_job_event_type", "procrastinate_job_status"):
        op.execute(f"DROP TYPE IF EXISTS {kind} CASCADE")
