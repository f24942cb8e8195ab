"""Rule and correlation findings depend on the events, not on the order they were stored in or how
the work was cut into passes.

Given three days of Entra ID sign-ins and SharePoint downloads with two password sprays, a brute
force followed by a success, and a mass download among everyday activity, stored oldest first,
newest first (every stream's ids reversed), or as collectors store a backlog (one stream after
the other, each stream's pages newest first, each page's rows shuffled), and processed in one pass
or in passes of 37 events: the pipeline ends with the same findings, evidence included, as the
engine given the whole backlog at once in event time.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from core.db import Database
from core.models import Event, Finding
from detectors.pipeline import DetectionPipeline, load_default_pack
from detectors.sigma.engine import DetectionEngine
from detectors.sigma.events import EventRecord

START = datetime(2026, 11, 17, tzinfo=UTC)
USERS = [f"user{i}@northwind.example" for i in range(30)]


def _signin(at: datetime, user: str, ip: str, error: int) -> Event:
    raw = {
        "id": f"signin-{user}-{at.timestamp():.0f}-{ip}-{error}",
        "createdDateTime": at.isoformat().replace("+00:00", "Z"),
        "userPrincipalName": user,
        "ipAddress": ip,
        "clientAppUsed": "Browser",
        "status": {"errorCode": error},
    }
    return Event(
        provider="m365",
        stream="signins",
        provider_event_id=raw["id"],
        occurred_at=at,
        actor=user,
        ip=ip,
        raw=raw,
    )


def _download(at: datetime, user: str, n: int) -> Event:
    raw = {
        "Id": f"download-{user}-{n}-{at.timestamp():.0f}",
        "CreationTime": at.isoformat().replace("+00:00", ""),
        "Operation": "FileDownloaded",
        "UserId": user,
        "ClientIP": "203.0.113.7",
        "ObjectId": f"https://northwind.sharepoint.com/sites/finance/doc{n}.xlsx",
    }
    return Event(
        provider="m365",
        stream="unified_audit",
        provider_event_id=raw["Id"],
        occurred_at=at,
        actor=user,
        action="FileDownloaded",
        raw=raw,
    )


def backlog() -> list[Event]:
    """The three days, in event time."""
    rng = random.Random(7)
    events: list[Event] = []
    for _ in range(260):  # everyday sign-ins and the odd mistyped password
        at = START + timedelta(seconds=rng.randrange(3 * 86400))
        events.append(
            _signin(at, rng.choice(USERS), f"198.51.100.{rng.randrange(1, 40)}", rng.choice([0, 0, 0, 50126]))
        )
    for _ in range(60):
        at = START + timedelta(seconds=rng.randrange(3 * 86400))
        events.append(_download(at, rng.choice(USERS), rng.randrange(1000)))
    spray = START + timedelta(hours=3)
    events += [
        _signin(spray + timedelta(seconds=50 * n), USERS[n], "185.220.101.34", 50126) for n in range(12)
    ]
    spray = START + timedelta(days=1, hours=22)
    events += [
        _signin(spray + timedelta(seconds=90 * n), USERS[n + 5], "45.133.1.9", 50126) for n in range(14)
    ]
    brute = START + timedelta(days=1, hours=9)
    events += [
        _signin(brute + timedelta(seconds=20 * n), "cfo@northwind.example", "45.133.1.10", 50126)
        for n in range(11)
    ]
    events.append(_signin(brute + timedelta(minutes=5), "cfo@northwind.example", "45.133.1.10", 0))
    staging = START + timedelta(days=2, hours=16)
    events += [_download(staging + timedelta(seconds=7 * n), "ivan@northwind.example", n) for n in range(40)]
    return sorted(events, key=lambda e: (e.occurred_at, e.provider_event_id))


def oldest_first(events: list[Event]) -> list[Event]:
    return events


def newest_first(events: list[Event]) -> list[Event]:
    return events[::-1]


def as_collected(events: list[Event]) -> list[Event]:
    """One stream after the other, each stream's pages (of 50) newest first, each page shuffled."""
    rng = random.Random(3)
    out: list[Event] = []
    for stream in ("unified_audit", "signins"):
        mine = [e for e in events if e.stream == stream][::-1]
        for start in range(0, len(mine), 50):
            page = mine[start : start + 50]
            rng.shuffle(page)
            out += page
    return out


def _store(db: Database, events: list[Event]) -> None:
    with db.session() as session:
        for event in events:  # one flush per event: ids in exactly this order
            session.add(event)
            session.flush()


def _outcome(rows: list[Any], provider_ids: dict[Any, str]) -> list[tuple[Any, ...]]:
    return sorted(
        (
            f.rule_id,
            f.count,
            f.first_seen.timestamp(),
            tuple(sorted(provider_ids[i] for i in f.evidence_event_ids)),
        )
        for f in rows
    )


def expected_outcome(events: list[Event]) -> list[tuple[Any, ...]]:
    """The engine alone, given the whole backlog at once (ids: the provider ids)."""
    records = [
        EventRecord(
            e.provider_event_id, e.provider, e.stream, e.occurred_at.timestamp(), e.raw, e.provider_event_id
        )
        for e in events
    ]
    findings = DetectionEngine(load_default_pack()).process(records).findings
    return _outcome(findings, {e.provider_event_id: e.provider_event_id for e in events})


@pytest.fixture(scope="module")
def expected() -> list[tuple[Any, ...]]:
    outcome = expected_outcome(backlog())
    fired = sorted({row[0] for row in outcome})
    assert {
        "m365_password_spray",
        "m365_brute_force",
        "m365_success_after_brute_force",
        "m365_mass_download",
    } <= set(fired), fired
    assert [row[0] for row in outcome].count("m365_password_spray") == 2
    return outcome


@pytest.mark.parametrize("order", [oldest_first, newest_first, as_collected], ids=lambda f: f.__name__)
@pytest.mark.parametrize("batch_size", [5000, 37])
def test_findings_do_not_depend_on_storage_order_or_pass_size(db, order, batch_size, expected) -> None:
    # given the backlog stored in this order
    events = order(backlog())
    _store(db, events)
    # when the pipeline works through it in passes of `batch_size`
    result = DetectionPipeline(batch_size=batch_size).run(db)
    # then it found what the engine finds over the backlog in event time, evidence included
    assert result.events == len(events) and not result.pending
    with db.session(readonly=True) as session:
        stored = list(session.exec(select(Finding)).all())
        provider_ids = {e.id: e.provider_event_id for e in session.exec(select(Event)).all()}
    assert _outcome(stored, provider_ids) == expected


def test_a_page_stored_after_detection_passed_its_time_is_a_late_arrival(db) -> None:
    # given sign-ins processed up to 03:20, then a page of the spray's first failures stored late
    events = backlog()
    spray = [e for e in events if e.ip == "185.220.101.34"]
    first, rest = (
        spray[:6],
        [e for e in events if e not in spray[:6] and e.occurred_at <= spray[-1].occurred_at],
    )
    _store(db, rest)
    pipeline = DetectionPipeline(batch_size=37)
    pipeline.run(db)
    _store(db, first)
    # when detection runs again
    result = pipeline.run(db)
    # then the late page is read (within the correlation's lateness) and the spray still fires
    assert result.events == 6
    with db.session(readonly=True) as session:
        (spray_finding,) = session.exec(select(Finding).where(Finding.rule_id == "m365_password_spray")).all()
    assert len(spray_finding.evidence_event_ids) == 12
