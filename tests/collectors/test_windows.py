"""Window polling: a pass reads everything up to now, resumes mid-window after a crash, re-reads
the overlap for late data, and restarts a window whose page token went stale."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from collectors.streams.windows import WindowPlan, read_ahead, windowed_pages
from providers.errors import StalePageToken

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PLAN = WindowPlan(
    overlap=timedelta(hours=2), window=timedelta(hours=24), backfill_start=NOW - timedelta(days=3)
)


class Source:
    """A provider that pages newest-first with offset tokens and can reject a token."""

    def __init__(self, times: list[datetime], page_size: int = 4) -> None:
        self.events = [(t, f"e{i}") for i, t in enumerate(times)]
        self.page_size = page_size
        self.reject_tokens = False
        self.calls = 0

    def fetch(self, start: datetime, end: datetime, token: Any) -> tuple[list[str], Any, str]:
        self.calls += 1
        if token is not None and self.reject_tokens:
            raise StalePageToken("token expired")
        matching = sorted((e for e in self.events if start <= e[0] < end), reverse=True)
        offset = int(token or 0)
        page = matching[offset : offset + self.page_size]
        more = offset + self.page_size < len(matching)
        return [eid for _, eid in page], (str(offset + self.page_size) if more else None), "source"


def _hours(*offsets: float) -> list[datetime]:
    return [NOW - timedelta(hours=h) for h in offsets]


def test_a_backfill_reads_every_event_once_up_to_now() -> None:
    source = Source(_hours(70, 60, 50, 49, 48, 30, 20, 10, 5, 1, 0.5))
    pages = list(windowed_pages({}, PLAN, NOW, source.fetch))
    seen = [eid for records, *_ in pages for eid in records]
    assert sorted(seen) == sorted(eid for _, eid in source.events)
    final = pages[-1][1]
    assert final == {"high_water": "2026-11-20T12:00:00Z", "window": None}


def test_a_crash_after_any_page_resumes_without_losing_an_event() -> None:
    source = Source(_hours(*[h / 2 for h in range(1, 140)]), page_size=5)
    every = list(windowed_pages({}, PLAN, NOW, source.fetch))
    for crash_after in range(len(every)):
        cursor = every[crash_after][1]
        before = [eid for records, *_ in every[: crash_after + 1] for eid in records]
        after = [eid for records, *_ in windowed_pages(cursor, PLAN, NOW, source.fetch) for eid in records]
        assert set(before) | set(after) == {eid for _, eid in source.events}, (
            f"lost events after page {crash_after}"
        )


def test_the_next_pass_rereads_the_overlap_and_finds_late_events() -> None:
    source = Source(_hours(5, 3))
    first = list(windowed_pages({}, PLAN, NOW, source.fetch))
    late = (NOW - timedelta(hours=1), "late")  # happened before the high-water mark, reported after it
    source.events.append(late)
    later = NOW + timedelta(minutes=30)
    second = [
        eid for records, *_ in windowed_pages(first[-1][1], PLAN, later, source.fetch) for eid in records
    ]
    assert "late" in second


def test_a_stale_page_token_restarts_its_window_from_the_start() -> None:
    source = Source(_hours(10, 9, 8, 7, 6, 5), page_size=2)
    first_page = next(p for p in windowed_pages({}, PLAN, NOW, source.fetch) if p[1]["window"])
    assert first_page[1]["window"]["page"] is not None
    source.reject_tokens = True
    source.page_size = 100  # the restarted window is read in one page
    resumed = list(windowed_pages(first_page[1], PLAN, NOW, source.fetch))
    assert {eid for records, *_ in resumed for eid in records} == {eid for _, eid in source.events}


def test_a_pass_at_the_high_water_mark_reads_only_the_overlap() -> None:
    source = Source(_hours(30, 1))
    cursor = {"high_water": "2026-11-20T12:00:00Z", "window": None}
    pages = list(windowed_pages(cursor, PLAN, NOW + timedelta(minutes=5), source.fetch))
    assert [eid for records, *_ in pages for eid in records] == ["e1"]


def test_reading_ahead_hands_over_the_same_pages_in_order_and_raises_where_the_source_did() -> None:
    def source() -> Any:
        yield from range(5)
        raise StalePageToken("page 5 refused")

    got: list[int] = []
    with pytest.raises(StalePageToken, match="page 5"):
        for item in read_ahead(source(), depth=2):
            got.append(item)
    assert got == [0, 1, 2, 3, 4]


def test_a_consumer_that_stops_early_stops_the_reader_and_closes_its_source() -> None:
    produced: list[int] = []
    closed = threading.Event()

    def source() -> Any:
        try:
            for i in range(1000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    pages = read_ahead(source(), depth=1)
    assert next(pages) == 0
    pages.close()
    assert closed.wait(timeout=30)
    assert len(produced) <= 3  # one handed over, at most one waiting, one being made
