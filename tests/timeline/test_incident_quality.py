"""What an incident says: it names the victim (not the first target of a spray), its counts agree,
and its grouping reasons never read "the same 0 targets within 0 s"."""

from __future__ import annotations

from tests.factories import at
from timeline import build_incidents

TARGETS = [f"t{i}@northwind.example" for i in range(16)]
VICTIM = "dan@northwind.example"


def test_a_spray_then_takeover_names_the_victim_and_counts_agree(
    db, settings, make_finding, incidents_of
) -> None:
    # given a spray naming 17 accounts (the victim among them, not first) from one IP
    make_finding("Password spray from 203.0.113.66", people=[*TARGETS, VICTIM], ips=["203.0.113.66"])
    # and a second spray from the same IP over mostly the same accounts, a few seconds later
    make_finding(
        "Password spray from 203.0.113.66 against 17 accounts",
        people=[VICTIM, *TARGETS],
        ips=["203.0.113.66"],
        first_seen=at(0),
    )
    # then the takeover of one of them
    make_finding("MFA fatigue", people=[VICTIM], ips=["203.0.113.66"], first_seen=at(20))
    make_finding("Inbox rule forwards mail", people=[VICTIM], first_seen=at(50))
    build_incidents(db, settings, notify=False, now=at(days=1))
    [incident] = incidents_of()
    # the title names the victim, and the people list leads with them
    assert incident.title.startswith("Password spray from 203.0.113.66 — dan@northwind.example")
    assert incident.entities["people"][0] == VICTIM
    # the priority line and the summary count the same people
    spread = incident.priority_factors["factors"]["spread"]
    assert spread["why"].startswith("1 person, 1 provider (m365)") and spread["people"] == [VICTIM]
    assert f"about {VICTIM} (16 more people named as targets)" in incident.summary
    # and the grouping reasons say what was shared, never "0 targets within 0 s"
    texts = [r["text"] for r in incident.grouping]
    assert not [t for t in texts if "0 targets" in t or "within 0 s" in t]
    assert any("17 of its 17 targets" in t or "same source IP 203.0.113.66" in t for t in texts)
