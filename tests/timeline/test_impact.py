"""Customer impact score: scope, severity and duration, each explained, in priority and reports."""

from __future__ import annotations

from datetime import timedelta

from tests.factories import T0, at
from timeline import build_incidents
from timeline.impact import LIFTS_TO_P2, customer_impact, describe
from timeline.reports import build_report, render_markdown


def impact(**overrides):  # type: ignore[no-untyped-def]
    values = dict(
        people=1,
        files=0,
        apps=0,
        providers=1,
        sensitive=False,
        exposed=False,
        severity="high",
        started=T0,
        ended=T0 + timedelta(hours=1),
    )
    values.update(overrides)
    return customer_impact(**values)


def test_the_score_adds_scope_severity_and_duration_with_their_figures() -> None:
    one = impact()
    # 8·log2(2) = 8 for one person; 40 × 0.75 for high; 6·log2(2) = 6 for one hour
    assert one["factors"]["scope"]["points"] == 8.0
    assert one["factors"]["severity"]["points"] == 30.0
    assert one["factors"]["duration"]["points"] == 6.0
    assert (one["score"], one["band"]) == (44.0, "medium")
    assert describe(one).startswith("impact 44 (medium): scope 8 — 1 person; 0 files")


def test_more_people_data_time_and_severity_each_raise_it_and_it_is_bounded() -> None:
    base = impact()["score"]
    assert impact(people=30)["score"] > base
    assert impact(files=2, sensitive=True, exposed=True)["score"] > base
    assert impact(ended=T0 + timedelta(days=3))["score"] > base
    assert impact(severity="critical")["score"] > base
    worst = impact(
        people=10_000,
        files=500,
        apps=40,
        providers=4,
        sensitive=True,
        exposed=True,
        severity="critical",
        ended=T0 + timedelta(days=400),
    )
    assert worst["score"] == 100.0 and worst["band"] == "high"
    assert impact(severity="low", ended=T0)["band"] == "low"


def test_an_incident_carries_its_impact_and_the_report_shows_it(db, settings, make_finding) -> None:
    make_finding("Impossible travel", people=["alice@northwind.example"], ips=["203.0.113.7"])
    make_finding("Inbox rule forwards outside", people=["alice@northwind.example"], first_seen=at(90))
    [incident_id] = build_incidents(db, settings, notify=False, now=T0 + timedelta(hours=2))
    report = build_report(db, incident_id)
    stored = report.incident.priority_factors["impact"]
    assert stored["factors"]["duration"]["hours"] == 1.5  # first sign to the last activity
    assert stored["factors"]["scope"]["people"] == 1
    assert report.facts["impact"] == stored
    assert f"**Customer impact** — impact {stored['score']:g} ({stored['band']})" in render_markdown(report)


def test_a_wide_long_medium_incident_is_lifted_to_p2_by_its_impact(db, settings, make_finding) -> None:
    people = [f"user{n}@northwind.example" for n in range(12)]
    files = ["Payroll 2025.xlsx", "Customer list.csv"]
    make_finding(
        "Files shared with anyone",
        severity="medium",
        people=people,
        files=files,
        last_seen=at(days=2),  # still going two days later
        context={"visibility": "anyone"},
    )
    [incident_id] = build_incidents(db, settings, notify=False, now=T0 + timedelta(days=3))
    incident = build_report(db, incident_id).incident
    factors = incident.priority_factors
    assert factors["impact"]["score"] >= LIFTS_TO_P2
    assert incident.priority == "P2"
    assert factors["lifted_by_impact"].endswith("to P2")
