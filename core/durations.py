"""The one duration syntax: ``90s``, ``15m``, ``2h30m``, ``1d``, ``2w`` (or a bare number in a
unit the caller names). Rules, policies, settings and CLI options all read durations here."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

from core.errors import TenantguardError

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
HINT = "use forms like 90s, 15m, 2h30m, 1d, 2w"


class DurationError(ValueError):
    """A value that is not a duration; the message says what was given and what to write."""


def parse_duration(value: Any, *, bare: str = "s", positive: bool = False) -> timedelta:
    """`value` as a timedelta: a string of number+unit parts (units ms s m h d w), a timedelta,
    or a bare number (int, float or numeric string) counted in unit `bare`.

    Negative durations are refused; with `positive`, zero is refused too.
    """
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, bool) or value is None:
        raise DurationError(f"{value!r} is not a duration; {HINT}")
    elif isinstance(value, int | float):
        result = float(value) * UNITS[bare]
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if _NUMBER.fullmatch(text):
            result = float(text) * UNITS[bare]
        else:
            parts = _PART.findall(text)
            if not text or "".join(n + u for n, u in parts) != text:
                raise DurationError(f"{value!r} is not a duration; {HINT}")
            result = sum((float(n) * UNITS[u] for n, u in parts), timedelta())
    else:
        raise DurationError(f"{value!r} is not a duration; {HINT}")
    if result < timedelta() or (positive and result == timedelta()):
        raise DurationError(
            f"{value!r} is not a duration: it must be {'above' if positive else 'at least'} 0"
        )
    return result


def format_duration(value: timedelta) -> str:
    """The shortest spelling `parse_duration` reads back: 90s -> 1m30s, 1 day -> 1d."""
    seconds = value.total_seconds()
    if seconds == 0:
        return "0s"
    out = []
    for unit in ("w", "d", "h", "m", "s"):
        size = UNITS[unit].total_seconds()
        count, seconds = divmod(seconds, size)
        if count:
            out.append(f"{int(count)}{unit}")
    if seconds:
        out.append(f"{round(seconds * 1000)}ms")
    return "".join(out)


def since(value: str, now: datetime) -> datetime | None:
    """`now` minus `value` when it is a duration with units (30m, 24h, 7d), else None (let the
    caller try a time)."""
    if _NUMBER.fullmatch(value.strip()):
        return None
    try:
        return now - parse_duration(value, positive=True)
    except DurationError:
        return None


def until(value: str, now: datetime) -> datetime | None:
    """`now` plus `value` when it is a duration with units, else None."""
    if _NUMBER.fullmatch(value.strip()):
        return None
    try:
        return now + parse_duration(value, positive=True)
    except DurationError:
        return None


TIME_HINT = (
    "write a span back from now (30m, 24h, 7d, 2w), now, today, yesterday, "
    "a date (2026-03-01) or an ISO 8601 time (2026-03-01T09:00:00Z)"
)


class TimeError(TenantguardError, ValueError):
    """Text that is not a time; the message names the text and the forms that are."""


def parse_when(value: str, now: datetime, *, ahead: bool = False) -> datetime:
    """The one reading of a time a person types (every CLI option that takes a time).

    A duration with units is a span from `now`: back (``--since 7d``), or forward with `ahead`
    (``--expires 30d``). ``now``, ``today`` and ``yesterday`` (UTC midnights), a date, or any
    ISO 8601 / RFC 3339 time (``Z`` or an offset; a time without a zone is UTC).
    """
    from core.clock import as_utc, parse_time

    text = value.strip()
    word = text.lower()
    midnight = as_utc(now).replace(hour=0, minute=0, second=0, microsecond=0)
    named = {"now": as_utc(now), "today": midnight, "yesterday": midnight - timedelta(days=1)}
    if ahead:
        named["tomorrow"] = midnight + timedelta(days=1)
    if word in named:
        return named[word]
    relative = (until if ahead else since)(text, as_utc(now)) if text else None
    if relative is not None:
        return relative
    try:
        return parse_time(text)
    except ValueError:
        raise TimeError(f"{value!r} is not a time; {TIME_HINT}") from None


# A settings/model field holding a duration: written as "15m" (or seconds), read as a timedelta.
Duration = Annotated[
    timedelta,
    BeforeValidator(lambda v: parse_duration(v)),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
