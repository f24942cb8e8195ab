"""Incident channels through slack_sdk against the simulator: given a P1 incident, when the
response stage runs, then a channel exists with the responders invited, a pinned summary that
follows the incident, timeline lines posted there, and people's messages (redacted) mirrored back."""

from __future__ import annotations

import requests
from sqlmodel import col, select

from core.audit import Actor
from core.models import AuditRecord, IncidentResponse, TimelineEntry
from response.channels import run_channels
from tests.response.conftest import person_posts, response_document, slack_user_ids
from timeline.lifecycle import assign


def _changes(handle, action: str) -> list[dict]:
    return [c["target"] for c in handle.changes if c["action"] == action]


def test_a_p1_gets_a_channel_with_a_pinned_summary_and_its_messages_come_back_redacted(
    db, response_sim, configure_response, make_incident
) -> None:
    lead = slack_user_ids(response_sim, 1)[0]
    document = response_document(response_sim, jira=False)
    document["channels"]["invite"] = [lead]
    config = configure_response(document)
    incident = make_incident("Admin mailbox forwarding to an outside address", priority="P1")
    low = make_incident("A low one", priority="P4")

    report = run_channels(db, config)

    assert report.created == [incident.id] and not report.failed
    [created] = _changes(response_sim, "create_channel")
    assert created["name"] == f"inc-{incident.id}-admin-mailbox-forwarding-to-an-outside-address"
    assert _changes(response_sim, "invite_to_channel") == [{"channel": created["channel"], "users": [lead]}]
    [topic] = _changes(response_sim, "set_topic")
    assert topic["topic"].startswith(f"[P1] #{incident.id}")
    [pin] = _changes(response_sim, "pin_message")
    token = response_sim.info["slack.bot_token"]
    pins = requests.get(
        response_sim.info["slack.base_url"] + "pins.list",
        params={"channel": created["channel"]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()
    assert f"Incident #{incident.id}" in pins["items"][0]["message"]["text"]
    assert pin["ts"] == pins["items"][0]["message"]["ts"]

    # A responder writes in the channel, pasting a token; the assignee changes.
    person_posts(
        response_sim, created["channel"], lead, "Revoked sessions. token xoxb-123456789012-abcdefABCDEF"
    )
    assign(db, incident.id, "alice", actor=Actor.cli("principal:lead"))
    again = run_channels(db, config)
    assert again.mirrored == 1 and again.summaries == 1 and again.posted >= 1
    updated = [u for u in _changes(response_sim, "update_message") if u["ts"] == pin["ts"]]
    assert "Assignee: alice" in updated[-1]["text"]
    with db.session(readonly=True) as session:
        [mirrored] = session.exec(
            select(TimelineEntry).where(
                TimelineEntry.incident_id == incident.id, TimelineEntry.source == "slack/incident-channel"
            )
        ).all()
        state = session.exec(
            select(IncidentResponse).where(IncidentResponse.incident_id == incident.id)
        ).one()
        audit = session.exec(
            select(AuditRecord.action)
            .where(AuditRecord.object_id == str(incident.id))
            .order_by(col(AuditRecord.seq))
        ).all()
        assert (
            session.exec(select(IncidentResponse).where(IncidentResponse.incident_id == low.id)).first()
            is None
        )
    assert mirrored.kind == "message" and mirrored.actor == lead
    assert "xoxb-" not in mirrored.body["excerpt"] and "[REDACTED:" in mirrored.body["excerpt"]
    assert "response.channel.created" in audit
    # The bot's own posts are never mirrored back, and a rerun changes nothing.
    assert set(state.own_ts) >= {pin["ts"]}
    third = run_channels(db, config)
    assert (third.created, third.mirrored, third.summaries, third.posted) == ([], 0, 0, 0)
    assert len(_changes(response_sim, "create_channel")) == 1


def test_a_channel_created_by_a_run_that_did_not_commit_is_found_again_by_name(
    db, response_sim, configure_response, make_incident
) -> None:
    config = configure_response(response_document(response_sim, jira=False))
    incident = make_incident("Lost run", priority="P2")
    run_channels(db, config)
    with db.session() as session:  # as if the first run's transaction was lost after Slack answered
        state = session.exec(
            select(IncidentResponse).where(IncidentResponse.incident_id == incident.id)
        ).one()
        state.channel_id = ""
        session.add(state)
    report = run_channels(db, config)
    assert report.created == [incident.id] and not report.failed
    assert len(_changes(response_sim, "create_channel")) == 1


def test_an_assignee_given_after_the_channel_opened_is_invited_once(
    db, response_sim, configure_response, make_incident, make_principal
) -> None:
    lead, ana_slack = slack_user_ids(response_sim, 2)
    document = response_document(response_sim, jira=False)
    document["channels"]["invite"] = [lead]
    config = configure_response(document)
    make_principal("analyst", name="ana", slack_user_id=ana_slack)
    incident = make_incident("Guest downloading private files", priority="P1")
    run_channels(db, config)
    [channel] = [c["channel"] for c in _changes(response_sim, "create_channel")]
    assign(db, incident.id, "principal:ana", actor=Actor.cli("principal:lead"))
    report = run_channels(db, config)
    assert report.invited == 1 and not report.failed
    assert _changes(response_sim, "invite_to_channel") == [
        {"channel": channel, "users": [lead]},
        {"channel": channel, "users": [ana_slack]},
    ]
    assert run_channels(db, config).invited == 0
    assert len(_changes(response_sim, "invite_to_channel")) == 2
    with db.session(readonly=True) as session:
        titles = session.exec(
            select(TimelineEntry.title).where(
                TimelineEntry.incident_id == incident.id, TimelineEntry.kind == "response"
            )
        ).all()
    assert any(t.startswith("Invited 1 more to #inc-") for t in titles)
