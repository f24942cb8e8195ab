"""Schedules: rotations across time zones, restrictions, overrides, gaps, iCalendar round trips, files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
import pytest
import recurring_ical_events
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oncall.errors import OncallInputError
from oncall.files import load_file, parse_text, validate
from oncall.ical import export_ical, import_ical, on_call_in_ical
from oncall.schedules import coverage, next_shift, on_call_at
from oncall.spec import Schedule
from oncall.store import swap_overrides

PEOPLE = [{"name": n, "email": f"{n}@example.com"} for n in ("alice", "bob", "chen", "dana")]


def schedule(**fields) -> Schedule:
    base = {
        "name": "primary",
        "timezone": "Europe/Paris",
        "layers": [
            {"name": "week", "users": ["alice", "bob"], "rotation": "weekly", "start": "2026-03-02T09:00:00"}
        ],
    }
    base.update(fields)
    return Schedule.model_validate(base)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_a_weekly_handoff_keeps_its_local_time_across_daylight_saving():
    paris = schedule()
    # Paris moves to summer time on 29 March 2026: the 09:00 handoff is 08:00 UTC before, 07:00 after.
    assert on_call_at(paris, utc(2026, 3, 23, 7, 59)) == "alice"
    assert on_call_at(paris, utc(2026, 3, 23, 8, 0)) == "bob"
    assert on_call_at(paris, utc(2026, 3, 30, 6, 59)) == "bob"
    assert on_call_at(paris, utc(2026, 3, 30, 7, 0)) == "alice"
    upcoming = next_shift(paris, utc(2026, 3, 24, 12))
    assert upcoming is not None and upcoming.user == "alice" and upcoming.start == utc(2026, 3, 30, 7)


def test_follow_the_sun_layers_with_restrictions_leave_the_gaps_they_should():
    sun = schedule(
        timezone="UTC",
        layers=[
            {
                "name": "emea",
                "users": ["alice"],
                "rotation": "daily",
                "start": "2026-03-02T00:00:00",
                "restrictions": [
                    {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "07:00", "end": "15:00"}
                ],
            },
            {
                "name": "amer",
                "users": ["bob"],
                "rotation": "daily",
                "start": "2026-03-02T00:00:00",
                "restrictions": [
                    {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "15:00", "end": "23:00"}
                ],
            },
        ],
    )
    found = coverage(sun, utc(2026, 3, 2), utc(2026, 3, 3))
    assert [(s.start.hour, s.end.hour if s.end.day == 2 else 24, s.user) for s in found.shifts] == [
        (0, 7, None),
        (7, 15, "alice"),
        (15, 23, "bob"),
        (23, 24, None),
    ]
    assert [g.hours for g in found.gaps] == [7, 1]
    assert found.double == []


def test_an_override_wins_and_overlapping_layers_are_reported_as_double_coverage():
    both = schedule(
        layers=[
            {"name": "base", "users": ["alice"], "rotation": "weekly", "start": "2026-03-02T09:00:00"},
            {
                "name": "shadow",
                "users": ["chen"],
                "rotation": "daily",
                "start": "2026-03-02T09:00:00",
                "restrictions": [{"days": ["mon"], "start": "09:00", "end": "12:00"}],
            },
        ],
        overrides=[{"user": "dana", "start": "2026-03-03T10:00:00Z", "end": "2026-03-03T11:00:00Z"}],
    )
    assert on_call_at(both, utc(2026, 3, 2, 9)) == "chen"  # the later layer wins
    assert on_call_at(both, utc(2026, 3, 3, 10, 30)) == "dana"
    found = coverage(both, utc(2026, 3, 2), utc(2026, 3, 9))
    assert [(d.start, d.end) for d in found.double] == [(utc(2026, 3, 2, 8), utc(2026, 3, 2, 11))]


ZONES = ["America/Los_Angeles", "Europe/London", "Asia/Kolkata"]
NINETY_DAYS = timedelta(days=90)


def _feed_intervals(calendar, start: datetime, end: datetime) -> list[tuple[datetime, datetime, str]]:
    """The feed's shifts as recurring-ical-events expands them: nothing of ours reads the feed."""
    return [
        (
            e["DTSTART"].dt.astimezone(UTC),
            e["DTEND"].dt.astimezone(UTC),
            str(e["SUMMARY"]).removeprefix("On call: "),
        )
        for e in calendar.between(start, end)
    ]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    zones=st.permutations(ZONES),
    rotation=st.sampled_from(["daily", "weekly", "custom"]),
    hours=st.integers(min_value=4, max_value=36),
    handoffs=st.tuples(st.integers(0, 23), st.integers(0, 23), st.integers(0, 23)),
    windows=st.tuples(st.integers(5, 10), st.integers(6, 10)),
    overrides=st.lists(
        st.tuples(st.integers(0, 89 * 24), st.integers(1, 48), st.sampled_from(["dana", "erin"])), max_size=4
    ),
    swap=st.tuples(st.integers(0, 88 * 24), st.integers(1, 72)),
    probes=st.lists(st.integers(0, 90 * 24 * 60 - 1), min_size=10, max_size=10),
)
def test_three_zones_with_overrides_give_the_icalendar_exports_answer_over_90_days(
    zones, rotation, hours, handoffs, windows, overrides, swap, probes
):
    """Follow-the-sun across three zones (a round-the-clock layer in one, working-hours layers in the
    two others, each in its own zone across its own daylight-saving change) with overrides and a
    swap: at every moment of the 90 days the schedule and its iCalendar feed, expanded by
    recurring-ical-events alone, name the same person (or nobody)."""
    start = utc(2026, 1, 5)
    end = start + NINETY_DAYS
    base, west, east = zones
    spec = schedule(
        timezone=base,
        layers=[
            {
                "name": "around-the-clock",
                "users": ["alice", "bob"],
                "rotation": rotation,
                "shift_hours": hours if rotation == "custom" else None,
                "start": f"2026-01-01T{handoffs[0]:02d}:00:00",
            },
            {
                "name": "office-1",
                "users": ["chen", "dana"],
                "rotation": "daily",
                "timezone": west,
                "start": f"2026-01-01T{handoffs[1]:02d}:30:00",
                "restrictions": [
                    {
                        "days": ["mon", "tue", "wed", "thu", "fri"],
                        "start": f"{windows[0]:02d}:00",
                        "end": "17:00",
                    }
                ],
            },
            {
                "name": "office-2",
                "users": ["erin"],
                "rotation": "weekly",
                "timezone": east,
                "start": f"2026-01-01T{handoffs[2]:02d}:00:00",
                "restrictions": [{"days": ["sat", "sun"], "start": f"{windows[1]:02d}:00", "end": "02:00"}],
            },
        ],
        overrides=[
            {
                "user": who,
                "start": (start + timedelta(hours=h)).isoformat(),
                "end": (start + timedelta(hours=h + n)).isoformat(),
            }
            for h, n, who in overrides
        ],
    )
    # A swap: whoever is on call when it starts hands those stretches to the other of alice and bob.
    lo, hi = start + timedelta(hours=swap[0]), start + timedelta(hours=swap[0] + swap[1])
    giver = on_call_at(spec, lo)
    if giver is not None:
        taker = "bob" if giver == "alice" else "alice"
        traded = swap_overrides(spec, giver, taker, lo, hi)
        spec = spec.model_copy(update={"overrides": [*spec.overrides, *traded]})
        assert on_call_at(spec, lo) == taker

    calendar = recurring_ical_events.of(icalendar.Calendar.from_ical(export_ical(spec, start, end)))
    intervals = _feed_intervals(calendar, start, end)
    # Both sides are constant between their change points: compare at each one (and just before
    # it), which covers every moment of the 90 days, then at a few random minutes through the
    # library's own point query.
    cuts = {start} | {t for a, b, _ in intervals for t in (a, b)}
    cuts |= {t for s in coverage(spec, start, end).shifts for t in (s.start, s.end)}
    moments = sorted({t for c in cuts if start <= c < end for t in (c, max(start, c - timedelta(seconds=1)))})
    pending, running = sorted(intervals), []
    for moment in moments:  # a sweep: the feed's events running at each moment, overlaps included
        while pending and pending[0][0] <= moment:
            running.append(pending.pop(0))
        running = [event for event in running if event[1] > moment]
        expected = on_call_at(spec, moment)
        assert {who for _, _, who in running} == ({expected} if expected else set()), moment
    for minute in probes:
        moment = start + timedelta(minutes=minute)
        expected = on_call_at(spec, moment)
        named = {str(e["SUMMARY"]).removeprefix("On call: ") for e in calendar.at(moment)}
        assert named == ({expected} if expected else set()), moment


