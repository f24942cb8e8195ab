"""The entity kinds, and filtering on the `entities` JSON column ({"people": [...], "ips": [...], ...}) on both databases.

PostgreSQL uses JSONB containment (``@>``), which the GIN index on the column serves. SQLite
has no JSON index: it looks inside the list with ``json_each``, behind a ``LIKE`` on the stored
text that rules out almost every row cheaply (only for values whose JSON text is the value itself
in quotes, so the pre-filter can never hide a match).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import and_, exists, literal, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.expression import ColumnElement, cast, func


class EntityKind(StrEnum):
    """The kinds of entity a finding or incident names (the keys of its `entities` column)."""

    PEOPLE = "people"
    IPS = "ips"
    FILES = "files"
    APPS = "apps"
    ACCOUNTS = "accounts"


_PLAIN = re.compile(r"^[\x20-\x7e]*$")


def entity_list_contains(column: Any, kind: EntityKind, value: str, *, dialect: str) -> ColumnElement[bool]:
    """`column[kind]` (a JSON list of strings) contains `value`."""
    key = EntityKind(kind).value
    if dialect == "postgresql":
        document = orjson.dumps({key: [value]}).decode()
        return column.op("@>")(cast(literal(document), JSONB))
    members = func.json_each(column, f"$.{key}").table_valued("value").alias("member")
    exact = exists(select(literal(1)).select_from(members).where(members.c.value == value))
    if not _PLAIN.match(value) or '"' in value or "\\" in value:
        return exact
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return and_(column.like(f'%"{escaped}"%', escape="\\"), exact)


def scanned(column: Any) -> Any:
    """`column` in a form no planner walks an index for: the same values, sorted after filtering.

    With a selective entity filter, walking the time index and testing row after row until the
    page is full can read most of the table (planners under-estimate how few rows match a list
    membership); finding the few matches first and sorting them is bounded by the matches.
    """
    return func.coalesce(column, column).self_group()
