"""Overrides and swaps on a stored schedule: a new version of its spec, audited; the on-call answer
follows them; a swap covers only the giver's stretches; bad input is refused by name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from core.audit import Actor
from core.models import AuditRecord
from oncall.errors import OncallInputError
from oncall.schedules import on_call_at
from oncall.spec import Override
from oncall.store import add_overrides, get_schedule, load_document, swap_overrides, trade_overrides
from tests.oncall.test_slack_buttons import live_api  # noqa: F401 - the fixture

LEAD = Actor.cli("principal:lead")
DOCUMENT = {
    "responders": [{"name": n, "email": f"{n}@example.com"} for n in ("alice", "bob", "chen")],
    "schedules": [
        {
            "name": "primary",
            "timezone": "UTC",
            "layers": [
                {
                    "name": "daily",
                    "users": ["alice", "bob"],
                    "rotation": "daily",
                    "start": "2026-03-02T09:00:00",
                }
            ],
        }
    ],
}
MON_10 = datetime(2026, 3, 2, 10, tzinfo=UTC)  # alice's day; Tuesday is bob's


def test_a_swap_hands_only_the_givers_stretches_to_the_taker(db, configure):
    configure(DOCUMENT)
    with db.session() as session:
        schedule = get_schedule(session, "primary")
        wanted = swap_overrides(schedule, "alice", "chen", MON_10, MON_10 + timedelta(days=2))
        updated = add_overrides(session, "primary", wanted, actor=LEAD, reason="alice at the dentist")
    # alice's Monday (from 10:00) and Wednesday 09:00-10:00 go to chen; bob's Tuesday stays his
    assert on_call_at(updated, MON_10 + timedelta(hours=1)) == "chen"
    assert on_call_at(updated, MON_10 + timedelta(days=1)) == "bob"
    assert on_call_at(updated, MON_10 + timedelta(days=2, minutes=-30)) == "chen"
    assert on_call_at(updated, MON_10 + timedelta(days=2, hours=1)) == "alice"
    with db.session(readonly=True) as session:
        assert on_call_at(get_schedule(session, "primary"), MON_10 + timedelta(hours=1)) == "chen"
        [audit] = session.exec(
            select(AuditRecord).where(
                AuditRecord.action == "oncall.definition.updated", AuditRecord.object_id == "primary"
            )
        ).all()
    assert audit.actor == "principal:lead" and audit.details["reason"] == "alice at the dentist"
    assert [a["user"] for a in audit.details["added"]] == ["chen", "chen"]


def test_bad_overrides_are_refused_by_name_and_change_nothing(db, configure):
    configure(DOCUMENT)
    with db.session() as session:
        schedule = get_schedule(session, "primary")
        with pytest.raises(OncallInputError, match="unknown responder 'zoe'"):
            add_overrides(
                session,
                "primary",
                [Override(user="zoe", start=MON_10, end=MON_10 + timedelta(hours=1))],
                actor=LEAD,
                reason="",
            )
        with pytest.raises(OncallInputError, match="chen is not on call"):
            swap_overrides(schedule, "chen", "bob", MON_10, MON_10 + timedelta(hours=3))
    with db.session(readonly=True) as session:
        assert list(get_schedule(session, "primary").overrides) == []


def test_a_two_way_swap_trades_two_peoples_days(db, settings, database_url, configure):
    """alice takes bob's Tuesday and bob takes alice's Wednesday in return, from the CLI; audited."""
    import os
    import subprocess
    import sys

    configure(DOCUMENT)
    tuesday, wednesday = MON_10 + timedelta(days=1), MON_10 + timedelta(days=2)  # bob's, alice's (10:00)
    cli = subprocess.run(
        [
            sys.executable,
            "-c",
            "from cli.main import run; run()",
            "oncall",
            "override",
            "primary",
            "--user",
            "alice",
            "--swap-with",
            "bob",
            "--start",
            "2026-03-03T09:00:00Z",
            "--end",
            "2026-03-04T09:00:00Z",
            "--in-return",
            "2026-03-04T09:00:00Z",
            "2026-03-05T09:00:00Z",
            "--reason",
            "bob's wedding",
        ],
        env={
            **os.environ,
            "TENANTGUARD_DATABASE_URL": database_url,
            "TENANTGUARD_DATA_DIR": str(settings.data_dir),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr + cli.stdout
    with db.session(readonly=True) as session:
        traded = get_schedule(session, "primary")
        [audit] = session.exec(
            select(AuditRecord).where(
                AuditRecord.action == "oncall.definition.updated", AuditRecord.object_id == "primary"
            )
        ).all()
    assert on_call_at(traded, tuesday) == "alice" and on_call_at(traded, wednesday) == "bob"
    # The days around them are untouched.
    assert on_call_at(traded, MON_10) == "alice" and on_call_at(traded, MON_10 + timedelta(days=3)) == "bob"
    assert on_call_at(traded, MON_10 + timedelta(days=4)) == "alice"
    assert [a["user"] for a in audit.details["added"]] == ["alice", "bob"]
    assert audit.details["reason"] == "bob's wedding"
    # A trade needs the other person to be on call in the window given back.
    with pytest.raises(OncallInputError, match="bob is not on call"):
        trade_overrides(
            traded,
            "alice",
            "bob",
            (tuesday, tuesday + timedelta(hours=1)),
            (MON_10, MON_10 + timedelta(hours=1)),
        )


def test_the_api_takes_a_two_way_swap_and_refuses_half_of_one(db, configure, live_api):  # noqa: F811
    import requests

    from tests import factories

    configure(DOCUMENT)
    admin = factories.make_principal(db, "admin", name="lead", pepper="p" * 40)
    url = f"{live_api}/oncall/schedules/primary/overrides"
    trade = {
        "user": "alice",
        "swap_with": "bob",
        "start": "2026-03-03T09:00:00Z",
        "end": "2026-03-04T09:00:00Z",
        "in_return_start": "2026-03-04T09:00:00Z",
        "in_return_end": "2026-03-05T09:00:00Z",
    }
    half = {key: value for key, value in trade.items() if key != "in_return_end"}
    refused = requests.post(url, json=half, headers=admin.headers, timeout=30)
    answer = requests.post(url, json=trade, headers=admin.headers, timeout=30)

    assert refused.status_code == 422 and "go together" in refused.text
    assert answer.status_code == 200, answer.text
    assert [a["user"] for a in answer.json()["added"]] == ["alice", "bob"]
    with db.session(readonly=True) as session:
        traded = get_schedule(session, "primary")
    assert on_call_at(traded, MON_10 + timedelta(days=1)) == "alice"
    assert on_call_at(traded, MON_10 + timedelta(days=2)) == "bob"


RECURRING_FEED = b"""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//example//pagerduty-like//EN
BEGIN:VEVENT
UID:weekend@example
DTSTAMP:20260301T000000Z
DTSTART;TZID=Europe/Paris:20260307T090000
DTEND;TZID=Europe/Paris:20260309T090000
RRULE:FREQ=WEEKLY;COUNT=4
SUMMARY:On call: bob
END:VEVENT
BEGIN:VTIMEZONE
TZID:Europe/Paris
BEGIN:STANDARD
DTSTART:19701025T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700329T020000
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
END:VTIMEZONE
END:VCALENDAR
"""


def test_an_icalendar_feed_is_imported_as_a_schedule_by_api_and_cli(
    db,
    settings,
    database_url,
    configure,
    tmp_path,
    live_api,  # noqa: F811
):
    import os
    import subprocess
    import sys

    import requests

    from tests import factories

    configure(DOCUMENT)
    admin = factories.make_principal(db, "admin", name="lead", pepper="p" * 40)
    span = {"start": "2026-03-02T00:00:00Z", "end": "2026-03-30T00:00:00Z"}
    feed = requests.get(
        f"{live_api}/oncall/schedules/primary/ical", params=span, headers=admin.headers, timeout=30
    )
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")

    def put(name: str, body: bytes) -> requests.Response:
        return requests.put(
            f"{live_api}/oncall/schedules/{name}/ical",
            params=span,
            data=body,
            headers={**admin.headers, "Content-Type": "text/calendar"},
            timeout=30,
        )

    copied = put("primary-copy", feed.content)
    stranger = put("strangers", feed.content.replace(b"On call: bob", b"On call: zoe"))
    assert copied.status_code == 200 and copied.json()["created"] == ["schedule/primary-copy"], copied.text
    assert stranger.status_code == 422 and "unknown responder 'zoe'" in stranger.text
    assert put("junk", b"not a calendar").status_code == 422

    # A recurring feed (weekends in Paris, four weeks) through the CLI, RRULE expanded.
    path = tmp_path / "weekends.ics"
    path.write_bytes(RECURRING_FEED)
    cli = subprocess.run(
        [
            sys.executable,
            "-c",
            "from cli.main import run; run()",
            "oncall",
            "ical-import",
            "weekends",
            str(path),
        ]
        + ["--start", "2026-03-02T00:00:00Z", "--days", "60", "--timezone", "Europe/Paris"],
        env={
            **os.environ,
            "TENANTGUARD_DATABASE_URL": database_url,
            "TENANTGUARD_DATA_DIR": str(settings.data_dir),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0 and "weekends: created" in cli.stdout, cli.stderr + cli.stdout

    with db.session(readonly=True) as session:
        primary, copy = get_schedule(session, "primary"), get_schedule(session, "primary-copy")
        weekends = get_schedule(session, "weekends")
        assert [s.name for s in load_document(session).schedules] == ["primary", "primary-copy", "weekends"]
    for hour in range(0, 28 * 24, 7):
        moment = datetime(2026, 3, 2, tzinfo=UTC) + timedelta(hours=hour)
        assert on_call_at(copy, moment) == on_call_at(primary, moment), moment
    assert len(weekends.overrides) == 4
    # Saturday 09:00 in Paris is 08:00 UTC; the last weekend ends on Monday 30 March at 09:00 summer
    # time (07:00 UTC): the clocks changed during it.
    assert on_call_at(weekends, datetime(2026, 3, 7, 8, tzinfo=UTC)) == "bob"
    assert on_call_at(weekends, datetime(2026, 3, 7, 7, 59, tzinfo=UTC)) is None
    assert on_call_at(weekends, datetime(2026, 3, 28, 8, tzinfo=UTC)) == "bob"
    assert on_call_at(weekends, datetime(2026, 3, 30, 7, 0, tzinfo=UTC)) is None  # Monday 09:00 CEST
    assert on_call_at(weekends, datetime(2026, 3, 30, 6, 59, tzinfo=UTC)) == "bob"
    assert on_call_at(weekends, datetime(2026, 4, 4, 8, tzinfo=UTC)) is None  # COUNT=4: over
