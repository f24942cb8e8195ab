"""Time-window polling with a resumable checkpoint, shared by every event stream.

The checkpoint is ``{"high_water": T, "window": {"start", "end", "page"} | None}``:

* a pass starts at ``high_water - overlap`` (late data: Google's reporting lag, Entra's delays)
  and reads contiguous windows of at most ``window`` length up to the time the pass started;
* after every page the checkpoint names the window and the provider's token for the *next*
  page, so a crash resumes exactly there (re-reading at most one page, which the provider ids
  make harmless);
* when a window's last page is stored, ``high_water`` moves to the window's end.

A page token the provider no longer accepts (`StalePageToken`) restarts its window from the
start. Nothing here touches the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from collectors.streams.base import Page, StreamContext
from core.clock import isoformat, parse_time
from providers.errors import StalePageToken

# fetch(start, end, page_token) -> (records, next page token or None, source description)
Fetch = Callable[[datetime, datetime, Any], tuple[Sequence[Any], Any, str]]


@dataclass(frozen=True)
class WindowPlan:
    overlap: timedelta
    window: timedelta
    backfill_start: datetime
    earliest: datetime | None = None  # the provider keeps nothing older (e.g. O365: 7 days)

    @classmethod
    def for_context(
        cls, ctx: StreamContext, *, max_window: timedelta | None = None, max_age: timedelta | None = None
    ) -> WindowPlan:
        overlap = timedelta(minutes=float(ctx.setting("overlap_minutes", ctx.options.overlap_minutes)))
        window = timedelta(hours=float(ctx.setting("window_hours", ctx.options.window_hours)))
        if max_window is not None:
            window = min(window, max_window)
        window = max(window, overlap * 2, timedelta(minutes=1))
        configured = ctx.setting("backfill_start")
        if configured:
            backfill = parse_time(str(configured)).replace(microsecond=0)
        else:
            backfill = ctx.now - timedelta(
                days=float(ctx.setting("backfill_days", ctx.options.backfill_days))
            )
        earliest = (ctx.now - max_age).replace(microsecond=0) if max_age is not None else None
        if ctx.probe:
            backfill = ctx.now - timedelta(hours=1)
        return cls(overlap=overlap, window=window, backfill_start=backfill, earliest=earliest)


def _clamp(value: datetime, plan: WindowPlan) -> datetime:
    return max(value, plan.earliest) if plan.earliest is not None else value


def windowed_pages(
    cursor: Mapping[str, Any], plan: WindowPlan, now: datetime, fetch: Fetch
) -> Iterator[tuple[Sequence[Any], dict[str, Any], tuple[datetime, datetime], str]]:
    """(records, checkpoint after them, window, source) for one pass from `cursor` up to `now`."""
    state: dict[str, Any] = dict(cursor)
    first = True  # the overlap is re-read once per pass, not between the windows of a backfill
    while True:
        current = state.get("window")
        high_water = parse_time(state["high_water"]) if state.get("high_water") else None
        if current:
            start, end, token = parse_time(current["start"]), parse_time(current["end"]), current.get("page")
        else:
            if high_water is not None and high_water >= now:
                return
            if high_water is None:
                start = plan.backfill_start
            else:
                start = high_water - plan.overlap if first else high_water
            start = _clamp(start, plan)
            end = min(start + plan.window, now)
            if end <= start:
                return
            token = None
        try:
            records, next_token, source = fetch(start, end, token)
        except StalePageToken:
            if token is None:
                raise
            state["window"] = {"start": isoformat(start), "end": isoformat(end), "page": None}
            continue
        if next_token:
            state = {
                "high_water": state.get("high_water"),
                "window": {"start": isoformat(start), "end": isoformat(end), "page": next_token},
            }
        else:
            done_to = max(end, high_water) if high_water else end
            state = {"high_water": isoformat(done_to), "window": None}
        first = False
        yield records, dict(state), (start, end), source
        if not next_token and end >= now:
            return


def event_pages(
    ctx: StreamContext, plan: WindowPlan, fetch: Fetch, *, key: str | None = None
) -> Iterator[Page]:
    """`windowed_pages` as runner pages; with `key`, the state lives under cursor[key] (one
    checkpoint holding several independent sub-streams, e.g. O365 content types)."""
    root = dict(ctx.cursor)
    sub = dict(root.get(key) or {}) if key else root
    for records, state, window, source in windowed_pages(sub, plan, ctx.now, fetch):
        if key:
            root = {**root, key: state}
            checkpoint = root
        else:
            checkpoint = state
        yield Page(records=records, cursor=checkpoint, window=window, source=source)
        if ctx.probe:
            return
    if key:
        ctx.cursor = root
