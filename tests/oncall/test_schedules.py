"""Schedules: rotations across time zones, restrictions, overrides, gaps, iCalendar round trips, files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oncall.errors import OncallInputError
from oncall.files import load_file, parse_text, validate
from oncall.ical import export_ical, import_ical, on_call_in_ical
from oncall.schedules import coverage, next_shift, on_call_at
from oncall.spec import Schedule

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


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    zone=st.sampled_from(ZONES),
    rotation=st.sampled_from(["daily", "weekly", "custom"]),
    hours=st.integers(min_value=4, max_value=36),
    handoff=st.integers(min_value=0, max_value=23),
    overrides=st.lists(
        st.tuples(st.integers(0, 89 * 24), st.integers(1, 48), st.sampled_from(["chen", "dana"])), max_size=4
    ),
    probes=st.lists(st.integers(0, 90 * 24 * 60 - 1), min_size=20, max_size=20),
)
def test_the_icalendar_export_gives_the_same_answer_over_90_days(
    zone, rotation, hours, handoff, overrides, probes
):
    start = utc(2026, 1, 5)
    spec = schedule(
        timezone=zone,
        layers=[
            {
                "name": "a",
                "users": ["alice", "bob"],
                "rotation": rotation,
                "shift_hours": hours if rotation == "custom" else None,
                "start": f"2026-01-01T{handoff:02d}:00:00",
            },
            {
                "name": "b",
                "users": ["chen"],
                "rotation": "daily",
                "start": "2026-01-01T00:00:00",
                "restrictions": [{"days": ["sat", "sun"], "start": "20:00", "end": "08:00"}],
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
    feed = export_ical(spec, start, start + timedelta(days=90))
    for minute in probes:
        moment = start + timedelta(minutes=minute)
        expected = on_call_at(spec, moment)
        assert on_call_in_ical(feed, moment) == ({expected} if expected else set()), moment


def test_an_imported_feed_answers_like_the_schedule_it_came_from():
    spec = schedule()
    start = utc(2026, 3, 2)
    imported = import_ical(
        "copy", export_ical(spec, start, start + timedelta(days=28)), start, start + timedelta(days=28)
    )
    for hour in range(0, 28 * 24, 5):
        moment = start + timedelta(hours=hour)
        assert on_call_at(imported, moment) == on_call_at(spec, moment)


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
