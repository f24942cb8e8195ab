"""Opening databases: good ones migrate, bad ones give one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from core.db import Database
from core.errors import DatabaseError
from core.migrations.runner import check_schema_version, is_up_to_date


def test_fresh_database_is_at_the_newest_schema(db: Database) -> None:
    assert is_up_to_date(db)
    db.upgrade()  # idempotent
    assert is_up_to_date(db)


def test_schema_newer_than_the_code_is_refused(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    with pytest.raises(DatabaseError, match="newer than this tenantguard"):
        check_schema_version(db)


def test_corrupt_sqlite_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.db"
    path.write_bytes(b"this is not a database" * 200)
    with pytest.raises(DatabaseError, match="not a usable SQLite database"):
        Database(f"sqlite:///{path}").upgrade()


def test_unreachable_postgresql_is_named() -> None:
    with pytest.raises(DatabaseError, match="check that PostgreSQL is running"):
        Database("postgresql://nobody@127.0.0.1:1/none").ping()


def test_migration_matches_the_models(db: Database) -> None:
    """`make migrations` was run after the last model change (the migration creates every column)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    # Procrastinate's own tables (revision 0003, PostgreSQL) are not our models
    ours = [d for d in diff if not (d[0] == "remove_table" and d[1].name.startswith("procrastinate_"))]
    assert [d for d in ours if d[0] in ("add_table", "add_column", "remove_column", "remove_table")] == []


def test_json_columns_read_back_what_the_stdlib_would() -> None:
    import json

    from core.db import json_loads

    # given JSON texts orjson reads and texts only the stdlib reads (NaN, a 70-bit integer)
    texts = ['{"a": [1, 2.5, "x", null, true]}', '{"n": NaN}', '{"big": 1180591620717411303424}']
    # then each reads back as the stdlib reads it
    for document in texts:
        value, expected = json_loads(document), json.loads(document)
        assert repr(value) == repr(expected)
