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

Reading ahead: while the runner stores one page (and its checkpoint), the next is already being
fetched (`read_ahead`: the provider calls run in one background thread, in the order they always
ran, at most `READ_AHEAD` pages ahead). The pages reach the runner in the same order with the
same checkpoints, so what a crash leaves behind is unchanged: nothing fetched ahead counts until
the runner has committed it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from collectors.streams.base import Page, StreamContext
from core.clock import isoformat, parse_time
from providers.errors import StalePageToken

# fetch(start, end, page_token) -> (records, next page token or None, source description)
Fetch = Callable[[datetime, datetime, Any], tuple[Sequence[Any], Any, str]]
READ_AHEAD = 2  # pages fetched ahead of the one being stored
_END = object()


class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(items: Iterator[Any], depth: int = READ_AHEAD, name: str = "read-ahead") -> Iterator[Any]:
    """`items`, produced by a background thread up to `depth` ahead of the consumer.

    The source iterator runs entirely in that one thread (its provider client is never used from
    two threads at once); an exception it raises reaches the consumer in place of the item it
    would have produced. When the consumer stops early (its own error, `close()`), the producer
    stops after the call in progress and the source is closed.
    """
    handoff: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put(_Raised(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item = handoff.get()
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()


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
    pages = windowed_pages(sub, plan, ctx.now, fetch)
    if not ctx.probe:
        pages = read_ahead(pages, name=f"read-ahead-{ctx.connection.name}")
    for records, state, window, source in pages:
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
