"""Load per responder over a period — hours on call, pages, night pages (in the person's own zone),
MTTA — the figures a lead reads to spread the burden: two P1s paged on the simulated clock, one at
night in Paris, one by day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.audit import Actor, Channel
from oncall import acknowledge, run_due
from oncall.service import responder_load
from tests.oncall.conftest import oncall_document

NIGHT_IN_PARIS = datetime(2026, 3, 2, 22, 30, tzinfo=UTC)  # 23:30 in Paris, 17:30 in New York
DAY_IN_PARIS = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)  # 13:00 in Paris
WEEK = (datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC))


def test_load_counts_hours_pages_and_night_pages_per_responder(
    db, settings, paging_sim, smtp, configure, make_incident
):
    configure(oncall_document(paging_sim, smtp[0].port))
    night = make_incident(first_seen=NIGHT_IN_PARIS - timedelta(minutes=10)).id
    # At night alice (on call for the schedule's first week) does not answer; bob is paged at 5 minutes.
    run_due(db, settings, now=NIGHT_IN_PARIS)
    run_due(db, settings, now=NIGHT_IN_PARIS + timedelta(minutes=5))
    with db.session() as session:
        acknowledge(
            session,
            incident_id=night,
            actor=Actor("principal:bob", Channel.API),
            via="api",
            now=NIGHT_IN_PARIS + timedelta(minutes=6),
        )
    day = make_incident(first_seen=DAY_IN_PARIS - timedelta(minutes=10)).id
    run_due(db, settings, now=DAY_IN_PARIS)
    with db.session() as session:
        acknowledge(
            session,
            incident_id=day,
            actor=Actor("responder:alice", Channel.API),
            via="sms",
            now=DAY_IN_PARIS + timedelta(minutes=2),
        )

    with db.session(readonly=True) as session:
        rows = {row["responder"]: row for row in responder_load(session, *WEEK)}

    # The weekly layer starts Monday 09:00 in Paris (08:00 UTC): alice holds the rest of the week.
    assert rows["alice"]["hours_on_call"] == 6 * 24 + 16
    assert rows["chen"]["hours_on_call"] == 0 and rows["bob"]["hours_on_call"] == 0
    # Alice's SMS and Slack DM of one level are one page; the night one counts in her zone.
    assert (rows["alice"]["pages"], rows["alice"]["night_pages"]) == (2, 1)
    # Bob's call came at 17:35 in New York: a page, but not a night page.
    assert (rows["bob"]["pages"], rows["bob"]["night_pages"]) == (1, 0)
    assert (rows["alice"]["acknowledged"], rows["alice"]["mtta_seconds"]) == (1, 120.0)
    assert (rows["bob"]["acknowledged"], rows["bob"]["mtta_seconds"]) == (1, 360.0)
    assert (rows["chen"]["pages"], rows["chen"]["acknowledged"]) == (0, 0)
