"""Cursor pagination, one format for every list (API pages and incident timelines alike).

A cursor is base64url JSON naming the sort it belongs to and the sort key of the last item
returned; resuming with it reads the next rows after that key (no OFFSET, so page 10,000 costs
what page 1 costs). A cursor from another sort, or one that does not decode, is a
:class:`~core.errors.CursorError` (the API answers 400).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, or_

from core.clock import isoformat, parse_time
from core.errors import CursorError

# Primary keys are INTEGER columns (32-bit on PostgreSQL): larger ids can never exist.
MAX_ID = 2**31 - 1


def encode_cursor(sort: str, key: list[Any]) -> str:
    values = [{"t": isoformat(v)} if isinstance(v, datetime) else v for v in key]
    raw = orjson.dumps({"s": sort, "k": values})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str, types: tuple[type, ...]) -> list[Any]:
    """The key stored in `cursor`, checked against the expected sort and value types."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body = orjson.loads(raw)
        if body.get("s") != sort:
            raise CursorError(
                f"this cursor belongs to sort {body.get('s')!r}, not {sort!r}; "
                "start again without a cursor when changing the sort"
            )
        values = body["k"]
        if not isinstance(values, list) or len(values) != len(types):
            raise ValueError("wrong key length")
        return [_restore(value, kind) for value, kind in zip(values, types, strict=True)]
    except CursorError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, orjson.JSONDecodeError):
        raise CursorError(
            "the cursor is not valid; use the next_cursor value of a previous page as is"
        ) from None


def _restore(value: Any, kind: type) -> Any:
    if kind is datetime:
        if not isinstance(value, dict) or not isinstance(value.get("t"), str):
            raise ValueError("expected a time")
        return parse_time(value["t"])
    if kind is int and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ID):
        raise ValueError("expected an id")
    if kind is float and (not isinstance(value, int | float) or isinstance(value, bool)):
        raise ValueError("expected a number")
    if kind is str and not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def after_key(columns: list[Any], key: list[Any], *, descending: bool) -> Any:
    """Rows strictly after `key` in (columns...) order, written so a plain index on the first column helps.

    ``(a, b) > (x, y)`` becomes ``a >= x AND (a > x OR b > y)``: the leading range is indexable on
    both SQLite and PostgreSQL even without a composite index.
    """

    def strictly(column: Any, value: Any) -> Any:
        return column < value if descending else column > value

    def loosely(column: Any, value: Any) -> Any:
        return column <= value if descending else column >= value

    def lexicographic(cols: list[Any], values: list[Any]) -> Any:
        if len(cols) == 1:
            return strictly(cols[0], values[0])
        return or_(
            strictly(cols[0], values[0]), and_(cols[0] == values[0], lexicographic(cols[1:], values[1:]))
        )

    return and_(loosely(columns[0], key[0]), lexicographic(columns, key))
