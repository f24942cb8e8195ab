"""Pages at the API edge: the `limit`/`cursor` query parameters and the page envelope.

Cursors themselves (one format, shared with the timeline) are :mod:`core.pagination`; a cursor
from another sort, or one that does not decode, is a 400 (see api.stage_errors).
"""

from __future__ import annotations

from typing import Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

T = TypeVar("T")
MAX_CURSOR_LENGTH = 512
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class Page(BaseModel, Generic[T]):
    """One page of results; pass `next_cursor` back as `cursor` for the next page (null: no more)."""

    items: list[T]
    next_cursor: str | None = Field(default=None, description="Opaque; null on the last page.")


class PageRequest(BaseModel):
    """`limit` and `cursor` query parameters, shared by every list endpoint."""

    limit: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Items per page.")
    cursor: str | None = Field(
        default=None, max_length=MAX_CURSOR_LENGTH, description="`next_cursor` of the previous page."
    )


def page_request(
    limit: int = Query(
        DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Items per page (at most 500)."
    ),
    cursor: str | None = Query(
        None, max_length=MAX_CURSOR_LENGTH, description="`next_cursor` of the previous page."
    ),
) -> PageRequest:
    return PageRequest(limit=limit, cursor=cursor)
