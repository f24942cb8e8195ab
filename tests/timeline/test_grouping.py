"""Grouping: which findings become one incident, and the words that explain why."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from core.audit import Actor, Channel, verify_database
from core.models.audit import AuditRecord
from core.models.finding import Finding
from tests.factories import T0, at
from timeline import build_incidents
from timeline.grouping import FindingFacts, OpenIncident, describe_gap, group_findings

WINDOW = timedelta(hours=24)


def facts(fid: int, *keys: str, minutes: float = 0, can_open: bool = True) -> FindingFacts:
    when = at(minutes)
    return FindingFacts(
        fid, "high", when, when, tuple(keys), {k: k.partition(":")[2] for k in keys}, can_open
    )


def test_findings_sharing_a_person_inside_the_window_are_one_group() -> None:
    plan = group_findings([facts(1, "person:1"), facts(2, "person:1", minutes=125)], [], WINDOW)
    assert [g.finding_ids for g in plan.groups] == [[1, 2]]
    assert plan.groups[0].reasons[1]["text"] == "joined: same person 1 within 2 h 5 min of finding #1"


def test_the_window_slides_with_each_finding_that_joins() -> None:
    # given findings 20 hours apart: each is within 24 h of the previous one, not of the first
    plan = group_findings(
        [
            facts(1, "ip:203.0.113.9"),
            facts(2, "ip:203.0.113.9", minutes=20 * 60),
            facts(3, "ip:203.0.113.9", minutes=40 * 60),
        ],
        [],
        WINDOW,
    )
    assert [g.finding_ids for g in plan.groups] == [[1, 2, 3]]


def test_a_finding_outside_the_window_opens_a_new_group() -> None:
    plan = group_findings([facts(1, "app:evilapp"), facts(2, "app:evilapp", minutes=25 * 60)], [], WINDOW)
    assert [g.finding_ids for g in plan.groups] == [[1], [2]]


def test_unrelated_findings_stay_apart() -> None:
    plan = group_findings(
        [facts(1, "person:1"), facts(2, "person:2"), facts(3, "file:payroll.xlsx")], [], WINDOW
    )
    assert len(plan.groups) == 3


def test_a_finding_bridging_two_new_groups_merges_them_and_says_so() -> None:
    plan = group_findings(
        [
            facts(1, "person:1"),
            facts(2, "ip:198.51.100.4", minutes=5),
            facts(3, "person:1", "ip:198.51.100.4", minutes=10),
        ],
        [],
        WINDOW,
    )
    assert len(plan.groups) == 1
    assert sorted(plan.groups[0].finding_ids) == [1, 2, 3]
    assert any(r["decision"] == "merged" for r in plan.groups[0].reasons)


def test_a_bridge_to_an_incident_someone_works_on_is_recorded_not_merged() -> None:
    busy = OpenIncident(7, ("ip:198.51.100.4",), T0, T0, auto_mergeable=False)
    untouched = OpenIncident(8, ("person:1",), T0, T0, auto_mergeable=True)
    plan = group_findings([facts(3, "person:1", "ip:198.51.100.4", minutes=10)], [busy, untouched], WINDOW)
    [group] = plan.groups
    assert group.incident_id == 7 and group.absorbed_incident_ids == []
    assert "also related to incident #8" in group.reasons[-1]["text"]


def test_posture_style_findings_only_join_they_never_open() -> None:
    plan = group_findings(
        [facts(1, "person:1", can_open=False), facts(2, "person:2", can_open=False)], [], WINDOW
    )
    assert plan.groups == [] and plan.ungrouped == [1, 2]
    plan = group_findings([facts(1, "person:1"), facts(2, "person:1", minutes=5, can_open=False)], [], WINDOW)
    assert [g.finding_ids for g in plan.groups] == [[1, 2]]


def test_gaps_read_like_a_person_would_say_them() -> None:
    assert [describe_gap(s) for s in (5, 600, 7500, 3 * 86400 + 3600)] == [
        "5 s",
        "10 min",
        "2 h 5 min",
        "3 d 1 h",
    ]


def test_build_groups_by_resolved_person_across_accounts(
    db, settings, make_person, make_finding, incidents_of
) -> None:
    # given alice has an M365 account and a Slack account under a different address
    make_person(
        "alice@northwind.example",
        accounts=[
            {"provider": "m365", "provider_user_id": "aad-1", "email": "alice@northwind.example"},
            {"provider": "slack", "provider_user_id": "U0ALICE", "email": "alice.w@northwind-chat.example"},
        ],
    )
    make_finding("Impossible travel", people=["alice@northwind.example"])
    make_finding(
        "Slack admin role granted",
        people=["alice.w@northwind-chat.example"],
        provider="slack",
        first_seen=at(30),
    )
    make_finding("Session from new device", accounts=["U0ALICE"], provider="slack", first_seen=at(50))
    # when incidents are built
    build_incidents(db, settings, notify=False)
    # then the three findings are one incident about one person
    [incident] = incidents_of()
    assert incident.finding_count == 3
    assert incident.keys == ["person:1"]
    assert "joined: same person alice@northwind.example" in incident.grouping[1]["text"]


def test_an_identity_finding_naming_a_persons_accounts_on_four_providers_joins_their_incident(
    db, settings, make_person, make_finding, incidents_of
) -> None:
    # given nina has an account on each provider, and an attack finding about her
    make_person(
        "nina@northwind.example",
        accounts=[
            {"provider": "m365", "provider_user_id": "aad-nina", "email": "nina@northwind.example"},
            {"provider": "google", "provider_user_id": "1023307", "email": "nina@northwind.example"},
            {"provider": "slack", "provider_user_id": "UNINA", "email": "nina@northwind.example"},
            {"provider": "okta", "provider_user_id": "00unina", "email": "nina@northwind.example"},
        ],
    )
    make_finding("Suspicious Google login", people=["nina@northwind.example"], provider="google")
    # when the identity stage names her four accounts the way it does ("provider:id")
    make_finding(
        "High-risk person under attack: nina@northwind.example",
        people=["nina@northwind.example"],
        accounts=["m365:aad-nina", "google:1023307", "slack:UNINA", "okta:00unina"],
        first_seen=at(30),
    )
    build_incidents(db, settings, notify=False)
    # then they are one person, not four accounts "too many to group by": one incident
    [incident] = incidents_of()
    assert incident.finding_count == 2
    assert incident.keys == ["person:1"]


def test_build_without_identity_tables_groups_by_normalised_email(
    db, settings, make_finding, incidents_of
) -> None:
    make_finding(people=["Bob+alerts@Northwind.example"])
    make_finding("Mass download", people=["bob@northwind.example"], first_seen=at(90))
    build_incidents(db, settings, notify=False)
    [incident] = incidents_of()
    assert incident.keys == ["email:bob@northwind.example"]


def test_a_later_finding_joins_the_open_incident_on_the_next_build(
    db, settings, make_finding, incidents_of
) -> None:
    make_finding(people=["carol@northwind.example"], ips=["203.0.113.50"])
    first = build_incidents(db, settings, notify=False)
    make_finding(
        "OAuth app granted mail access", ips=["203.0.113.50"], apps=["MailSync Pro"], first_seen=at(hours=3)
    )
    second = build_incidents(db, settings, notify=False)
    [incident] = incidents_of()
    assert first == second == [incident.id]
    assert incident.finding_count == 2
    assert "within 3 h of" in incident.grouping[-1]["text"]


def test_a_resolved_incident_is_not_reopened_by_a_new_finding(
    db, settings, make_finding, incidents_of
) -> None:
    from timeline.lifecycle import transition

    make_finding(people=["dave@northwind.example"])
    [incident_id] = build_incidents(db, settings, notify=False)
    transition(db, incident_id, "resolved", actor=Actor("principal:erin", Channel.CLI))
    make_finding(people=["dave@northwind.example"], first_seen=at(hours=2))
    build_incidents(db, settings, notify=False)
    first, second = incidents_of()
    assert (first.finding_count, second.finding_count) == (1, 1)
    assert second.recurrence_of_id == first.id


def test_an_office_ip_shared_by_many_people_for_days_does_not_group(
    db, settings, make_events, make_finding, incidents_of
) -> None:
    # given the office egress IP is used by five people over a week
    for n, person in enumerate(["a", "b", "c", "d", "e"]):
        make_events(
            2,
            actor=f"{person}@northwind.example",
            ip="198.51.100.1",
            start=T0 - timedelta(days=7 - n),
            every=timedelta(days=1),
        )
    make_finding("Unusual download volume", people=["frank@northwind.example"], ips=["198.51.100.1"])
    make_finding("External share", people=["gina@northwind.example"], ips=["198.51.100.1"], first_seen=at(20))
    build_incidents(db, settings, notify=False)
    incidents = incidents_of()
    assert len(incidents) == 2
    assert all("ip:198.51.100.1" not in i.keys for i in incidents)
    assert "shared: 5 accounts used it over" in incidents[1].grouping[0]["text"]


def test_an_attackers_ip_spraying_many_accounts_in_an_hour_still_groups(
    db, settings, make_events, make_finding, incidents_of
) -> None:
    for person in ["a", "b", "c", "d", "e", "f"]:
        make_events(3, actor=f"{person}@northwind.example", ip="203.0.113.66", outcome="failure")
    make_finding("Password spray", ips=["203.0.113.66"], severity="medium")
    make_finding(
        "Sign-in after spray", people=["c@northwind.example"], ips=["203.0.113.66"], first_seen=at(40)
    )
    build_incidents(db, settings, notify=False)
    [incident] = incidents_of()
    assert incident.finding_count == 2


def test_building_twice_changes_nothing_and_every_step_is_audited(db, settings, make_finding) -> None:
    make_finding(people=["hana@northwind.example"])
    make_finding(people=["hana@northwind.example"], first_seen=at(10))
    build_incidents(db, settings, notify=False)
    assert build_incidents(db, settings, notify=False) == []
    with db.session(readonly=True) as session:
        actions = [r.action for r in session.exec(select(AuditRecord)).all()]
        assert actions.count("incident.created") == 1
        assert verify_database(session).ok
        assert all(f.incident_id is not None for f in session.exec(select(Finding)).all())


def test_suppressed_findings_are_not_grouped(db, settings, make_finding, incidents_of) -> None:
    make_finding(people=["ivan@northwind.example"], status="suppressed")
    assert build_incidents(db, settings, notify=False) == []
    assert incidents_of() == []


def test_first_party_apps_and_company_wide_files_do_not_group(
    db, settings, make_finding, incidents_of
) -> None:
    # given sign-in findings about different people that all name Microsoft Teams
    make_finding("Unfamiliar sign-in", people=["kim@northwind.example"], apps=["Microsoft Teams"])
    make_finding(
        "Unfamiliar sign-in", people=["lee@northwind.example"], apps=["Microsoft Teams"], first_seen=at(30)
    )
    # and downloads of the all-hands deck by many people over days
    for n, person in enumerate(["m", "n", "o", "p"]):
        make_finding(
            "Download burst",
            people=[f"{person}@northwind.example"],
            files=["All hands.pptx"],
            first_seen=at(days=n),
            severity="medium",
        )
    build_incidents(db, settings, notify=False)
    incidents = incidents_of()
    assert len(incidents) == 6
    texts = [i.grouping[0]["text"] for i in incidents]
    assert any(t.endswith("; ignored microsoft teams is a provider's own app") and "lee@" in t for t in texts)
    assert any(
        t.endswith("; ignored All hands.pptx is common: findings about 4 people over 3 days") for t in texts
    )


def test_a_malicious_app_consented_by_several_people_in_an_hour_is_one_incident(
    db, settings, make_finding, incidents_of
) -> None:
    for n, person in enumerate(["q", "r", "s", "t", "u"]):
        make_finding(
            "OAuth app granted mail scopes",
            people=[f"{person}@northwind.example"],
            apps=["MailSync Pro"],
            first_seen=at(n * 10),
        )
    build_incidents(db, settings, notify=False)
    [incident] = incidents_of()
    assert incident.finding_count == 5


def test_concurrent_builds_never_group_a_finding_twice(db, settings, make_finding, incidents_of) -> None:
    from concurrent.futures import ThreadPoolExecutor

    for n in range(20):
        make_finding(people=[f"user{n % 4}@northwind.example"], first_seen=at(n))
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: build_incidents(db, settings, notify=False), range(3)))
    assert sorted(i for r in results for i in r) == [1, 2, 3, 4]
    assert [i.finding_count for i in incidents_of()] == [5, 5, 5, 5]


def test_a_second_build_with_nothing_new_changes_nothing(db, make_finding) -> None:
    """Given findings that cannot open an incident around one that can, when the build runs twice,
    then the first build already placed every finding (the scheduler's next pass moves none)."""
    alice = "alice@northwind.example"
    early = make_finding(
        "New network", people=[alice], severity="informational", kind="anomaly", first_seen=at(0)
    ).id
    opener = make_finding("Inbox rule forwards mail", people=[alice], first_seen=at(90)).id
    late = make_finding(
        "New device", people=[alice], severity="informational", kind="anomaly", first_seen=at(180)
    ).id

    def placement() -> dict[int, int | None]:
        with db.session(readonly=True) as session:
            return {f.id: f.incident_id for f in session.exec(select(Finding)).all()}

    assert build_incidents(db, notify=False)
    first = placement()
    assert first[opener] is not None and first[early] == first[opener] == first[late]
    assert build_incidents(db, notify=False) == []
    assert placement() == first