def test_each_layer_keeps_its_own_zones_working_hours():
    sun = schedule(
        timezone="UTC",
        layers=[
            {
                "name": "kolkata",
                "users": ["bob"],
                "rotation": "daily",
                "timezone": "Asia/Kolkata",
                "start": "2026-03-02T00:00:00",
                "restrictions": [
                    {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
                ],
            },
            {
                "name": "london",
                "users": ["alice"],
                "rotation": "daily",
                "timezone": "Europe/London",
                "start": "2026-03-02T00:00:00",
                "restrictions": [
                    {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
                ],
            },
        ],
    )
    # Kolkata's 09:00-17:00 is 03:30-11:30 UTC; London's 09:00-17:00 is 09:00-17:00 UTC in March,
    # 08:00-16:00 after the clocks change (29 March). London is the later layer: it wins the overlap.
    monday = coverage(sun, utc(2026, 3, 2), utc(2026, 3, 3))
    assert [(s.start.strftime("%H:%M"), s.user) for s in monday.shifts] == [
        ("00:00", None),
        ("03:30", "bob"),
        ("09:00", "alice"),
        ("17:00", None),
    ]
    assert [(d.start.strftime("%H:%M"), d.end.strftime("%H:%M")) for d in monday.double] == [
        ("09:00", "11:30")
    ]
    assert on_call_at(sun, utc(2026, 3, 30, 8, 30)) == "alice"
    assert on_call_at(sun, utc(2026, 3, 30, 16, 30)) is None
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        schedule(
            layers=[
                {"name": "x", "users": ["alice"], "timezone": "Mars/Olympus", "start": "2026-03-02T00:00:00"}
            ]
        )


def test_an_imported_feed_answers_like_the_schedule_it_came_from():
    spec = schedule()
    start = utc(2026, 3, 2)
    feed = export_ical(spec, start, start + timedelta(days=28))
    imported = import_ical("copy", feed, start, start + timedelta(days=28))
    for hour in range(0, 28 * 24, 5):
        moment = start + timedelta(hours=hour)
        assert on_call_at(imported, moment) == on_call_at(spec, moment)
    assert on_call_in_ical(feed, utc(2026, 3, 10)) == {"bob"}


def test_a_bad_file_is_refused_naming_the_file_and_the_field(tmp_path):
    path = tmp_path / "oncall.yaml"
    path.write_text(
        "responders:\n  - {name: alice, email: alice@example.com}\n"
        "schedules:\n  - name: primary\n    timezone: Mars/Olympus\n    layers: []\n"
    )
    with pytest.raises(OncallInputError) as error:
        load_file(path)
    assert str(path) in str(error.value) and "schedules.0.timezone" in str(error.value)
    assert "Mars/Olympus" in str(error.value)


def test_unknown_references_name_the_policy_step():
    with pytest.raises(OncallInputError, match=r"policy 'p' step 1: unknown schedule 'nope'"):
        validate(
            {
                "responders": PEOPLE,
                "policies": [{"name": "p", "steps": [{"targets": [{"type": "schedule", "name": "nope"}]}]}],
            },
            where="body",
        )


def test_yaml_aliases_depth_and_size_are_bounded():
    with pytest.raises(OncallInputError, match="anchors"):
        parse_text("a: &x [1, 2]\nb: *x\n", where="f.yaml")
    with pytest.raises(OncallInputError, match="nested"):
        parse_text("a: " + "[" * 40 + "]" * 40, where="f.yaml")
    with pytest.raises(OncallInputError, match="larger than"):
        parse_text("a: '" + "x" * (2 << 20) + "'", where="f.yaml")


def test_toml_files_work_too(tmp_path):
    path = tmp_path / "oncall.toml"
    path.write_text(
        '[[responders]]\nname = "alice"\nemail = "alice@example.com"\n'
        '[[schedules]]\nname = "primary"\n[[schedules.layers]]\nname = "w"\nusers = ["alice"]\n'
        'rotation = "daily"\nstart = 2026-03-02T09:00:00\n'
    )
    document = load_file(path)
    assert on_call_at(document.schedules[0], utc(2026, 3, 3)) == "alice"
