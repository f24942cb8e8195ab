"""Reading nested provider data by key or dotted path: dict keys case-insensitively (exports and
API versions vary in key case), list indexes by number; anything missing is None, never an error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def lookup(value: Any, key: str | int) -> Any:
    """`value[key]` for data: dict keys case-insensitively, list indexes; anything else is None."""
    if not isinstance(key, str | int) or isinstance(key, bool):
        return None
    if isinstance(value, Mapping):
        if key in value:
            return value[key]
        if isinstance(key, str):
            lowered = key.lower()
            for name, item in value.items():
                if isinstance(name, str) and name.lower() == lowered:
                    return item
        return None
    if isinstance(value, list | tuple) and isinstance(key, int) and -len(value) <= key < len(value):
        return value[key]
    return None


def dig(value: Any, *keys: str | int) -> Any:
    """Follow `keys` one level each (``dig(record, "actor", "email")``)."""
    for key in keys:
        if value is None:
            return None
        value = lookup(value, key)
    return value


def get_path(value: Any, path: str) -> Any:
    """Follow a dotted path (``conditions.users.includeUsers``; ``items.0.id``) through nested data."""
    return dig(
        value,
        *(int(part) if part.isascii() and part.lstrip("-").isdigit() else part for part in path.split(".")),
    )
