"""Alembic migrations for the domain tables (run through core.migrations.runner)."""
