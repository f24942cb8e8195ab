"""Office 365 Management Activity API: subscriptions, content listings paged by NextPageUri, blobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.simulator.conftest import MANAGE_SCOPE


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S")


def list_content(session, info, content_type: str, start: datetime, end: datetime) -> tuple[list[dict], int]:
    url = f"{info['m365.management_feed_url']}/subscriptions/content"
    response = session.get(
        url, params={"contentType": content_type, "startTime": iso(start), "endTime": iso(end)}
    )
    blobs, pages = [], 0
    while True:
        assert response.status_code == 200, response.text
        blobs.extend(response.json())
        pages += 1
        next_page = response.headers.get("NextPageUri")
        if not next_page:
            return blobs, pages
        response = session.get(next_page)


def test_content_must_be_subscribed_first(simulator, graph):
    info = simulator.info
    session = graph(info, scopes=MANAGE_SCOPE)
    end = datetime.now(UTC)

    response = session.get(
        f"{info['m365.management_feed_url']}/subscriptions/content",
        params={
            "contentType": "Audit.Exchange",
            "startTime": iso(end - timedelta(hours=3)),
            "endTime": iso(end),
        },
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "AF20022"


def test_a_day_of_blobs_pages_through_next_page_uri_and_holds_every_record_once(make_simulator, graph):
    sim = make_simulator(start="2026-03-02T00:00:00Z", paging={"management_blobs": 5})
    info = sim.info
    session = graph(info, scopes=MANAGE_SCOPE)
    feed = info["m365.management_feed_url"]
    for content_type in ("Audit.AzureActiveDirectory", "Audit.Exchange", "Audit.SharePoint", "Audit.General"):
        assert (
            session.post(f"{feed}/subscriptions/start", params={"contentType": content_type}).status_code
            == 200
        )
    end = datetime(2026, 3, 9, 1, tzinfo=UTC)  # the last hour's blob is created at 00:00 on the 9th

    records, pages = [], 0
    for content_type in ("Audit.AzureActiveDirectory", "Audit.Exchange", "Audit.SharePoint", "Audit.General"):
        for day in range(7):
            blobs, used = list_content(
                session, info, content_type, end - timedelta(days=day + 1), end - timedelta(days=day)
            )
            pages += used
            for blob in blobs:
                records.extend(session.get(blob["contentUri"]).json())

    ids = [r["Id"] for r in records]
    assert pages >= 3 * 4
    assert len(ids) == len(set(ids)) == sim.events("m365:unified_audit")["count"]


def test_the_inbox_rule_of_the_takeover_is_in_an_exchange_blob(make_simulator, graph):
    sim = make_simulator(start="2026-03-02T00:00:00Z")
    info = sim.info
    session = graph(info, scopes=MANAGE_SCOPE)
    step = next(s for s in sim.truth["stories"][0]["steps"] if s["id"] == "inbox_rule")
    at = datetime.fromisoformat(step["at"])
    session.post(
        f"{info['m365.management_feed_url']}/subscriptions/start", params={"contentType": "Audit.Exchange"}
    )

    blobs, _ = list_content(session, info, "Audit.Exchange", at - timedelta(hours=1), at + timedelta(hours=3))
    records = [r for blob in blobs for r in session.get(blob["contentUri"]).json()]

    rule = next(r for r in records if r["Id"] == step["events"][0]["id"])
    assert rule["Operation"] == "New-InboxRule"
    assert {p["Name"]: p["Value"] for p in rule["Parameters"]}["ForwardTo"].endswith("proton-mail.example")


def test_windows_over_24_hours_or_older_than_7_days_are_refused(simulator, graph):
    info = simulator.info
    session = graph(info, scopes=MANAGE_SCOPE)
    url = f"{info['m365.management_feed_url']}/subscriptions/content"
    session.post(
        f"{info['m365.management_feed_url']}/subscriptions/start", params={"contentType": "Audit.General"}
    )
    now = datetime.now(UTC)

    too_long = session.get(
        url,
        params={
            "contentType": "Audit.General",
            "startTime": iso(now - timedelta(hours=30)),
            "endTime": iso(now),
        },
    )
    too_old = session.get(
        url,
        params={
            "contentType": "Audit.General",
            "startTime": iso(now - timedelta(days=9)),
            "endTime": iso(now - timedelta(days=8, hours=12)),
        },
    )

    assert too_long.status_code == too_old.status_code == 400


def test_late_events_land_in_later_blobs_not_in_their_own_hour(make_simulator, graph):
    sim = make_simulator(start="2026-03-02T00:00:00Z", faults="late=0.2:7200@m365:unified_audit")
    info = sim.info
    session = graph(info, scopes=MANAGE_SCOPE)
    session.post(
        f"{info['m365.management_feed_url']}/subscriptions/start", params={"contentType": "Audit.SharePoint"}
    )
    end = datetime(2026, 3, 8, 18, tzinfo=UTC)

    blobs, _ = list_content(session, info, "Audit.SharePoint", end - timedelta(hours=20), end)
    late = 0
    for blob in blobs:
        created = datetime.fromisoformat(blob["contentCreated"])
        for record in session.get(blob["contentUri"]).json():
            when = datetime.fromisoformat(record["CreationTime"] + "+00:00")
            late += created - when > timedelta(hours=1, minutes=1)

    assert late > 0
