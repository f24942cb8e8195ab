"""Scoring incidents against a simulator-style ground truth."""

from __future__ import annotations

from sqlmodel import select

from core.audit import Actor, Channel
from core.models.event import Event
from core.models.finding import Finding
from core.models.incident import Message
from tests.factories import at
from timeline import build_incidents
from timeline.lifecycle import split
from timeline.quality import score_against_truth


def provider_ids(db, model, column, ids):
    with db.session(readonly=True) as session:
        rows = session.exec(select(model).where(model.id.in_(ids))).all()
        return [{"provider": r.provider, "stream": r.stream, "id": getattr(r, column)} for r in rows]


def test_stories_conversations_and_decoys_are_scored(
    db, settings, make_events, make_finding, make_message
) -> None:
    alice_events = make_events(3, actor="alice@northwind.example", ip="203.0.113.7")
    bob_events = make_events(2, actor="bob@northwind.example", ip="198.51.100.9", start=at(hours=5))
    decoy_events = make_events(1, actor="carol@northwind.example", ip="192.0.2.44", start=at(hours=9))
    make_finding(
        "Spray then success",
        people=["alice@northwind.example"],
        ips=["203.0.113.7"],
        evidence=alice_events[:2],
    )
    make_finding(
        "Inbox rule", people=["alice@northwind.example"], evidence=alice_events[2:], first_seen=at(30)
    )
    make_finding(
        "Token theft",
        people=["bob@northwind.example"],
        ips=["198.51.100.9"],
        evidence=bob_events,
        first_seen=at(hours=5),
    )
    make_finding(
        "Travel",
        people=["carol@northwind.example"],
        severity="medium",
        evidence=decoy_events,
        first_seen=at(hours=9),
    )
    about_alice = make_message("who is 203.0.113.7?", sent_at=at(40))
    about_bob = make_message("198.51.100.9 again", sent_at=at(hours=6))
    build_incidents(db, settings, notify=False)
    truth = {
        "scenario": "hand-made",
        "stories": [
            {
                "id": "a",
                "steps": [
                    {
                        "id": "s",
                        "detectable": True,
                        "events": provider_ids(db, Event, "provider_event_id", alice_events),
                    }
                ],
                "conversations": provider_ids(db, Message, "provider_message_id", [about_alice]),
            },
            {
                "id": "b",
                "steps": [
                    {
                        "id": "s",
                        "detectable": True,
                        "events": provider_ids(db, Event, "provider_event_id", bob_events),
                    }
                ],
                "conversations": provider_ids(db, Message, "provider_message_id", [about_bob]),
            },
        ],
        "decoys": [
            {"id": "d", "steps": [{"events": provider_ids(db, Event, "provider_event_id", decoy_events)}]}
        ],
    }
    result = score_against_truth(db, truth)
    assert (result["stories_detected"], result["stories_split"], result["stories_merged"]) == (2, 0, 0)
    assert result["exactly_one_incident"] == 2
    assert (result["conversations"]["precision"], result["conversations"]["recall"]) == (1.0, 1.0)
    assert result["decoys"]["with_incident"] == 1 and result["decoys"]["in_story_incidents"] == 0
    assert result["unmatched_incidents"]["count"] == 1 and result["unmatched_incidents"]["from_decoys"] == 1

    # when an analyst splits alice's story in two, the score says so
    with db.session(readonly=True) as session:
        inbox = session.exec(select(Finding).where(Finding.title == "Inbox rule")).one()
    split(db, inbox.incident_id, [inbox.id], actor=Actor("principal:erin", Channel.CLI), settings=settings)
    after = score_against_truth(db, truth)
    assert after["stories_split"] == 1 and after["exactly_one_incident"] == 1
