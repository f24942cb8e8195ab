"""Slack notifications through slack_sdk against the simulator: new P1/P2 incidents and changes."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from collectors import connections_from_simulator
from collectors.connections import sync_connections
from core.audit import Actor, Channel
from core.models.incident import Incident
from tests.factories import at
from timeline import build_incidents
from timeline.lifecycle import transition
from timeline.notify import deliver_notifications


@pytest.fixture
def slack(make_simulator, db):
    """A simulator whose Slack connection is configured to notify #security-ops."""
    handle = make_simulator("quiet_week", users=12, days=1, seed=3)
    definitions = connections_from_simulator(
        handle.info, providers=["slack"], extra_config={"notify_channel": "#security-ops"}, backfill=False
    )
    sync_connections(db, definitions, actor=Actor("principal:test", Channel.CLI))
    return handle


def posts(handle) -> list[dict]:
    return [c for c in handle.changes if c["action"] == "post_message"]


def incident(db, incident_id: int) -> Incident:
    with db.session(readonly=True) as session:
        return session.get(Incident, incident_id)


def test_a_new_p1_incident_is_announced_once_with_its_evidence(
    db, settings, slack, make_person, make_finding
) -> None:
    make_person(
        "root@northwind.example",
        accounts=[
            {
                "provider": "m365",
                "provider_user_id": "aad-root",
                "email": "root@northwind.example",
                "is_admin": True,
                "admin_roles": ["Global Administrator"],
            }
        ],
    )
    make_finding(
        "Admin sign-in from a TOR exit node",
        people=["root@northwind.example"],
        ips=["203.0.113.9"],
        confidence=0.95,
    )
    make_finding("Medium noise", people=["nobody@northwind.example"], severity="medium", first_seen=at(5))
    p1, p4 = build_incidents(db, settings)
    [post] = posts(slack)
    assert (
        post["target"]["text"]
        == f"[P1] Incident #{p1}: Admin sign-in from a TOR exit node — root@northwind.example"
    )
    body = post["request"]["body"]
    blocks = body["blocks"] if isinstance(body["blocks"], list) else json.loads(body["blocks"])
    assert [b["type"] for b in blocks] == ["header", "section", "section", "context", "actions"]
    assert "Admin sign-in from a TOR exit node" in blocks[2]["text"]["text"]
    assert blocks[4]["elements"][0]["url"].endswith(f"/incidents/{p1}")
    state = incident(db, p1).notifications
    assert state["ts"] == post["target"]["ts"] and state["error"] is None
    assert incident(db, p4).notifications == {}
    # delivering again posts nothing new
    assert deliver_notifications(db, settings).posted == []
    assert len(posts(slack)) == 1


def test_status_changes_are_posted_in_the_announcements_thread(db, settings, slack, make_finding) -> None:
    make_finding("Mailbox exported", people=["dana@northwind.example"], severity="critical", confidence=0.95)
    [incident_id] = build_incidents(db, settings)
    transition(db, incident_id, "contained", actor=Actor("principal:erin", Channel.CLI))
    report = deliver_notifications(db, settings)
    assert report.posted == [incident_id]
    announce, update = posts(slack)
    assert update["request"]["body"]["thread_ts"] == announce["target"]["ts"]
    assert update["target"]["text"] == f"Incident #{incident_id}: status new → contained"


def test_a_slack_failure_is_kept_and_retried_without_undoing_the_build(
    db, settings, slack, make_finding
) -> None:
    slack.set_faults("403=1@/api/chat.postMessage")
    make_finding("Mailbox exported", people=["dana@northwind.example"], severity="critical", confidence=0.95)
    [incident_id] = build_incidents(db, settings)
    state = incident(db, incident_id).notifications
    assert state["attempts"] == 1 and state["error"] and "ts" not in state
    slack.set_faults("")
    assert deliver_notifications(db, settings).posted == [incident_id]
    assert incident(db, incident_id).notifications["ts"]


def test_without_a_configured_channel_nothing_is_posted(db, settings, make_simulator, make_finding) -> None:
    handle = make_simulator("quiet_week", users=12, days=1, seed=3)
    sync_connections(
        db,
        connections_from_simulator(handle.info, providers=["slack"], backfill=False),
        actor=Actor("principal:test", Channel.CLI),
    )
    make_finding("Mailbox exported", people=["dana@northwind.example"], severity="critical", confidence=0.95)
    build_incidents(db, settings)
    assert posts(handle) == []
    with db.session(readonly=True) as session:
        assert session.exec(select(Incident)).one().notifications == {}
