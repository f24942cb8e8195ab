"""Routing: the first rule whose conditions all hold picks the policy; business hours in the
route's zone; the explanation names each condition and how it went."""

from __future__ import annotations

from datetime import UTC, datetime

import requests
from sqlmodel import select

from core.models.incident import Incident
from core.models.oncall import Escalation
from oncall import start_escalations
from oncall.escalation import explain_routes
from oncall.files import validate
from tests.oncall.test_slack_buttons import live_api  # noqa: F401 - the fixture

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


ROUTED = {
    "responders": [{"name": "alice", "email": "alice@example.com"}],
    "policies": [
        {"name": name, "steps": [{"targets": [{"type": "responder", "name": "alice"}]}]}
        for name in ("identity", "okta-team", "default")
    ],
    "routes": [
        {
            "name": "credential-abuse",
            "policy": "identity",
            "priorities": ["P1", "P2"],
            "incident_types": ["impossible_travel", "mfa_fatigue"],
            "tags": ["attack.t1078"],
        },
        {"name": "okta", "policy": "okta-team", "priorities": ["P1", "P2"], "providers": ["okta"]},
        {"name": "catch-all", "policy": "default", "priorities": ["P1", "P2", "P3"]},
    ],
}


def test_the_route_endpoint_says_which_rule_matched_and_why(
    db,
    configure,
    make_incident,
    make_finding,
    live_api,  # noqa: F811
):
    from tests import factories

    configure(ROUTED)
    tagged = make_incident(incident_type="impossible_travel").id
    make_finding(incident_id=tagged, provider="m365", mitre=["attack.initial_access", "attack.T1078"])
    untagged = make_incident(incident_type="impossible_travel").id
    make_finding(incident_id=untagged, provider="okta", mitre=["attack.t1110"])
    low = make_incident(priority="P4").id
    reader = factories.make_principal(db, "analyst", name="reader", pepper="p" * 40)

    def route(incident: int) -> dict:
        answer = requests.get(
            f"{live_api}/oncall/incidents/{incident}/route",
            params={"at": "2026-03-02T09:00:00Z"},
            headers=reader.headers,
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    first = route(tagged)
    assert (first["route"], first["policy"]) == ("credential-abuse", "identity")
    assert first["rules"][0]["reasons"] == [
        "priority P1 in P1, P2",
        "type 'impossible_travel' in ['impossible_travel', 'mfa_fatigue']",
        "tags attack.initial_access, attack.t1078 meet attack.t1078",
    ]
    second = route(untagged)
    assert (second["route"], second["policy"]) == ("okta", "okta-team")
    assert second["rules"][0]["matched"] is False
    assert second["rules"][0]["reasons"][-1] == "tags attack.t1110 miss attack.t1078"
    assert second["rules"][1]["reasons"][-1] == "providers okta meet okta"
    nothing = route(low)
    assert (nothing["route"], nothing["policy"]) == (None, None)
    assert [r["reasons"][0] for r in nothing["rules"]][-1] == "priority P4 not in P1, P2, P3"
    assert requests.get(f"{live_api}/oncall/incidents/{low}/route", timeout=30).status_code == 401


def test_a_route_by_tenant_takes_incidents_whose_evidence_that_tenants_connection_collected(
    db, configure, make_incident, make_finding
):
    from datetime import timedelta

    from core.models.event import Event
    from tests.factories import T0, make_connection

    document = {
        "responders": [{"name": "alice", "email": "alice@example.com"}],
        "policies": [
            {"name": name, "steps": [{"targets": [{"type": "responder", "name": "alice"}]}]}
            for name in ("south-team", "default")
        ],
        "routes": [
            {"name": "southwind", "policy": "south-team", "tenants": ["southwind.example"]},
            {"name": "catch-all", "policy": "default"},
        ],
    }
    configure(document)
    north = make_connection(db, "northwind-m365", tenant="northwind.example")
    south = make_connection(db, "southwind-m365", tenant="southwind.example")
    incidents = {}
    for connection in (north, south):
        with db.session() as session:
            event = Event(
                connection_id=connection.id,
                provider="m365",
                stream="signins",
                provider_event_id=f"ev-{connection.name}",
                occurred_at=T0,
                collected_at=T0 + timedelta(minutes=1),
                action="UserLoggedIn",
                raw={},
            )
            session.add(event)
            session.flush()
            event_id = event.id
        incident = make_incident(f"Takeover at {connection.name}")
        make_finding(incident_id=incident.id, evidence=[event_id])
        incidents[connection.name] = incident.id
    with db.session() as session:
        start_escalations(session, now=MONDAY_10_PARIS)
        explained = explain_routes(
            session,
            session.get(Incident, incidents["northwind-m365"]),
            validate(document, where="test").routes,
            MONDAY_10_PARIS,
        )
    with db.session(readonly=True) as session:
        policies = {e.incident_id: e.policy for e in session.exec(select(Escalation)).all()}
    assert policies == {incidents["southwind-m365"]: "south-team", incidents["northwind-m365"]: "default"}
    assert explained[0]["reasons"][1] == ("tenants northwind-m365, northwind.example miss southwind.example")
