"""Run Alembic programmatically, and refuse a database whose schema is newer than this code."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from core.errors import DatabaseError

if TYPE_CHECKING:
    from core.db import Database

MIGRATIONS_DIR = Path(__file__).parent


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions"))
    cfg.set_main_option("path_separator", "os")
    return cfg


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def check_schema_version(db: Database) -> str | None:
    """The database's revision; raise if this code does not know it (the schema is newer)."""
    revision = current_revision(db)
    if revision is None:
        return None
    script = ScriptDirectory.from_config(alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    if revision not in known:
        raise DatabaseError(
            f"the database schema is at revision {revision!r}, newer than this tenantguard "
            f"(knows up to {script.get_current_head()!r}); upgrade tenantguard before using this database"
        )
    return revision


def upgrade(db: Database, revision: str = "head") -> None:
    check_schema_version(db)
    cfg = alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def is_up_to_date(db: Database) -> bool:
    script = ScriptDirectory.from_config(alembic_config())
    return current_revision(db) == script.get_current_head()
