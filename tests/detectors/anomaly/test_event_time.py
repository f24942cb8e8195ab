"""Anomaly findings depend on the events, not on the order they were committed or how the work was cut.

Given the same events, one database stores them at once and judges them in one pass; another
stores them as collectors would (each stream's pages in time order, the streams interleaved,
each page's rows in reverse) and judges after every page up to the time every stream is
collected to, in small bounded passes, by two processes taking turns (each catches up on what
the other judged), one of them restarted half-way (its new engine replays what was judged). Both must end with the same anomaly findings, evidence included.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from core.db import Database
from core.models import Connection, Event
from core.settings import Settings
from detectors.anomaly import detect_anomalies
from tests.detectors.anomaly.conftest import (
    CHICAGO,
    LAGOS_HOSTING,
    NEW_YORK,
    SAO_PAULO_HOSTING,
    START,
    entra_signin,
    normal_history,
    signin_row,
)

USERS = [f"user{i}@acme.test" for i in range(12)]
DAY = START + timedelta(days=15)

Row = tuple[str, str, dict[str, Any], datetime, str | None, str | None, str | None]


def _attacks() -> list[Row]:
    rows: list[Row] = []

    def signin(user: str, at: datetime, place: tuple, **kw: Any) -> None:
        rows.append(signin_row(entra_signin(user, at, place, **kw), at))

    # travel: New York, then a hosting network in Brazil 40 minutes later, on a new device
    home = DAY + timedelta(hours=13)
    signin("user3@acme.test", home, NEW_YORK)
    signin("user3@acme.test", home + timedelta(minutes=40), SAO_PAULO_HOSTING, device=("Linux", "Firefox 1"))
    # a trip: Chicago in the morning (new network), Lagos the next day
    signin("user5@acme.test", DAY + timedelta(hours=9), CHICAGO, host=77)
    signin("user5@acme.test", DAY + timedelta(days=1, hours=11), LAGOS_HOSTING, device=("iOS", "Safari 17"))
    # a password spray over 40 minutes from one IP, then a success for one victim
    for n, user in enumerate(USERS[:10]):
        at = DAY + timedelta(hours=2, minutes=4 * n)
        signin(user, at, LAGOS_HOSTING, host=9, error=50126)
    signin("user1@acme.test", DAY + timedelta(hours=2, minutes=45), LAGOS_HOSTING, host=9)
    # push bombing: four denied prompts in ten minutes, then an accepted one
    for n in range(4):
        signin("user7@acme.test", DAY + timedelta(hours=20, minutes=3 * n), NEW_YORK, error=500121)
    signin("user7@acme.test", DAY + timedelta(hours=20, minutes=13), NEW_YORK)
    # a mass download spread over the afternoon
    for n in range(150):
        at = DAY + timedelta(hours=15, minutes=n)
        raw = {
            "Id": f"bulk-{n}",
            "Operation": "FileDownloaded",
            "UserId": "user9@acme.test",
            "ObjectId": f"https://acme.sharepoint/bulk{n}",
            "CreationTime": at.isoformat(),
        }
        rows.append(("m365", "unified_audit", raw, at, "user9@acme.test", "FileDownloaded", None))
    return rows


def _write(db: Database, rows: list[Row]) -> None:
    with db.session() as session:
        connection = session.get(Connection, 1)
        if connection is None:
            connection = Connection(id=1, name="acme-m365", provider="m365", tenant="acme.test")
            session.add(connection)
            session.flush()
        for provider, stream, raw, at, actor, action, ip in rows:
            session.add(
                Event(
                    connection_id=1,
                    provider=provider,
                    stream=stream,
                    provider_event_id=str(raw.get("id") or raw.get("Id")),
                    occurred_at=at,
                    actor=actor,
                    action=action,
                    ip=ip,
                    raw=raw,
                )
            )


def _findings(db: Database) -> set[tuple[str, str, frozenset[str]]]:
    with db.session(readonly=True) as session:
        ids = dict(session.execute(text("SELECT id, provider_event_id FROM event")).all())
        rows = session.execute(
            text("SELECT rule_id, dedup_key, evidence_event_ids FROM finding WHERE kind = 'anomaly'")
        ).all()
    out = set()
    for rule, key, evidence in rows:
        if isinstance(evidence, str):
            import json

            evidence = json.loads(evidence)
        out.add((rule, key, frozenset(ids[i] for i in evidence)))
    return out


def _pages(rows: list[Row], rng: random.Random) -> list[list[Row]]:
    ordered = sorted(rows, key=lambda r: (r[3], str(r[2].get("id") or r[2].get("Id"))))
    pages, start = [], 0
    while start < len(ordered):
        size = rng.randint(1, 12)
        pages.append(ordered[start : start + size])
        start += size
    return pages


def test_the_same_events_in_one_pass_or_committed_out_of_order_in_small_passes_give_the_same_findings(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    events = normal_history(USERS, days=15) + _attacks()
    # given one database judging every event at once
    reference = Database(f"sqlite:///{tmp_path / 'reference.db'}")
    reference.upgrade()
    _write(reference, events)
    detect_anomalies(reference, settings)
    expected = _findings(reference)
    reference.dispose()
    rules = {rule for rule, _, _ in expected}
    assert {
        "anomaly.impossible_travel",
        "anomaly.new_country",
        "anomaly.password_spray",
        "anomaly.mfa_fatigue",
        "anomaly.volume_spike",
    } <= rules, rules

    # when another stores them stream by stream, page by page, the streams interleaved
    rng = random.Random(7)
    streams = {
        name: _pages([r for r in events if r[1] == name], rng) for name in ("signins", "unified_audit")
    }
    done = {name: 0 for name in streams}
    workers: list[dict[str, Any]] = [{}, {}]  # two processes taking turns, each with its engine
    commits = 0
    while any(done[name] < len(pages) for name, pages in streams.items()):
        waiting = sorted(
            (pages[done[n]][0][3], n) for n, pages in streams.items() if done[n] < len(pages)
        )  # mostly the stream furthest behind, so that the time judged up to moves in small steps
        name = waiting[-1][1] if len(waiting) > 1 and rng.random() < 0.25 else waiting[0][1]
        _write(db, list(reversed(streams[name][done[name]])))  # ids against time within a page
        done[name] += 1
        commits += 1
        # and judges after each page up to what every stream has stored all of, in small passes
        marks = [pages[done[n]][0][3] for n, pages in streams.items() if done[n] < len(pages)]
        cache = workers[rng.randrange(2)]
        detect_anomalies(
            db, settings, until=min(marks) if marks else None, cache=cache, batch_size=40, max_batches=1
        )
        if commits == len(streams["signins"]) // 2:
            workers[0] = {}  # a restart: its next engine replays what was judged
    while detect_anomalies(db, settings, cache=workers[0], batch_size=40, max_batches=1).pending:
        pass

    # then both hold the same anomaly findings, evidence included
    actual = _findings(db)
    assert actual - expected == set() and expected - actual == set()


def _same_instant() -> list[Row]:
    """One person signed in from New York and from Lagos at the same second, then from Chicago:
    which of the two came "first" decides the travel findings' evidence, so it must not be the
    order they were stored in."""
    at = DAY + timedelta(hours=10)
    return [
        signin_row(entra_signin("user11@acme.test", at, NEW_YORK), at),
        signin_row(entra_signin("user11@acme.test", at, LAGOS_HOSTING, host=3), at),
        signin_row(
            entra_signin("user11@acme.test", at + timedelta(minutes=30), CHICAGO), at + timedelta(minutes=30)
        ),
    ]


def _findings_in_full(db: Database) -> list[tuple[Any, ...]]:
    """Every anomaly finding as it reads, events named by provider id (ids differ between stores)."""
    with db.session(readonly=True) as session:
        ids = dict(session.execute(text("SELECT id, provider_event_id FROM event")).all())
        rows = session.execute(
            text(
                "SELECT rule_id, dedup_key, severity, confidence, title, description, count,"
                " evidence_event_ids FROM finding WHERE kind = 'anomaly'"
            )
        ).all()
    out = []
    for *fields, evidence in rows:
        if isinstance(evidence, str):
            evidence = json.loads(evidence)
        out.append((*fields, tuple(ids[i] for i in evidence)))
    return sorted(out)


def test_a_backlog_stored_in_another_order_and_judged_in_smaller_passes_gives_the_same_findings(
    settings: Settings, tmp_path: Path
) -> None:
    events = normal_history(USERS, days=15) + _attacks() + _same_instant()
    by_time = sorted(events, key=lambda r: (r[3], str(r[2].get("id") or r[2].get("Id"))))
    # stream after stream, each newest first: ids run against time and across streams
    by_stream = sorted(reversed(by_time), key=lambda r: r[1] != "unified_audit")
    results = []
    for name, order, pass_size in (("a", by_time, 20_000), ("b", by_stream, 37)):
        # given a backlog of stored events, collected to its end
        db = Database(f"sqlite:///{tmp_path / f'{name}.db'}")
        db.upgrade()
        _write(db, order)
        # when it is judged, in one pass or in many smaller than the backlog
        detect_anomalies(db, settings, batch_size=pass_size)
        results.append(_findings_in_full(db))
        db.dispose()
    # then the findings are the same, word for word and evidence included
    rules = {finding[0] for finding in results[0]}
    assert {"anomaly.impossible_travel", "anomaly.password_spray", "anomaly.volume_spike"} <= rules, rules
    assert any("user11" in finding[1] for finding in results[0])
    assert results[0] == results[1]
