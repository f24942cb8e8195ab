"""Many rows in one statement through the driver's ``executemany``, each value converted as its
column type would convert it (SQLAlchemy's per-row parameter handling was a large part of writing
thousands of timeline entries, audit records and incidents).

The rows are complete: every row names the same columns, defaults are not filled in. Values are
converted a column at a time: through the column type's own bind processor (JSON, encryption at
rest), ``UTCDateTime`` values written as SQLAlchemy writes them (SQLite: naive UTC text with
microseconds; PostgreSQL: the aware value) without the generic machinery.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection

from core.clock import as_utc
from core.models.types import UTCDateTime


def _sqlite_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = as_utc(value)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _aware_time(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _column_values(connection: Connection, column_type: Any, values: list[Any]) -> list[Any]:
    """`values` of one column as the driver takes them."""
    dialect = connection.dialect
    if isinstance(column_type, UTCDateTime):
        convert = _sqlite_time if dialect.name == "sqlite" else _aware_time
        return [convert(v) for v in values]
    process = column_type._cached_bind_processor(dialect)
    return values if process is None else [process(v) for v in values]


def _params(
    connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]], names: Sequence[str]
) -> list[tuple[Any, ...]]:
    columns = [_column_values(connection, table.c[n].type, [row[n] for row in rows]) for n in names]
    return list(zip(*columns, strict=True))


def _placeholders(connection: Connection, count: int) -> list[str]:
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    return [mark] * count


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
    connection.exec_driver_sql(statement, _params(connection, table, rows, names))


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
    connection.exec_driver_sql(statement, _params(connection, table, rows, every))


def reserve_ids(connection: Connection, table: Table, count: int) -> list[int]:
    """Ids for `count` new rows of `table` (integer primary key ``id``), as inserting them without
    ids would give: PostgreSQL takes them from the column's sequence; SQLite (one writer, the
    transaction holds the write lock) continues after the largest id, as its rowids do."""
    if count <= 0:
        return []
    if connection.dialect.name == "postgresql":
        rows = connection.exec_driver_sql(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            (table.name, count),
        ).scalars()
        return sorted(int(i) for i in rows)
    last = connection.exec_driver_sql(f"SELECT max(id) FROM {_quoted(connection, table.name)}").scalar()
    start = int(last or 0) + 1
    return list(range(start, start + count))
