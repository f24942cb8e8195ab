"""Schedules as iCalendar: export the final schedule as a feed, import a feed (recurrences expanded).

Export writes one VEVENT per shift (UTC times), the way PagerDuty and Grafana OnCall publish
their feeds; import reads any feed, expanding RRULEs with recurring-ical-events, into a schedule
of overrides (one per occurrence) so it answers "who is on call" like any other schedule.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import icalendar
import recurring_ical_events
from pydantic import ValidationError

from core.clock import as_utc, isoformat
from oncall.errors import OncallInputError
from oncall.schedules import coverage
from oncall.spec import Override, Schedule

PREFIX = "On call: "
MAX_ICAL_BYTES = 2 << 20
MAX_OCCURRENCES = 5000


def export_ical(schedule: Schedule, start: datetime, end: datetime) -> bytes:
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//tenantguard//oncall//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"{schedule.name} on-call")
    for shift in coverage(schedule, start, end).shifts:
        if shift.user is None:
            continue
        event = icalendar.Event()
        event.add("uid", f"{schedule.name}-{isoformat(shift.start)}@tenantguard")
        event.add("dtstamp", as_utc(start))
        event.add("dtstart", shift.start)
        event.add("dtend", shift.end)
        event.add("summary", PREFIX + shift.user)
        calendar.add_component(event)
    return bytes(calendar.to_ical())


def _calendar(data: bytes) -> Any:
    if len(data) > MAX_ICAL_BYTES:
        raise OncallInputError(f"calendar is {len(data)} bytes; at most {MAX_ICAL_BYTES} are read")
    try:
        return icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        raise OncallInputError(f"not an iCalendar file: {exc}") from exc


def _who(event: Any) -> str:
    summary = str(event.get("summary", "")).strip()
    return summary.removeprefix(PREFIX).strip()


def on_call_in_ical(data: bytes, moment: datetime) -> set[str]:
    """Who the feed says is on call at `moment` (evaluated by recurring-ical-events alone)."""
    return {_who(event) for event in recurring_ical_events.of(_calendar(data)).at(as_utc(moment))}


def import_ical(name: str, data: bytes, start: datetime, end: datetime, timezone: str = "UTC") -> Schedule:
    """A schedule of overrides, one per occurrence in [start, end)."""
    overrides: list[Override] = []
    try:
        events = recurring_ical_events.of(_calendar(data)).between(as_utc(start), as_utc(end))
    except (ValueError, TypeError, KeyError) as exc:
        raise OncallInputError(f"calendar cannot be expanded: {exc}") from None
    for event in events:
        if len(overrides) >= MAX_OCCURRENCES:
            raise OncallInputError(f"calendar has more than {MAX_OCCURRENCES} occurrences in the window")
        begins = event.get("dtstart").dt if event.get("dtstart") else None
        ends = event.get("dtend").dt if event.get("dtend") else None
        if not isinstance(begins, datetime) or not isinstance(ends, datetime):
            raise OncallInputError(
                f"event {_who(event)!r}: all-day or open events are not shifts; give times"
            )
        try:
            overrides.append(Override(user=_who(event), start=as_utc(begins), end=as_utc(ends)))
        except ValidationError as exc:
            raise OncallInputError(
                f'event {_who(event)[:80]!r}: its summary must name a responder ("On call: NAME"): '
                + exc.errors()[0]["msg"]
            ) from None
    try:
        return Schedule(name=name, timezone=timezone, overrides=overrides)
    except ValidationError as exc:
        raise OncallInputError(f"schedule {name!r}: " + exc.errors()[0]["msg"]) from None
