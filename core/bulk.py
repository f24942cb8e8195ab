"""Many rows in one statement through the driver's ``executemany``, each value converted as its
column type would convert it (SQLAlchemy's per-row parameter handling was a large part of writing
thousands of timeline entries, audit records and incidents).

The rows are complete: every row names the same columns, defaults are not filled in. Values go
through the column type's own bind processor (JSON, encryption at rest); timezone-aware datetimes
of ``UTCDateTime`` columns are written as SQLAlchemy writes them (SQLite: naive UTC text with
microseconds; PostgreSQL: the aware value), converted here without the generic machinery.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection

from core.clock import as_utc
from core.models.types import UTCDateTime

Converter = Callable[[Any], Any] | None


def _sqlite_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = as_utc(value)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _aware_time(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _converters(connection: Connection, table: Table, names: Sequence[str]) -> list[Converter]:
    dialect = connection.dialect
    found: list[Converter] = []
    for name in names:
        column_type = table.c[name].type
        if isinstance(column_type, UTCDateTime):
            found.append(_sqlite_time if dialect.name == "sqlite" else _aware_time)
        else:
            found.append(column_type._cached_bind_processor(dialect))
    return found


def _placeholders(connection: Connection, count: int) -> list[str]:
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    return [mark] * count


def _params(rows: Sequence[Mapping[str, Any]], names: Sequence[str], converters: list[Converter]) -> list[tuple[Any, ...]]:
    pairs = list(zip(names, converters, strict=True))
    if not any(convert for _, convert in pairs):
        return [tuple(row[name] for name in names) for row in rows]
    return [
        tuple(convert(row[name]) if convert is not None else row[name] for name, convert in pairs) for row in rows
    ]


def _quoted(connection: Connection, name: str) -> str:
    return str(connection.dialect.identifier_preparer.quote(name))


def insert_many(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT `rows` (dicts naming the same columns) into `table` with one executemany."""
    if not rows:
        return
    names = list(rows[0])
    columns = ", ".join(_quoted(connection, n) for n in names)
    statement = (
        f"INSERT INTO {_quoted(connection, table.name)} ({columns}) "
        f"VALUES ({', '.join(_placeholders(connection, len(names)))})"
    )
    connection.exec_driver_sql(statement, _params(rows, names, _converters(connection, table, names)))


def update_many(connection: Connection, table: Table, key: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """UPDATE `table` SET the other columns of each row WHERE `key` equals its `key`, one executemany
    (the rows name the same columns)."""
    if not rows:
        return
    names = [n for n in rows[0] if n != key]
    marks = _placeholders(connection, len(names) + 1)
    assignments = ", ".join(f"{_quoted(connection, n)} = {m}" for n, m in zip(names, marks, strict=False))
    statement = (
        f"UPDATE {_quoted(connection, table.name)} SET {assignments} "
        f"WHERE {_quoted(connection, key)} = {marks[-1]}"
    )
    every = [*names, key]
    connection.exec_driver_sql(statement, _params(rows, every, _converters(connection, table, every)))
