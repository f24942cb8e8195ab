"""Noise reduction: the low end goes to a daily digest, mass changes are one line, drifts inside a
declared change window open nothing — and each of them still lets the real thing through."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from core.audit import Actor, Channel
from core.models import AuditRecord
from core.models.finding import Finding
from core.models.noise import Digest
from tests.factories import T0, at
from timeline import build_incidents
from timeline.changes import cancel_change_window, declare_change_window, list_change_windows
from timeline.digest import build_digests, deliver_digests
from timeline.errors import ChangeWindowError
from timeline.noise import PopulationFinding, PopulationRules, mass_changes

ADMIN = Actor("principal:erin", Channel.CLI)
AFTER_THE_DAY = T0.replace(hour=0) + timedelta(days=1, hours=2)


def rollout(n: int, *, every: timedelta, ip: str | None = None) -> list[PopulationFinding]:
    return [
        PopulationFinding(
            i,
            "m365_security_info_registered",
            "medium",
            T0 + every * i,
            (f"email:p{i}@northwind.example",),
            (f"ip:{ip}",) if ip else (),
        )
        for i in range(n)
    ]


def test_many_people_doing_the_same_in_an_afternoon_is_one_mass_change() -> None:
    [change] = mass_changes(rollout(40, every=timedelta(minutes=4)))
    assert (change.people, len(change.finding_ids)) == (40, 40)
    assert change.why.startswith("mass change: 40 people did the same (m365_security_info_registered)")


def test_the_same_thing_spread_over_days_or_from_one_ip_is_no_mass_change() -> None:
    # a few people a day is the ordinary trickle, judged one by one
    assert mass_changes(rollout(12, every=timedelta(hours=8))) == []
    # one uncommon source for all of them is a campaign, not a rollout
    assert mass_changes(rollout(12, every=timedelta(minutes=5), ip="203.0.113.66")) == []
    # and high findings are never hidden in a crowd
    high = [
        PopulationFinding(f.id, f.rule_id, "high", f.first_seen, f.people)
        for f in rollout(20, every=timedelta(minutes=1))
    ]
    assert mass_changes(high, PopulationRules()) == []


def test_low_findings_go_to_the_digest_not_to_p4_incidents(db, settings, make_finding, incidents_of) -> None:
    # given low and informational findings about different people on one day
    low = make_finding("New device", people=["ana@northwind.example"], severity="low")
    info = make_finding(
        "New network", people=["ben@northwind.example"], severity="informational", first_seen=at(30)
    )
    # and a low one about someone a real incident is about
    make_finding("Impossible travel", people=["cy@northwind.example"], severity="high", first_seen=at(60))
    joined = make_finding("New device", people=["cy@northwind.example"], severity="low", first_seen=at(70))
    # when incidents and then the digest of the (ended) day are built
    build_incidents(db, settings, notify=False, now=at(days=1))
    [incident] = incidents_of()
    assert build_digests(db, settings, now=T0.replace(hour=0) + timedelta(days=1, minutes=30)) == []  # grace
    [digest_id] = build_digests(db, settings, now=AFTER_THE_DAY)
    # then only the high finding opened an incident, with its person's low finding in it
    assert incident.finding_count == 2
    with db.session(readonly=True) as session:
        digest = session.get(Digest, digest_id)
        assert digest is not None and digest.finding_count == 2 and digest.people_count == 2
        assert sorted(f for item in digest.items for f in item["finding_ids"]) == [low.id, info.id]
        assert digest.summary.startswith(
            "2025-03-10: 2 low-signal findings about 2 people joined no incident"
        )
        assert session.get(Finding, joined.id).digest_id is None
        [audit] = session.exec(select(AuditRecord).where(AuditRecord.action == "digest.created")).all()
        assert audit.details["findings"] == 2
    # and a second build reports nothing twice
    assert build_digests(db, settings, now=AFTER_THE_DAY + timedelta(hours=5)) == []


def test_each_tenant_gets_its_own_digest_from_where_its_findings_evidence_came_from(
    db, settings, make_finding, make_events
) -> None:
    from tests.factories import make_connection

    # given two tenants' connections and low findings whose evidence each of them collected
    north = make_connection(db, "northwind-m365")
    south = make_connection(db, "southwind-m365")
    ana = make_finding(
        "New device",
        people=["ana@northwind.example"],
        severity="low",
        evidence=make_events(1, actor="ana@northwind.example", connection_id=north.id),
    )
    ben = make_finding(
        "New device",
        people=["ben@northwind.example"],
        severity="low",
        first_seen=at(10),
        evidence=make_events(1, actor="ben@northwind.example", connection_id=north.id, start=at(10)),
    )
    cy = make_finding(
        "New device",
        people=["cy@southwind.example"],
        severity="low",
        first_seen=at(20),
        evidence=make_events(1, actor="cy@southwind.example", connection_id=south.id, start=at(20)),
    )
    # and one no event ties to a tenant
    loose = make_finding("New network", people=["dan@northwind.example"], severity="low", first_seen=at(30))
    # when the day's digests are built
    created = build_digests(db, settings, now=AFTER_THE_DAY)
    # then one digest per tenant, named, each with only its own findings
    with db.session(readonly=True) as session:
        digests = {d.tenant: d for d in (session.get(Digest, i) for i in created) if d is not None}
        assert set(digests) == {"northwind-m365", "southwind-m365", ""}
        held = {t: sorted(f for item in d.items for f in item["finding_ids"]) for t, d in digests.items()}
        assert held == {"northwind-m365": [ana.id, ben.id], "southwind-m365": [cy.id], "": [loose.id]}
        assert digests["southwind-m365"].connection_id == south.id
        assert digests["southwind-m365"].summary.startswith("2025-03-10 (southwind-m365): 1 low-signal")
        assert {d.day for d in digests.values()} == {T0.replace(hour=0)}
    # and a late finding of one tenant goes into that tenant's next digest, not another's
    late = make_finding(
        "New device",
        people=["eve@southwind.example"],
        severity="low",
        first_seen=at(40),
        evidence=make_events(1, actor="eve@southwind.example", connection_id=south.id, start=at(40)),
    )
    [next_day] = build_digests(db, settings, now=AFTER_THE_DAY + timedelta(days=1))
    with db.session(readonly=True) as session:
        digest = session.get(Digest, next_day)
        assert digest is not None and digest.tenant == "southwind-m365"
        assert [f for item in digest.items for f in item["finding_ids"]] == [late.id]


def test_a_late_low_finding_of_a_reported_day_goes_into_the_next_digest(db, settings, make_finding) -> None:
    make_finding("New device", people=["ana@northwind.example"], severity="low")
    [first] = build_digests(db, settings, now=AFTER_THE_DAY)
    late = make_finding("New network", people=["dan@northwind.example"], severity="low", first_seen=at(20))
    [second] = build_digests(db, settings, now=AFTER_THE_DAY + timedelta(days=1))
    with db.session(readonly=True) as session:
        digest = session.get(Digest, second)
        assert digest is not None and digest.day == T0.replace(hour=0) + timedelta(days=1)
        [item] = digest.items
        assert (
            item["finding_ids"] == [late.id]
            and item["late"] == 1
            and "late from an earlier day" in item["text"]
        )
    assert first != second


def test_a_rollout_is_one_digest_line_unless_a_member_shows_another_signal(
    db, settings, make_finding, incidents_of
) -> None:
    # given 30 people registering an MFA method (medium) within two hours
    people = [f"p{i}@northwind.example" for i in range(30)]
    for i, person in enumerate(people):
        make_finding(
            "User registered security info",
            rule_id="m365_security_info_registered",
            severity="medium",
            people=[person],
            first_seen=at(4 * i),
        )
    # and one of them also signing in through an anonymising proxy an hour later
    make_finding("Sign-in from an anonymous IP", people=[people[7]], severity="medium", first_seen=at(90))
    build_incidents(db, settings, notify=False, now=at(days=1))
    # then the only incident is the person with two signals
    [incident] = incidents_of()
    assert incident.entities["people"] == [people[7]] and incident.finding_count == 2
    # and the rest is one mass-change line in the digest
    [digest_id] = build_digests(db, settings, now=AFTER_THE_DAY)
    with db.session(readonly=True) as session:
        digest = session.get(Digest, digest_id)
        assert digest is not None
        [line] = digest.items
        assert line["count"] == 29 and line["mass"]["people"] == 30
        assert "mass change: 30 people did the same" in line["text"]
        assert "mass change: 30 people (m365_security_info_registered)" in digest.summary


def test_a_drift_inside_a_declared_change_by_its_actor_opens_nothing(
    db, settings, make_finding, make_events, incidents_of
) -> None:
    # given a declared change window for the sysadmin
    window = declare_change_window(
        db,
        reference="CHG-7310",
        actor_email="Olivia@Northwind.example",
        starts_at=at(-30),
        ends_at=at(90),
        description="open Drive sharing for the partner migration",
        actor=ADMIN,
    )
    # when the sysadmin weakens a setting inside it (high), someone else does the same inside it,
    # and the sysadmin does it again after it closed
    inside = make_events(
        1, action="CHANGE_APPLICATION_SETTING", actor="olivia@northwind.example", start=at(10)
    )
    by_other = make_events(
        1, action="CHANGE_APPLICATION_SETTING", actor="mallory@northwind.example", start=at(20)
    )
    after = make_events(
        1, action="CHANGE_APPLICATION_SETTING", actor="olivia@northwind.example", start=at(hours=30)
    )
    covered = make_finding(
        "Security setting weakened",
        people=["olivia@northwind.example"],
        evidence=inside,
        first_seen=at(10),
        confidence=0.95,
    )
    make_finding(
        "Security setting weakened",
        people=["mallory@northwind.example"],
        evidence=by_other,
        first_seen=at(20),
        confidence=0.95,
    )
    make_finding(
        "Security setting weakened",
        people=["olivia@northwind.example"],
        evidence=after,
        first_seen=at(hours=30),
        confidence=0.95,
    )
    build_incidents(db, settings, notify=False, now=at(days=2))
    # then the drift inside the window by its actor opened no incident; the other two did
    incidents = incidents_of()
    assert len(incidents) == 2 and all(i.priority in ("P1", "P2") for i in incidents)
    with db.session(readonly=True) as session:
        assert session.get(Finding, covered.id).incident_id is None
    # and the digest records it with the change reference
    [digest_id, *_] = build_digests(db, settings, now=AFTER_THE_DAY)
    with db.session(readonly=True) as session:
        digest = session.get(Digest, digest_id)
        assert digest is not None
        [line] = [i for i in digest.items if covered.id in i["finding_ids"]]
        assert line["changes"][0]["reference"] == "CHG-7310"
        assert (
            "inside declared change CHG-7310 by its declared actor olivia@northwind.example" in line["text"]
        )
        [audit] = session.exec(
            select(AuditRecord).where(AuditRecord.action == "change_window.declared")
        ).all()
        assert audit.actor == "principal:erin" and audit.object_id == str(window["id"])
    # and a cancelled window covers nothing any more
    cancel_change_window(db, window["id"], actor=ADMIN)
    assert list_change_windows(db) == []
    assert list_change_windows(db, include_cancelled=True)[0]["cancelled_by"] == "principal:erin"


@pytest.mark.parametrize(
    ("reference", "actor", "hours", "message"),
    [
        ("", "olivia@northwind.example", 1, "reference must be"),
        ("CHG-1", "olivia", 1, "is not an email address"),
        ("CHG-1", "olivia@northwind.example", -1, "is not after starts_at"),
        ("CHG-1", "olivia@northwind.example", 24 * 8, "at most 7 days"),
    ],
)
def test_a_bad_change_window_is_refused_with_the_reason(db, reference, actor, hours, message) -> None:
    with pytest.raises(ChangeWindowError, match=message):
        declare_change_window(
            db,
            reference=reference,
            actor_email=actor,
            starts_at=T0,
            ends_at=T0 + timedelta(hours=hours),
            actor=ADMIN,
        )


def test_the_digest_is_posted_once_to_the_notification_channel(
    db, settings, make_simulator, make_finding
) -> None:
    from collectors import connections_from_simulator
    from collectors.connections import sync_connections

    handle = make_simulator("quiet_week", users=12, days=1, seed=3)
    definitions = connections_from_simulator(
        handle.info, providers=["slack"], extra_config={"notify_channel": "#security-ops"}, backfill=False
    )
    sync_connections(db, definitions, actor=ADMIN)
    make_finding("New device", people=["ana@northwind.example"], severity="low")
    [digest_id] = build_digests(db, settings, now=AFTER_THE_DAY)
    report = deliver_digests(db, settings, now=AFTER_THE_DAY)
    assert report.posted == [digest_id] and report.failed == {}
    [post] = [c for c in handle.changes if c["action"] == "post_message"]
    assert post["target"]["text"] == "Daily digest 2025-03-10: 1 low-signal findings, no incident"
    assert deliver_digests(db, settings, now=AFTER_THE_DAY).posted == []
    with db.session(readonly=True) as session:
        digest = session.get(Digest, digest_id)
        assert digest is not None and digest.notifications["ts"] == post["target"]["ts"]
        assert session.exec(select(AuditRecord).where(AuditRecord.action == "digest.notified")).one()
