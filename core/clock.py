"""One source of "now", always timezone-aware UTC, so tests and replays can reason about time."""

from __future__ import annotations

from datetime import UTC, datetime

from core.errors import TimeOutOfRange


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken to be UTC (SQLite drops the zone); aware ones are converted."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        raise TimeOutOfRange(
            f"{value.isoformat()} is outside the years 1 to 9999 once converted to UTC; give a time in that range"
        ) from None


def parse_time(text: str) -> datetime:
    """Parse RFC 3339 / ISO 8601 text (``Z`` suffix, 7-digit fractions as Graph sends them)."""
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    if "." in raw:
        head, _, rest = raw.partition(".")
        digits = ""
        tail = ""
        for i, ch in enumerate(rest):
            if not ch.isdigit():
                tail = rest[i:]
                break
            digits += ch
        raw = f"{head}.{digits[:6].ljust(6, '0')}{tail}"
    return as_utc(datetime.fromisoformat(raw))


def isoformat(value: datetime) -> str:
    return as_utc(value).isoformat().replace("+00:00", "Z")
