"""Lifecycle: transitions, assignment, notes, merge and split — timestamped, on the timeline, audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from core.audit import Actor, Channel, verify_database
from core.errors import IncidentNotFoundError
from core.models.audit import AuditRecord
from core.models.finding import Finding
from core.models.incident import Incident, TimelineEntry
from tests.factories import T0, at
from tests.leaks import PHONE, SECRET, assert_stored_redacted
from timeline import build_incidents
from timeline.errors import InvalidTransitionError, MergeError
from timeline.lifecycle import add_note, assign, link_conversation, merge, set_postmortem, split, transition


@pytest.fixture
def incident_id(db, settings, make_finding) -> int:
    make_finding(people=["alice@northwind.example"], ips=["203.0.113.7"])
    make_finding(
        "Inbox rule forwards to external address", people=["alice@northwind.example"], first_seen=at(20)
    )
    [found] = build_incidents(db, settings, notify=False, now=T0 + timedelta(minutes=30))
    return found


def audit_actions(db) -> list[str]:
    with db.session(readonly=True) as session:
        assert verify_database(session).ok
        return [r.action for r in session.exec(select(AuditRecord).order_by(AuditRecord.seq)).all()]


def entries(db, incident_id: int, kind: str) -> list[TimelineEntry]:
    with db.session(readonly=True) as session:
        return list(
            session.exec(
                select(TimelineEntry)
                .where(TimelineEntry.incident_id == incident_id, TimelineEntry.kind == kind)
                .order_by(TimelineEntry.id)
            ).all()
        )


def test_walking_the_lifecycle_stamps_each_step(db, incident_id) -> None:
    opened = T0 + timedelta(minutes=30)
    for minutes, status in ((40, "triaged"), (70, "contained"), (200, "resolved"), (300, "closed")):
        transition(
            db,
            incident_id,
            status,
            actor=Actor("principal:erin", Channel.CLI),
            at=opened + timedelta(minutes=minutes),
        )
    with db.session(readonly=True) as session:
        incident = session.get(Incident, incident_id)
    assert incident.status == "closed"
    assert (
        incident.acknowledged_at - opened,
        incident.contained_at - opened,
        incident.resolved_at - opened,
    ) == (
        timedelta(minutes=40),
        timedelta(minutes=70),
        timedelta(minutes=200),
    )
    assert [e.title for e in entries(db, incident_id, "status")][1:] == [
        "status new → triaged",
        "status triaged → contained",
        "status contained → resolved",
        "status resolved → closed",
    ]
    assert audit_actions(db).count("incident.transitioned") == 4


def test_a_forbidden_transition_names_what_is_allowed(db, incident_id) -> None:
    transition(db, incident_id, "resolved", actor=Actor("principal:erin", Channel.CLI))
    with pytest.raises(InvalidTransitionError, match="it can move to closed, triaged, not contained"):
        transition(db, incident_id, "contained", actor=Actor("principal:erin", Channel.CLI))
    with pytest.raises(InvalidTransitionError, match="unknown status 'done'"):
        transition(db, incident_id, "done", actor=Actor("principal:erin", Channel.CLI))


def test_reopening_clears_the_resolution(db, incident_id) -> None:
    transition(db, incident_id, "resolved", actor=Actor("principal:erin", Channel.CLI))
    reopened = transition(
        db, incident_id, "triaged", actor=Actor("principal:erin", Channel.CLI), note="attacker came back"
    )
    assert reopened.resolved_at is None and reopened.status == "triaged"


def test_a_duplicate_needs_the_original(db, incident_id) -> None:
    with pytest.raises(InvalidTransitionError, match="--of ID"):
        transition(db, incident_id, "duplicate", actor=Actor("principal:erin", Channel.CLI))


def test_assigning_acknowledges_and_notes_are_redacted(db, incident_id) -> None:
    assign(db, incident_id, "principal:frank", actor=Actor("principal:erin", Channel.CLI))
    add_note(
        db,
        incident_id,
        "reset done; temp password: Hunter2!! card 4111 1111 1111 1111",
        actor=Actor("principal:frank", Channel.CLI),
    )
    [note] = entries(db, incident_id, "note")
    assert note.body["text"] == "reset done; temp password: [REDACTED:secret] card [REDACTED:payment_card]"
    with db.session(readonly=True) as session:
        incident = session.get(Incident, incident_id)
        records = session.exec(select(AuditRecord).where(AuditRecord.action == "incident.note_added")).all()
    assert incident.assignee == "principal:frank" and incident.acknowledged_at is not None
    assert "Hunter2" not in str([r.details for r in records])


def test_an_unknown_incident_is_a_clear_error(db, settings) -> None:
    with pytest.raises(IncidentNotFoundError, match="incident 999 does not exist"):
        assign(db, 999, "x", actor=Actor("principal:erin", Channel.CLI))


def test_merging_moves_findings_and_messages_and_marks_the_other_a_duplicate(
    db, settings, make_finding, make_message
) -> None:
    make_finding(people=["alice@northwind.example"])
    make_finding(
        "OAuth app consent", apps=["Calendar Helper"], people=["zed@northwind.example"], first_seen=at(5)
    )
    message = make_message("who approved Calendar Helper?", sent_at=at(10))
    first, second = build_incidents(db, settings, notify=False)
    transition(db, first, "triaged", actor=Actor("principal:erin", Channel.CLI))
    merged = merge(
        db,
        first,
        [second],
        actor=Actor("principal:erin", Channel.CLI),
        reason="same phishing campaign",
        settings=settings,
    )
    assert merged.finding_count == 2 and merged.message_count == 1
    with db.session(readonly=True) as session:
        other = session.get(Incident, second)
        findings = session.exec(select(Finding)).all()
    assert (other.status, other.merged_into_id) == ("duplicate", first)
    assert {f.incident_id for f in findings} == {first}
    assert [e.body["message_id"] for e in entries(db, first, "message")] == [message]
    assert entries(db, second, "finding") == []
    assert "incident.merged" in audit_actions(db)
    with pytest.raises(MergeError, match="already a duplicate"):
        merge(db, first, [second], actor=Actor("principal:erin", Channel.CLI))


def test_splitting_moves_findings_to_a_new_incident(db, settings, incident_id) -> None:
    with db.session(readonly=True) as session:
        finding_ids = [f.id for f in session.exec(select(Finding).order_by(Finding.id)).all()]
    created = split(
        db,
        incident_id,
        [finding_ids[1]],
        actor=Actor("principal:erin", Channel.CLI),
        reason="unrelated rule",
        settings=settings,
    )
    with db.session(readonly=True) as session:
        original = session.get(Incident, incident_id)
        moved = session.get(Finding, finding_ids[1])
    assert (original.finding_count, created.finding_count) == (1, 1)
    assert moved.incident_id == created.id
    assert created.created_by == "principal:erin"
    assert created.title.startswith("Inbox rule forwards to external address")
    assert "split from incident" in created.grouping[0]["text"]
    assert "incident.split" in audit_actions(db)
    with pytest.raises(MergeError, match="leave at least one"):
        split(db, incident_id, [finding_ids[0]], actor=Actor("principal:erin", Channel.CLI))
    with pytest.raises(MergeError, match=r"findings \[12345\] are not in incident"):
        split(db, incident_id, [12345], actor=Actor("principal:erin", Channel.CLI))


def test_a_split_off_incident_is_not_merged_back_automatically(
    db, settings, incident_id, make_finding, incidents_of
) -> None:
    with db.session(readonly=True) as session:
        finding_ids = [f.id for f in session.exec(select(Finding).order_by(Finding.id)).all()]
    split(db, incident_id, [finding_ids[1]], actor=Actor("principal:erin", Channel.CLI), settings=settings)
    make_finding("Another", people=["alice@northwind.example"], first_seen=at(50))
    build_incidents(db, settings, notify=False)
    assert [i.status for i in incidents_of()] == ["new", "new"]


def test_a_split_teaches_the_grouper_not_to_make_the_same_merge_again(
    db, settings, incident_id, make_finding, incidents_of
) -> None:
    erin = Actor("principal:erin", Channel.CLI)
    # given an analyst split the forwarding rule off alice's sign-in incident, and both were resolved
    with db.session(readonly=True) as session:
        first, second = [f.id for f in session.exec(select(Finding).order_by(Finding.id)).all()]
    created = split(db, incident_id, [second], actor=erin, reason="her assistant's rule", settings=settings)
    for done in (incident_id, created.id):
        transition(db, done, "resolved", actor=erin)
    # when the same two rules fire about alice again a week later, 20 minutes apart
    later = timedelta(days=7)
    again_signin = make_finding(
        people=["alice@northwind.example"], ips=["198.51.100.4"], first_seen=at(0) + later
    )
    again_rule = make_finding(
        "Inbox rule forwards to external address",
        people=["alice@northwind.example"],
        first_seen=at(20) + later,
    )
    # and the same about bob, whom no split taught anything
    make_finding(people=["bob@northwind.example"], ips=["198.51.100.9"], first_seen=at(0) + later)
    make_finding(
        "Inbox rule forwards to external address", people=["bob@northwind.example"], first_seen=at(20) + later
    )
    build_incidents(db, settings, notify=False, now=T0 + later + timedelta(hours=1))
    # then alice's two findings are two incidents, and the second says which split kept it apart
    fresh = [i for i in incidents_of() if i.status == "new"]
    with db.session(readonly=True) as session:
        home = {f: session.get(Finding, f).incident_id for f in (again_signin.id, again_rule.id)}
    assert home[again_signin.id] != home[again_rule.id]
    [kept_apart] = [i for i in fresh if i.id == home[again_rule.id]]
    assert kept_apart.grouping[0]["kept_apart"] == [
        f"not joined by person alice@northwind.example: split from incident #{incident_id} "
        f"into #{created.id} by principal:erin (her assistant's rule)"
    ]
    # while bob's are one incident, as before
    bobs = [i for i in fresh if "bob@northwind.example" in (i.entities or {}).get("people", [])]
    assert len(bobs) == 1 and bobs[0].finding_count == 2
    # and the split's audit record says what it taught
    with db.session(readonly=True) as session:
        [audit] = session.exec(select(AuditRecord).where(AuditRecord.action == "incident.split")).all()
    assert [t["key"] for t in audit.details["taught"]] == ["email:alice@northwind.example"]


def test_postmortem_fields_and_conversation_links_are_recorded(db, incident_id) -> None:
    set_postmortem(
        db,
        incident_id,
        actor=Actor("principal:erin", Channel.CLI),
        root_cause="Phished password, no MFA",
        lessons="Enforce MFA",
    )
    linked = link_conversation(
        db, incident_id, provider="slack", channel="C-IR-42", actor=Actor("principal:erin", Channel.CLI)
    )
    assert linked.root_cause == "Phished password, no MFA"
    assert linked.linked_conversations[-1]["channel"] == "C-IR-42"
    assert {"incident.postmortem_updated", "incident.conversation_linked"} <= set(audit_actions(db))


def test_a_linked_channel_brings_its_messages(db, settings, incident_id, make_message) -> None:
    in_room = make_message("war room open", channel="C-IR-42", sent_at=at(60))
    make_message("unrelated", channel="C-random", sent_at=at(60))
    link_conversation(
        db, incident_id, provider="slack", channel="C-IR-42", actor=Actor("principal:erin", Channel.CLI)
    )
    build_incidents(db, settings, notify=False)
    assert [e.body["message_id"] for e in entries(db, incident_id, "message")] == [in_room]


TYPED = f"see {SECRET} or call {PHONE}"


@pytest.mark.parametrize(
    "operation",
    [
        "transition note",
        "assignee",
        "postmortem",
        "link channel",
        "link thread",
        "merge reason",
        "split reason",
    ],
)
def test_what_a_person_types_into_any_field_is_stored_redacted(
    db, settings, incident_id, make_finding, operation
) -> None:
    erin = Actor("principal:erin", Channel.CLI)
    if operation == "transition note":
        transition(db, incident_id, "triaged", actor=erin, note=TYPED)
    elif operation == "assignee":
        assign(db, incident_id, f"frank {PHONE}", actor=erin)
    elif operation == "postmortem":
        set_postmortem(db, incident_id, actor=erin, root_cause=TYPED, lessons=TYPED, impact=TYPED)
    elif operation == "link channel":
        link_conversation(db, incident_id, provider="slack", channel=TYPED, actor=erin)
    elif operation == "link thread":
        link_conversation(db, incident_id, provider="slack", channel="C-IR-42", thread_id=TYPED, actor=erin)
    elif operation == "merge reason":
        make_finding("OAuth app consent", apps=["Calendar Helper"], people=["zed@northwind.example"])
        other = max(build_incidents(db, settings, notify=False, now=T0 + timedelta(minutes=40)))
        merge(db, incident_id, [other], actor=erin, reason=TYPED, settings=settings)
    else:
        with db.session(readonly=True) as session:
            finding_ids = [f.id for f in session.exec(select(Finding).order_by(Finding.id)).all()]
        split(db, incident_id, [finding_ids[1]], actor=erin, reason=TYPED, settings=settings)
    assert_stored_redacted(db)
