"""Data-subject requests: one person's rows exported across tables, and erased only by a second person,
never while a legal hold covers them; the organisation's records keep a pseudonym, the chain verifies."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from sqlmodel import select

from compliance.errors import NotPermittedError, PrivacyConflictError
from compliance.holds import place_hold
from compliance.privacy import approve_erasure, export_person, record_export, request_erasure
from core.audit import Actor, Channel, verify_database
from core.models import Account, AuditRecord, Event, Finding, Incident, Message, Person, PersonBaseline

T = datetime(2026, 5, 1, tzinfo=UTC)
SUBJECT = "bob@northwind.example"
ALIAS = "robert@northwind.example"
OLGA = Actor("principal:olga", Channel.CLI)
PAULA = Actor("principal:paula", Channel.CLI)
OFFICER = "compliance_officer"


def _people(db, make_finding, make_incident) -> dict[str, int]:
    with db.session() as session:
        bob = Person(primary_email=SUBJECT, display_name="Bob", aliases=[ALIAS])
        session.add(bob)
        session.flush()
        session.add(Account(person_id=bob.id, provider="m365", provider_user_id="u1", email=SUBJECT))
        session.add(Account(provider="slack", provider_user_id="U1", email=ALIAS))
        session.add(PersonBaseline(actor=SUBJECT, window_start=T, window_end=T))
        for n, actor in enumerate([SUBJECT, ALIAS.upper(), "carol@northwind.example"]):
            session.add(
                Event(
                    provider="m365", stream="signins", provider_event_id=f"e{n}", occurred_at=T, actor=actor
                )
            )
            session.add(
                Message(
                    provider="slack", stream="messages", provider_message_id=f"m{n}", author=actor, sent_at=T
                )
            )
    finding = make_finding(f"Impossible travel for {SUBJECT}", people=[SUBJECT, "carol@northwind.example"]).id
    other = make_finding(people=["carol@northwind.example"]).id
    incident = make_incident(people=[ALIAS]).id
    return {"finding": finding, "other": other, "incident": incident}


def test_export_streams_every_row_about_the_person_under_any_of_their_addresses(
    db, make_finding, make_incident
) -> None:
    _people(db, make_finding, make_incident)
    with db.session() as session:
        addresses = record_export(session, ALIAS, actor=OLGA, role=OFFICER)
    assert addresses == {SUBJECT, ALIAS}
    with db.session(readonly=True) as session:
        lines = [orjson.loads(line) for line in export_person(session, addresses)]
        [audit] = session.exec(select(AuditRecord).where(AuditRecord.action == "privacy.exported")).all()
    tables = sorted(line["table"] for line in lines)
    assert tables == ["account", "account", "event", "event", "finding", "incident", "message", "message",
                      "person", "personbaseline"]  # fmt: skip
    assert audit.actor == "principal:olga" and audit.object_id == ALIAS
    with pytest.raises(NotPermittedError), db.session() as session:
        record_export(session, SUBJECT, actor=OLGA, role="analyst")


def test_erasure_needs_a_second_person_and_leaves_a_pseudonym(db, make_finding, make_incident) -> None:
    ids = _people(db, make_finding, make_incident)
    with db.session() as session:
        request = request_erasure(session, SUBJECT, reason="DSAR 2026-88", actor=OLGA, role=OFFICER)
    with pytest.raises(PrivacyConflictError, match="four eyes"), db.session() as session:
        approve_erasure(session, request.id, actor=OLGA, role=OFFICER)
    with db.session() as session:
        done = approve_erasure(session, request.id, actor=PAULA, role=OFFICER)
        assert done.result == {"account": 2, "person": 1, "personbaseline": 1, "message": 2, "event": 2,
                               "finding": 1, "incident": 1}  # fmt: skip
    pseudonym = f"erased-subject-{request.id}"
    with db.session(readonly=True) as session:
        assert not session.exec(select(Person)).all() and not session.exec(select(Account)).all()
        assert [e.actor for e in session.exec(select(Event))] == ["carol@northwind.example"]
        assert [m.author for m in session.exec(select(Message))] == ["carol@northwind.example"]
        finding = session.get(Finding, ids["finding"])
        assert finding.entities["people"] == [pseudonym, "carol@northwind.example"]
        assert finding.title == f"Impossible travel for {pseudonym}"
        assert session.get(Incident, ids["incident"]).entities["people"] == [pseudonym]
        assert session.get(Finding, ids["other"]).entities["people"] == ["carol@northwind.example"]
        actions = [r.action for r in session.exec(select(AuditRecord).order_by(AuditRecord.seq))]
        assert actions[-2:] == ["privacy.erasure_requested", "privacy.erased"]
        assert verify_database(session).ok
    with pytest.raises(PrivacyConflictError, match="already"), db.session() as session:
        approve_erasure(session, request.id, actor=PAULA, role=OFFICER)


def test_a_legal_hold_blocks_erasure(db, make_finding, make_incident) -> None:
    ids = _people(db, make_finding, make_incident)
    with db.session() as session:
        request = request_erasure(session, SUBJECT, reason="DSAR 2026-89", actor=OLGA, role=OFFICER)
        # an incident naming them goes on hold after the request: the approval is refused
        place_hold(session, "incident", str(ids["incident"]), reason="case 3", actor=OLGA, role=OFFICER)
    with pytest.raises(PrivacyConflictError, match="legal hold"), db.session() as session:
        approve_erasure(session, request.id, actor=PAULA, role=OFFICER)
    with db.session() as session:
        place_hold(session, "person", ALIAS, reason="case 4", actor=OLGA, role=OFFICER)
    with pytest.raises(PrivacyConflictError, match="person"), db.session() as session:
        request_erasure(session, SUBJECT, reason="DSAR 2026-90", actor=OLGA, role=OFFICER)
    with db.session(readonly=True) as session:
        assert session.exec(select(Person)).all()
