"""Routing: the first rule whose conditions all hold picks the policy; business hours in the
route's zone; the explanation names each condition and how it went."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import select

from core.models.incident import Incident
from core.models.oncall import Escalation
from oncall import start_escalations
from oncall.escalation import explain_routes
from oncall.files import validate

DOCUMENT = {
    "responders": [{"name": "alice", "email": "alice@example.com"}],
    "policies": [
        {"name": "day", "steps": [{"targets": [{"type": "responder", "name": "alice"}]}]},
        {"name": "night", "steps": [{"targets": [{"type": "responder", "name": "alice"}]}]},
    ],
    "routes": [
        {
            "name": "office",
            "policy": "day",
            "priorities": ["P1"],
            "during": "business_hours",
            "timezone": "Europe/Paris",
        },
        {"name": "after-hours", "policy": "night", "priorities": ["P1", "P2"]},
    ],
}
MONDAY_10_PARIS = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SATURDAY_10_PARIS = datetime(2026, 3, 7, 9, 0, tzinfo=UTC)


def test_business_hours_in_the_routes_zone_choose_the_policy(db, configure, make_incident):
    configure(DOCUMENT)
    routes = validate(DOCUMENT, where="test").routes
    weekday = make_incident().id
    with db.session() as session:
        start_escalations(session, now=MONDAY_10_PARIS)
        # the same incident explained as at Monday and as at Saturday
        incident = session.get(Incident, weekday)
        saturday = explain_routes(session, incident, routes, SATURDAY_10_PARIS)
        monday = explain_routes(session, incident, routes, MONDAY_10_PARIS)
    assert [a["matched"] for a in monday] == [True, True]
    assert [a["matched"] for a in saturday] == [False, True]
    assert saturday[0]["reasons"] == [
        "priority P1 in P1",
        "Sat 09:00 UTC is outside business hours (Europe/Paris)",
    ]
    with db.session(readonly=True) as session:
        policies = {e.incident_id: e.policy for e in session.exec(select(Escalation)).all()}
    assert policies[weekday] == "day"


def test_outside_business_hours_a_p1_takes_the_after_hours_route(db, configure, make_incident):
    configure(DOCUMENT)
    incident = make_incident().id
    low = make_incident(priority="P3").id
    with db.session() as session:
        start_escalations(session, now=SATURDAY_10_PARIS)
    with db.session(readonly=True) as session:
        policies = {e.incident_id: e.policy for e in session.exec(select(Escalation)).all()}
    assert policies == {incident: "night"} and low not in policies
