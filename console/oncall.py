"""The on-call schedule board: who is on call each day, and overrides by drag and drop or by keyboard.

The board is `oncall.schedules.coverage` over a week (or up to four) in the schedule's time zone,
one lane per person, each shift cut at midnight into day blocks. Dragging a block onto another
person's lane submits that block's own form ("Hand to ...", which works with the keyboard and with
scripts off), and the form posts to the same server function the API's
`POST /oncall/schedules/{name}/overrides` calls: `oncall.store.add_overrides`, which checks the
responder, stores a new version of the schedule and writes its audit record in that transaction.
Overrides need `oncall:write`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Path, Query
from fastapi.responses import Response

from console.web import ConsolePage, PageRefused, back_to, render, signed_in
from core.clock import as_utc, utcnow
from core.permissions import Permission
from oncall.errors import OncallError, OncallNotFound
from oncall.schedules import coverage, next_shift, on_call_at
from oncall.spec import Override, Schedule
from oncall.store import add_overrides, get_schedule, load_document

router = APIRouter(prefix="/console/oncall", include_in_schema=False)
ScheduleName = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$")]
MAX_DAYS = 28
NOBODY = ""  # the lane of gaps


@dataclass(frozen=True)
class Block:
    """A shift's part within one day (the schedule's zone): what is dragged and handed over."""

    start: datetime  # UTC
    end: datetime
    user: str | None
    label: str  # local "09:00–24:00"

    @property
    def key(self) -> str:
        return f"{self.start:%Y%m%dT%H%M}-{self.user or 'gap'}"


@dataclass(frozen=True)
class Board:
    schedule: Schedule
    days: list[date]
    lanes: list[str]  # people; NOBODY last when there are gaps
    cells: dict[tuple[str, date], list[Block]]
    begins: datetime  # UTC: the first day's midnight
    ends: datetime  # UTC: the midnight after the last day


def _clock(moment: datetime, zone: ZoneInfo, day: date) -> str:
    local = moment.astimezone(zone)
    return "24:00" if local.date() > day and local.time() == time(0) else local.strftime("%H:%M")


def build_board(schedule: Schedule, first: date, days: int) -> Board:
    zone = ZoneInfo(schedule.timezone)
    span = [first + timedelta(days=n) for n in range(days)]
    bounds = [
        (day, datetime.combine(day, time(0), zone), datetime.combine(day + timedelta(days=1), time(0), zone))
        for day in span
    ]
    begins, ends = as_utc(bounds[0][1]), as_utc(bounds[-1][2])
    found = coverage(schedule, begins, ends)
    cells: dict[tuple[str, date], list[Block]] = {}
    lanes = [u for layer in schedule.layers for u in layer.users]
    lanes += [o.user for o in schedule.overrides]
    for shift in found.shifts:
        for day, lo, hi in bounds:
            a, b = max(as_utc(lo), shift.start), min(as_utc(hi), shift.end)
            if a >= b:
                continue
            label = f"{_clock(a, zone, day)}–{_clock(b, zone, day)}"
            lane = shift.user or NOBODY
            cells.setdefault((lane, day), []).append(Block(a, b, shift.user, label))
            lanes.append(lane)
    ordered = list(dict.fromkeys(u for u in lanes if u != NOBODY))
    if any(lane == NOBODY for lane, _ in cells):
        ordered.append(NOBODY)
    return Board(schedule, span, ordered, cells, begins, ends)


def _schedule(page: ConsolePage, name: str) -> Schedule:
    try:
        with page.ctx.db.session(readonly=True) as session:
            return get_schedule(session, name)
    except OncallNotFound as exc:
        raise PageRefused(str(exc), status=404) from None


@router.get("")
def schedules(page: Annotated[ConsolePage, Depends(signed_in(Permission.ONCALL_READ))]) -> Response:
    with page.ctx.db.session(readonly=True) as session:
        document = load_document(session)
    now = utcnow()
    rows = [(s, on_call_at(s, now), next_shift(s, now)) for s in document.schedules]
    return render(page, page.request, "oncall.html.j2", rows=rows)


@router.get("/{name}")
def schedule_board(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.ONCALL_READ))],
    name: ScheduleName,
    start: Annotated[date | None, Query(description="The first day shown (the schedule's zone).")] = None,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 7,
) -> Response:
    schedule = _schedule(page, name)
    zone = ZoneInfo(schedule.timezone)
    first = start or utcnow().astimezone(zone).date()
    board = build_board(schedule, first, days)
    with page.ctx.db.session(readonly=True) as session:
        people = sorted(r.name for r in load_document(session).responders)
    return render(
        page,
        page.request,
        "oncall_board.html.j2",
        board=board,
        people=people,
        days=days,
        earlier=(first - timedelta(days=days)).isoformat(),
        later=(first + timedelta(days=days)).isoformat(),
        can_override=page.can(Permission.ONCALL_WRITE),
        overrides=[o for o in schedule.overrides if o.end > board.begins and o.start < board.ends],
        zone=zone,
    )


def _moment(value: str, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise PageRefused(f"{what}: {value!r} is not an ISO 8601 time", status=422) from None
    if moment.tzinfo is None:
        raise PageRefused(f"{what}: {value!r} needs a UTC offset", status=422)
    return as_utc(moment)


@router.post("/{name}/overrides")
def add_override(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.ONCALL_WRITE))],
    name: ScheduleName,
    user: Annotated[str, Form(min_length=1, max_length=200)],
    start: Annotated[str, Form(max_length=40)],
    end: Annotated[str, Form(max_length=40)],
    reason: Annotated[str, Form(max_length=300)] = "",
    back: Annotated[str, Form(max_length=10)] = "",
    days: Annotated[int, Form(ge=1, le=MAX_DAYS)] = 7,
) -> Response:
    lo, hi = _moment(start, "start"), _moment(end, "end")
    zone = ZoneInfo(_schedule(page, name).timezone)
    shown = urlencode({k: v for k, v in (("start", back), ("days", str(days))) if v})
    target = f"/console/oncall/{name}?{shown}"
    try:
        wanted = [Override(user=user, start=lo, end=hi)]
    except ValueError as exc:
        return back_to(target, error=f"override: {exc}")
    try:
        with page.ctx.db.session() as session:
            add_overrides(session, name, wanted, actor=page.ctx.actor, reason=reason.strip()[:300])
    except OncallError as exc:
        return back_to(target, error=str(exc))
    return back_to(
        target,
        notice=f"{user} is on call {lo.astimezone(zone):%a %d %b %H:%M}–{hi.astimezone(zone):%a %d %b %H:%M} "
        f"({zone.key}): override added",
    )
