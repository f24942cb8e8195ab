"""Filtering on the `entities` JSON column ({"people": [...], "ips": [...], ...}) on both databases.

PostgreSQL uses JSONB containment (``@>``), which a GIN index can serve; SQLite looks inside the
list with ``json_each``.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import exists, literal, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.expression import ColumnElement, cast, func


def entity_list_contains(column: Any, kind: str, value: str, *, dialect: str) -> ColumnElement[bool]:
    """`column[kind]` (a JSON list of strings) contains `value`."""
    if dialect == "postgresql":
        document = orjson.dumps({kind: [value]}).decode()
        return column.op("@>")(cast(literal(document), JSONB))
    members = func.json_each(column, f"$.{kind}").table_valued("value").alias("member")
    return exists(select(literal(1)).select_from(members).where(members.c.value == value))
