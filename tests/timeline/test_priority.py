"""Priority: severity × confidence × privilege × assets × spread, each factor explained."""

from __future__ import annotations

from core.models.enums import Priority
from tests.factories import at
from timeline import build_incidents
from timeline.priority import FindingSignal, PersonSignal, compute_priority


def finding(severity: str = "high", confidence: float = 0.9, **kwargs) -> FindingSignal:
    defaults = {
        "id": 1,
        "provider": "m365",
        "title": "Suspicious sign-in",
        "rule_id": "signin",
        "context": {},
    }
    return FindingSignal(severity=severity, confidence=confidence, **{**defaults, **kwargs})


USER = PersonSignal("alice@northwind.example", False, ())
GLOBAL_ADMIN = PersonSignal("root@northwind.example", True, ("Global Administrator",))


def test_a_confident_high_finding_about_an_ordinary_user_is_p2() -> None:
    result = compute_priority([finding()], [USER], [])
    assert result.priority is Priority.P2
    assert result.factors["factors"]["privilege"]["why"] == "no administrator involved"


def test_the_same_finding_about_a_global_admin_is_p1_and_says_why() -> None:
    result = compute_priority([finding()], [GLOBAL_ADMIN], [])
    assert result.priority is Priority.P1
    assert result.factors["factors"]["privilege"] == {
        "weight": 1.6,
        "why": "root@northwind.example holds Global Administrator",
    }


def test_a_lone_medium_finding_is_p3_and_a_low_one_p4() -> None:
    assert compute_priority([finding("medium")], [USER], []).priority is Priority.P3
    assert compute_priority([finding("low")], [USER], []).priority is Priority.P4


def test_corroborating_findings_raise_confidence() -> None:
    one = compute_priority([finding("high", 0.5)], [USER], [])
    three = compute_priority([finding("high", 0.5, id=i) for i in range(3)], [USER], [])
    assert one.factors["factors"]["confidence"]["weight"] == 0.5
    assert three.factors["factors"]["confidence"]["weight"] == 0.875
    assert (one.priority, three.priority) == (Priority.P3, Priority.P2)


def test_a_sensitive_file_shared_publicly_weighs_more() -> None:
    shared = finding("medium", 0.9, context={"visibility": "anyone_with_link"}, title="File shared")
    result = compute_priority([shared], [USER], ["Payroll 2025.xlsx"])
    assets = result.factors["factors"]["assets"]
    assert assets["weight"] == 1.5
    assert "Payroll 2025.xlsx looks sensitive (payroll)" in assets["why"]
    assert "anyone_with_link" in assets["why"]
    assert result.priority is Priority.P2


def test_spread_over_people_and_providers_is_capped() -> None:
    people = [PersonSignal(f"p{i}@x.example", False, ()) for i in range(20)]
    findings = [finding(provider=p, id=n) for n, p in enumerate(["m365", "google", "slack"])]
    assert compute_priority(findings, people, []).factors["factors"]["spread"]["weight"] == 1.5


def test_every_factor_is_stored_on_the_incident(
    db, settings, make_person, make_finding, incidents_of
) -> None:
    make_person(
        "root@northwind.example",
        accounts=[
            {
                "provider": "google",
                "provider_user_id": "g-1",
                "email": "root@northwind.example",
                "is_admin": True,
                "admin_roles": ["Super Admin"],
            }
        ],
    )
    make_finding(
        "Admin signed in from a TOR exit node",
        people=["root@northwind.example"],
        severity="high",
        confidence=0.9,
        provider="google",
    )
    make_finding(
        "2-step verification disabled",
        people=["root@northwind.example"],
        severity="medium",
        first_seen=at(15),
        provider="google",
    )
    build_incidents(db, settings, notify=False)
    [incident] = incidents_of()
    assert incident.priority == "P1"
    assert set(incident.priority_factors["factors"]) == {
        "severity",
        "confidence",
        "privilege",
        "assets",
        "spread",
    }
    assert incident.priority_factors["formula"] == "severity × confidence × privilege × assets × spread"
    assert incident.due_at - incident.created_at == settings_sla_p1()
    assert incident.summary == (
        "2 findings (1 high, 1 medium) about root@northwind.example in google over 15 min; "
        "root@northwind.example holds Super Admin."
    )


