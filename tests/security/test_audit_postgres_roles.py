"""PostgreSQL, two roles (docs/deployment.md): an owner that runs the migrations and owns the tables
and triggers, and the application role serve and the workers connect as. The application role
writes the chain, signs checkpoints and truncates by retention, but cannot disable or drop the
append-only triggers, replace their functions, alter the audit tables, skip triggers through
`session_replication_role`, or update, truncate or delete past a checkpoint (issue 21). The roles
are made in the test's cluster and dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from core.audit import Actor, AuditAction, Channel, record, truncate_chain, verify_database, write_checkpoint
from core.audit_keys import TrustedKeys, load_signing_key, public_raw
from core.db import Database
from core.models import AuditRecord
from core.settings import Settings

# What docs/deployment.md tells the operator to run as the owner, for the application role.
APPLICATION_GRANTS = """
GRANT CONNECT ON DATABASE "{database}" TO "{app}";
GRANT USAGE ON SCHEMA public TO "{app}";
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{app}";
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO "{app}";
REVOKE UPDATE, TRUNCATE ON auditrecord FROM "{app}";
REVOKE UPDATE, DELETE, TRUNCATE ON auditcheckpoint FROM "{app}";
"""


@dataclass
class TwoRoles:
    owner_url: str
    app_url: str
    app: str


@pytest.fixture
def two_roles(db: Database, database_url: str) -> Iterator[TwoRoles]:
    if db.is_sqlite:
        pytest.skip("PostgreSQL roles (run with --db postgresql)")
    suffix = uuid.uuid4().hex[:8]
    owner, app, database = f"tg_owner_{suffix}", f"tg_app_{suffix}", f"tg_roles_{suffix}"
    base = database_url.rsplit("/", 1)[0]
    host = base.split("@", 1)[1]
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE \"{owner}\" LOGIN PASSWORD '{suffix}'")
        admin.execute(f"CREATE ROLE \"{app}\" LOGIN PASSWORD '{suffix}'")
        admin.execute(f'CREATE DATABASE "{database}" OWNER "{owner}"')
    roles = TwoRoles(
        owner_url=f"postgresql://{owner}:{suffix}@{host}/{database}",
        app_url=f"postgresql://{app}:{suffix}@{host}/{database}",
        app=app,
    )
    try:
        migrated = Database(roles.owner_url)  # `tenantguard db upgrade`, as the owner
        migrated.upgrade()
        migrated.dispose()
        with psycopg.connect(roles.owner_url, autocommit=True) as conn:
            conn.execute(APPLICATION_GRANTS.format(database=database, app=app))
        yield roles
    finally:
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{app}"')
            admin.execute(f'DROP ROLE IF EXISTS "{owner}"')


def _refused(url: str, statement: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn, pytest.raises(psycopg.Error) as caught:
        conn.execute(statement)
    return str(caught.value)


def test_the_application_role_runs_the_chain_but_cannot_switch_its_defences_off(
    two_roles: TwoRoles, settings: Settings
) -> None:
    # given the product running as the application role: it appends, signs a checkpoint and truncates
    db = Database(two_roles.app_url)
    key = load_signing_key(settings.signing_key_path)
    try:
        with db.session() as session:
            for n in range(6):
                record(session, actor=Actor("principal:alice", Channel.CLI), action=AuditAction.INCIDENT_NOTE_ADDED,
                       object_type="incident", object_id=n)  # fmt: skip
            assert write_checkpoint(session, key, actor=Actor.system("scheduler")) is not None
        with db.session() as session:
            assert (
                truncate_chain(session, up_to_seq=2, actor=Actor.system("retention"), details={}, key=key)
                == 2
            )
        with db.session(readonly=True) as session:
            result = verify_database(session, trusted=TrustedKeys.of([public_raw(key)]))
            head = max(session.exec(select(AuditRecord.seq)).all())
        assert result.ok and result.checkpoints == 1, result.reason
        # when it tries what an attacker with its credentials would, each is refused
        app = two_roles.app_url
        assert "must be owner" in _refused(app, "ALTER TABLE auditrecord DISABLE TRIGGER USER")
        assert "must be owner" in _refused(
            app, "ALTER TABLE auditrecord DISABLE TRIGGER auditrecord_append_only"
        )
        assert "must be owner" in _refused(
            app, "DROP TRIGGER auditrecord_delete_below_checkpoint ON auditrecord"
        )
        assert "must be owner" in _refused(app, "ALTER TABLE auditcheckpoint DISABLE TRIGGER ALL")
        assert "must be owner" in _refused(app, "ALTER TABLE auditrecord ADD COLUMN note text")
        # (no CREATE on the schema either: it cannot replace the trigger functions)
        assert "permission denied for schema public" in _refused(
            app,
            "CREATE OR REPLACE FUNCTION tenantguard_audit_delete_below_checkpoint() RETURNS trigger AS "
            "$$ BEGIN RETURN OLD; END; $$ LANGUAGE plpgsql",
        )
        assert "permission denied" in _refused(app, "SET session_replication_role = replica")
        assert "permission denied" in _refused(app, "UPDATE auditrecord SET actor = 'x'")
        assert "permission denied" in _refused(app, "TRUNCATE auditrecord")
        assert "permission denied" in _refused(app, "DELETE FROM auditcheckpoint")
        assert "append-only" in _refused(app, f"DELETE FROM auditrecord WHERE seq = {head}")
        # then the chain is as the product left it
        with db.session(readonly=True) as session:
            assert verify_database(session, trusted=TrustedKeys.of([public_raw(key)])).ok
        with pytest.raises(DBAPIError), db.session() as session:
            session.connection().exec_driver_sql("ALTER TABLE auditrecord DISABLE TRIGGER USER")
    finally:
        db.dispose()
