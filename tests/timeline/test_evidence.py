"""Evidence: thousands of events become a few counted timeline entries."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from core.models.incident import TimelineEntry
from tests.factories import T0
from timeline import build_incidents
from timeline.evidence import EventFacts, collapse

GAP = timedelta(hours=1)


def event(
    i: int,
    minutes: float,
    action: str = "FileDownloaded",
    actor: str = "a@x.example",
    ip: str = "203.0.113.1",
    target: str | None = None,
) -> EventFacts:
    return EventFacts(
        i, T0 + timedelta(minutes=minutes), "m365", "unified_audit", action, actor, ip, "success", target
    )


def test_repeats_close_together_collapse_into_one_counted_entry() -> None:
    entries = collapse(
        [event(i, i * 0.5, target=f"file{i}.docx") for i in range(300)], gap=GAP, max_entries=50
    )
    [entry] = entries
    assert entry.count == 300
    assert entry.title == "300 × FileDownloaded by a@x.example from 203.0.113.1 (success) on 300 targets"
    assert entry.sample_ids == (0, 1, 2, 3, 4)
    assert entry.last_at - entry.first_at == timedelta(minutes=149.5)


def test_a_pause_longer_than_the_gap_starts_a_new_entry() -> None:
    entries = collapse([event(1, 0), event(2, 10), event(3, 200)], gap=GAP, max_entries=50)
    assert [e.count for e in entries] == [2, 1]


def test_different_actions_or_sources_stay_separate_and_in_time_order() -> None:
    entries = collapse(
        [
            event(1, 5, action="UserLoggedIn"),
            event(2, 0, action="MailItemsAccessed"),
            event(3, 6, ip="198.51.100.9", action="UserLoggedIn"),
        ],
        gap=GAP,
        max_entries=50,
    )
    assert [(e.action, e.fixed["ip"]) for e in entries] == [
        ("MailItemsAccessed", "203.0.113.1"),
        ("UserLoggedIn", "203.0.113.1"),
        ("UserLoggedIn", "198.51.100.9"),
    ]


def test_a_spray_from_thousands_of_ips_is_folded_into_counts() -> None:
    events = [
        event(
            i,
            i * 0.01,
            action="UserLoginFailed",
            actor=f"u{i % 40}@x.example",
            ip=f"10.{i // 250}.{i % 250}.1",
        )
        for i in range(5000)
    ]
    # the source IP is folded first: one entry per account fits under the limit
    per_account = collapse(events, gap=GAP, max_entries=100)
    assert len(per_account) == 40
    assert per_account[0].title == "125 × UserLoginFailed by u0@x.example from 125 IPs (success)"
    # with a tighter limit the accounts are folded too
    [entry] = collapse(events, gap=GAP, max_entries=30)
    assert entry.count == 5000
    assert entry.distinct == {"actor": 40, "ip": 5000, "target": 0}
    assert entry.title == "5000 × UserLoginFailed by 40 accounts from 5,000 IPs (success)"


def test_an_incident_with_many_evidence_events_gets_few_entries(
    db, settings, make_events, make_finding
) -> None:
    downloads = make_events(3000, action="FileDownloaded", every=timedelta(seconds=2), target="Payroll.xlsx")
    logins = make_events(40, action="UserLoginFailed", outcome="failure", start=T0 - timedelta(hours=3))
    make_finding("Mass download", people=["alice@northwind.example"], evidence=downloads + logins)
    [incident_id] = build_incidents(db, settings, notify=False)
    with db.session(readonly=True) as session:
        entries = session.exec(
            select(TimelineEntry).where(TimelineEntry.kind == "evidence").order_by(TimelineEntry.at)
        ).all()
    assert [(e.count, e.body["action"]) for e in entries] == [
        (40, "UserLoginFailed"),
        (3000, "FileDownloaded"),
    ]
    assert entries[0].ref_type == "event" and entries[1].body["finding_ids"] == [1]


def test_evidence_is_rebuilt_when_a_detector_updates_its_finding(
    db, settings, make_events, make_finding
) -> None:
    from core.models.finding import Finding

    first = make_events(10, action="UserLoginFailed", outcome="failure")
    finding_id = make_finding("Brute force", people=["bo@northwind.example"], evidence=first).id
    build_incidents(db, settings, notify=False)
    more = make_events(5, action="UserLoginFailed", outcome="failure", start=T0 + timedelta(minutes=10))
    with db.session() as session:
        finding = session.get(Finding, finding_id)
        finding.evidence_event_ids = first + more
        finding.count = 2
        finding.updated_at = T0 + timedelta(hours=1)
        session.add(finding)
    build_incidents(db, settings, notify=False)
    with db.session(readonly=True) as session:
        entries = session.exec(select(TimelineEntry).where(TimelineEntry.kind == "evidence")).all()
    assert [e.count for e in entries] == [15]
