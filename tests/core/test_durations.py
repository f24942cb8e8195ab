"""The one duration syntax, shared by rules, the approval policy, settings and CLI options."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.durations import DurationError, format_duration, parse_duration, since, until

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("2h30m", timedelta(hours=2, minutes=30)),
        ("1d", timedelta(days=1)),
        ("2w", timedelta(weeks=2)),
        (" 1h 30m ", timedelta(minutes=90)),
        ("250ms", timedelta(milliseconds=250)),
        ("1.5h", timedelta(minutes=90)),
        ("45", timedelta(seconds=45)),
        (30, timedelta(seconds=30)),
        (timedelta(hours=1), timedelta(hours=1)),
    ],
)
def test_the_forms_it_reads(text, expected) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "15x", "m15", "1h foo", "-5m", True, None, [1]])
def test_what_it_refuses_names_the_value_and_the_forms(text) -> None:
    with pytest.raises(DurationError, match="not a duration"):
        parse_duration(text)


def test_a_bare_number_is_in_the_unit_the_caller_names_and_zero_can_be_refused() -> None:
    assert parse_duration(15, bare="m") == timedelta(minutes=15)
    assert parse_duration("0s") == timedelta()
    with pytest.raises(DurationError, match="above 0"):
        parse_duration("0m", positive=True)


def test_format_reads_back() -> None:
    for value in (timedelta(seconds=90), timedelta(days=9), timedelta(hours=4), timedelta(0)):
        assert parse_duration(format_duration(value)) == value
    assert format_duration(timedelta(seconds=90)) == "1m30s"


def test_relative_times_need_a_unit() -> None:
    assert since("24h", NOW) == NOW - timedelta(hours=24)
    assert until("2w", NOW) == NOW + timedelta(weeks=2)
    assert since("2026-03-01T00:00:00Z", NOW) is None
    assert since("30", NOW) is None


def test_every_product_parser_is_this_one() -> None:
    from detectors.sigma.loader import parse_duration as sigma_duration
    from remediation.errors import PolicyError
    from remediation.policy import parse_policy

    assert sigma_duration("1h30m") == 5400.0
    assert sigma_duration(15) == 900.0  # bare numbers in rules are minutes
    assert parse_policy({"approval_ttl": "2h30m"}).approval_ttl == timedelta(hours=2, minutes=30)
    with pytest.raises(PolicyError, match="approval_ttl: 'soon' is not a duration"):
        parse_policy({"approval_ttl": "soon"})


def test_parse_when_reads_every_form_a_person_types() -> None:
    from datetime import UTC, datetime, timedelta

    from core.durations import TimeError, parse_when

    now = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)
    midnight = datetime(2026, 3, 4, tzinfo=UTC)
    assert parse_when("7d", now) == now - timedelta(days=7)
    assert parse_when("30d", now, ahead=True) == now + timedelta(days=30)
    assert parse_when("yesterday", now) == midnight - timedelta(days=1)
    assert parse_when("Today", now) == midnight
    assert parse_when("tomorrow", now, ahead=True) == midnight + timedelta(days=1)
    assert parse_when("now", now) == now
    assert parse_when("2026-03-01", now) == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_when("2026-03-01T09:00:00+01:00", now) == datetime(2026, 3, 1, 8, tzinfo=UTC)
    assert parse_when("2026-03-01T09:00:00.1234567Z", now).microsecond == 123456
    for bad in ("last tuesday", "", "7", "tomorrow"):
        with pytest.raises(TimeError, match="is not a time"):
            parse_when(bad, now)