def settings_sla_p1():
    from timeline.config import DEFAULT_SLA

    return DEFAULT_SLA[Priority.P1].resolve


def test_a_priority_change_is_recorded_on_the_timeline(db, settings, make_finding, incidents_of) -> None:
    from sqlmodel import select

    from core.models.incident import TimelineEntry

    make_finding("Unusual sign-in", people=["jo@northwind.example"], severity="medium", confidence=0.7)
    build_incidents(db, settings, notify=False)
    assert incidents_of()[0].priority == "P3"
    make_finding(
        "Mailbox exported",
        people=["jo@northwind.example"],
        severity="critical",
        confidence=0.95,
        first_seen=at(60),
    )
    build_incidents(db, settings, notify=False)
    [incident] = incidents_of()
    assert incident.priority == "P1"
    with db.session(readonly=True) as session:
        entries = session.exec(select(TimelineEntry).where(TimelineEntry.kind == "priority")).all()
    assert [e.title.split(" (")[0] for e in entries] == ["priority P3 → P1"]


def test_findings_about_the_same_events_do_not_corroborate_each_other() -> None:
    new_country = finding("medium", 0.9, id=1, evidence=frozenset({7}))
    new_network = finding("medium", 0.8, id=2, evidence=frozenset({7, 8}))
    result = compute_priority([new_country, new_network], [USER], [])
    assert result.factors["factors"]["confidence"] == {
        "weight": 0.9,
        "why": "2 findings on the same evidence (0.90)",
    }
    assert result.priority is Priority.P3


def test_entra_role_template_ids_are_named(db, make_person) -> None:
    from timeline.entities import IdentityIndex

    make_person(
        "kofi@northwind.example",
        accounts=[
            {
                "provider": "m365",
                "provider_user_id": "aad-k",
                "email": "kofi@northwind.example",
                "is_admin": True,
                "admin_roles": ["62e90394-69f5-4237-9190-012177145e10"],
            }
        ],
    )
    with db.session(readonly=True) as session:
        index = IdentityIndex.load(session)
    [person] = index.people.values()
    assert person.admin_roles == ("Global Administrator",)
    result = compute_priority(
        [finding()], [PersonSignal(person.email, person.is_admin, person.admin_roles)], []
    )
    assert (
        result.factors["factors"]["privilege"]["why"] == "kofi@northwind.example holds Global Administrator"
    )


def test_a_medium_signal_about_an_admin_needs_a_top_role_to_be_p2() -> None:
    security_admin = PersonSignal("kofi@northwind.example", True, ("Security Administrator",))
    corroborated = [
        finding("medium", 0.9, id=1, evidence=frozenset({1})),
        finding("low", 0.8, id=2, evidence=frozenset({2})),
    ]
    assert compute_priority(corroborated, [security_admin], []).priority is Priority.P3
    assert compute_priority(corroborated, [GLOBAL_ADMIN], []).priority is Priority.P2


def test_an_anomaly_alone_is_not_urgent_but_corroborated_it_is() -> None:
    travel = finding("high", 0.9, id=1, kind="anomaly", evidence=frozenset({1}))
    assert compute_priority([travel], [USER], []).priority is Priority.P3
    forwarding = finding("high", 0.8, id=2, kind="detection", evidence=frozenset({2}))
    assert compute_priority([travel, forwarding], [USER], []).priority is Priority.P2


def test_many_anomalies_of_one_trip_are_one_line_of_evidence() -> None:
    trip = [
        finding("high", 0.9, id=1, kind="anomaly", evidence=frozenset({1})),
        finding("low", 0.8, id=2, kind="anomaly", evidence=frozenset({2})),
        finding("medium", 0.7, id=3, kind="anomaly", evidence=frozenset({3})),
    ]
    result = compute_priority(trip, [USER], [])
    assert result.factors["factors"]["confidence"]["weight"] == 0.765
    assert result.priority is Priority.P3
