"""The Reports API `takeout` application (Google Takeout of a user's data) is collected like the
other Reports applications: one event per activity event, keyed by the Reports id, target the user
whose data left."""

from __future__ import annotations

from sqlmodel import select

from collectors import collect_once, connections_from_simulator
from collectors.connections import sync_connections
from core.db import Database
from core.models import Event
from core.settings import Settings


def test_the_takeout_stream_stores_each_takeout_event_of_the_story(
    db: Database, settings: Settings, settled_simulator
) -> None:
    # given the google_delegated_admin story, whose new super admin takes out the helpdesk account
    sim = settled_simulator("google_delegated_admin", users=20, days=3)
    story = sim.truth["stories"][0]
    expected = {e["id"] for s in story["steps"] if s["id"] == "takeout" for e in s["events"]}
    # when only the Google takeout stream is collected
    sync_connections(
        db,
        connections_from_simulator(sim.info, providers=["google"], streams={"google": ["takeout"]}),
        source="simulator",
    )
    report = collect_once(db, settings)
    assert report.ok, [r.error for r in report.failures]
    # then its three events are stored, by the attacker's IP, each naming its Takeout event
    with db.session(readonly=True) as session:
        events = session.exec(select(Event).where(Event.stream == "takeout")).all()
    assert {e.provider_event_id for e in events} == expected
    assert {e.action for e in events} == {
        "STARTED_USER_TAKEOUT",
        "COMPLETED_USER_TAKEOUT",
        "DOWNLOADED_USER_TAKEOUT",
    }
    assert {e.ip for e in events} == set(story["attacker_ips"])
    assert len({e.actor for e in events}) == 1 and events[0].actor in story["people"]
