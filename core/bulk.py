"""Many rows in one statement through the driver's ``executemany``, each value converted as its
column type would convert it (SQLAlchemy's per-row parameter handling was a large part of writing
thousands of timeline entries, audit records and incidents).

The rows are complete: every row names the same columns, defaults are not filled in. Values are
converted a column at a time: through the column type's own bind processor (JSON, encryption at
rest), ``UTCDateTime`` values written as SQLAlchemy writes them (SQLite: naive UTC text with
microseconds; PostgreSQL: the aware value) without the generic machinery.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, Table
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from core.clock import as_utc
from core.models.types import UTCDateTime


def _sqlite_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = as_utc(value)
    return value.isoformat(" ", "microseconds")[:-6]  # without its "+00:00"


def _aware_time(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


# what json.dumps would refuse (or write otherwise) makes orjson raise: such values go the column
# type's own way (the stdlib)
_ORJSON_STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _non_finite(value: Any) -> bool:
    """Whether `value` holds a NaN or an infinity (which orjson writes as null, the stdlib not)."""
    if type(value) is float:
        return not math.isfinite(value)
    if type(value) is dict:
        return any(_non_finite(v) for v in value.values())
    if type(value) is list or type(value) is tuple:
        return any(_non_finite(v) for v in value)
    return False


def _json_bytes(value: Any) -> bytes | None:
    """A dict or list as JSON by orjson (the same values as the stdlib's text, several times
    faster), or None for what the column's own processor must write."""
    if type(value) is not dict and type(value) is not list:
        return None
    try:
        text = orjson.dumps(value, option=_ORJSON_STRICT)
    except TypeError:  # keys that are not strings, integers beyond 64 bits, other types
        return None
    if b"null" in text and _non_finite(value):
        return None
    return text


def _as_is(value: Any) -> Any:
    return value


def _json_values(connection: Connection, column_type: Any, values: list[Any]) -> list[Any]:
    """A JSON column's values as the driver takes them: what the column type's processor gives,
    with the JSON written by orjson (SQLite: the text; PostgreSQL: psycopg's Json/Jsonb wrapper
    around the bytes)."""
    dialect: Any = connection.dialect
    process = column_type._cached_bind_processor(dialect)
    if dialect.name == "sqlite":
        wrap: Any = None
    elif dialect.name == "postgresql" and hasattr(dialect, "_psycopg_Jsonb"):
        impl = column_type.dialect_impl(dialect)
        wrap = dialect._psycopg_Jsonb if isinstance(impl, JSONB) else dialect._psycopg_Json
    else:
        return values if process is None else [process(v) for v in values]
    out = []
    for value in values:
        text = _json_bytes(value)
        if text is None:
            out.append(value if process is None else process(value))
        elif wrap is None:
            out.append(text.decode())
        else:
            out.append(wrap(text, dumps=_as_is))
    return out


def _column_values(connection: Connection, column_type: Any, values: list[Any]) -> list[Any]:
    """`values` of one column as the driver takes them."""
    dialect = connection.dialect
    if isinstance(column_type, UTCDateTime):
        convert = _sqlite_time if dialect.name == "sqlite" else _aware_time
        # the same instant recurs (the build's time in every row): converted once; values equal
        # as datetimes are one instant, which is all the conversion depends on
        done: dict[datetime | None, Any] = {}
        out = []
        for value in values:
            if value in done:
                out.append(done[value])
            else:
                out.append(done.setdefault(value, convert(value)))
        return out
    if type(column_type) is JSON:
        return _json_values(connection, column_type, values)
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
