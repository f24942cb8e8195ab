"""Time in the simulator: integer microseconds since the epoch, and each vendor's text format.

Graph writes 7 fractional digits and a Z, Google writes milliseconds and a Z, the Office 365
Management API writes no zone at all (UTC implied), Slack uses epoch seconds or "seconds.micros".
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache

SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FRACTION = re.compile(r"(\.\d+)")
_DURATION = re.compile(r"(-?\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_DURATION_UNITS = {"ms": 1000, "s": SECOND, "m": MINUTE, "h": HOUR, "d": DAY, "w": 7 * DAY}


def to_datetime(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def from_datetime(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86400 + delta.seconds) * SECOND + delta.microseconds


@lru_cache(maxsize=1 << 16)
def _seconds_text(seconds: int) -> str:
    return (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")


def graph_time(us: int) -> str:
    return f"{_seconds_text(us // SECOND)}.{us % SECOND:06d}0Z"


def google_time(us: int) -> str:
    return f"{_seconds_text(us // SECOND)}.{us % SECOND // 1000:03d}Z"


def ual_time(us: int) -> str:
    return _seconds_text(us // SECOND)


def parse_slack_ts(text: str) -> int:
    seconds, _, fraction = str(text).partition(".")
    return int(seconds) * SECOND + int((fraction + "000000")[:6] or 0)


def parse_time(text: str) -> int:
    """Parse ISO 8601 (any fraction length, Z or offset, or a bare date) or epoch seconds."""
    value = str(text).strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return int(float(value) * SECOND)
    value = value.replace("z", "Z")
    match = _FRACTION.search(value)
    if match:  # Python wants at most 6 fractional digits
        value = value.replace(match.group(1), match.group(1)[:7].ljust(2, "0"), 1)
    parsed = datetime.fromisoformat(value)
    return from_datetime(parsed)


def parse_duration(text: str | int | float) -> int:
    """'90s', '15m', '2h30m', '1d', or a number of seconds -> microseconds."""
    if isinstance(text, int | float):
        return int(text * SECOND)
    value = text.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return int(float(value) * SECOND)
    parts = _DURATION.findall(value)
    if not parts or "".join(a + b for a, b in parts) != value.replace(" ", ""):
        raise ValueError(f"bad duration {text!r}: use forms like 90s, 15m, 2h30m, 1d")
    return int(sum(float(n) * _DURATION_UNITS[unit] for n, unit in parts))


def floor_day(us: int) -> int:
    return us - us % DAY


def settled_period_start(days: int, now: float | None = None) -> int:
    """The start of a `days`-long period that ended at 22:00 UTC yesterday.

    The simulator fills a period's last UTC day to its end with background activity on its live
    clock, so a period ending today keeps adding readable events while a client reads. One that
    ended before today's UTC midnight serves a fixed set, all of it readable once the clock is past
    midnight plus the streams' lag: what tests and benchmarks comparing two runs of a tenant need.
    """
    ends = (int(time.time() if now is None else now) // 86400) * 86400 - 2 * 3600
    return (ends - days * 86400) * SECOND
