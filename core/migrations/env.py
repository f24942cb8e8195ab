"""Alembic environment: always handed a live connection by core.migrations.runner."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import core.models  # noqa: F401


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:  # pragma: no cover - only reached when someone runs `alembic` by hand
        raise RuntimeError("run migrations with `tenantguard db upgrade`, not the alembic command")
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


# Alembic installs `context.config` before it executes this file; a plain import (the import
# check every module passes) has no migration to run.
if hasattr(context, "config"):
    run_migrations()
