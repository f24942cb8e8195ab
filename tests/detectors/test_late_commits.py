"""Events a concurrent writer commits after a higher id was already read are still processed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from core.models import Event, Finding
from core.models.anomaly import AnalysisCursor
from detectors.pipeline import DetectionPipeline

T0 = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def _signin(n: int, user: str = "alice@northwind.example", **fields) -> Event:
    raw = {
        "id": f"late-{n}",
        "createdDateTime": (T0 + timedelta(minutes=n)).isoformat().replace("+00:00", "Z"),
        "userPrincipalName": user,
        "ipAddress": "203.0.113.9",
        "clientAppUsed": "Browser",
        "status": {"errorCode": 0},
        **fields,
    }
    return Event(
        provider="m365",
        stream="signins",
        provider_event_id=raw["id"],
        occurred_at=T0 + timedelta(minutes=n),
        actor=user,
        raw=raw,
    )


class Recorder:
    """A plugged-in detector that remembers which event ids each batch carried."""

    name = "test.recorder"

    def __init__(self) -> None:
        self.seen: list[int] = []

    def detect(self, session, events):
        self.seen.extend(e.id for e in events)
        return ()


def _gaps(db) -> list:
    with db.session(readonly=True) as session:
        return list(session.get(AnalysisCursor, "detection").gaps)


def test_an_event_committed_after_a_higher_id_is_processed_on_the_next_pass(db) -> None:
    if db.url.get_backend_name() != "postgresql":
        pytest.skip("two concurrent writers need PostgreSQL (SQLite serialises writers, ids commit in order)")
    recorder = Recorder()
    pipeline = DetectionPipeline(detectors=[recorder])

    # given a slow writer that took id N but has not committed yet
    with db.session() as slow:
        early = _signin(1)
        slow.add(early)
        slow.flush()
        # and a fast writer that takes N+1 and commits first
        with db.session() as fast:
            late = _signin(2)
            fast.add(late)
            fast.flush()
            fast_id = late.id
        # when detection runs while the slow writer is still open
        first = pipeline.run(db)
        slow_id = early.id
    assert slow_id < fast_id
    assert first.events == 1 and recorder.seen == [fast_id]
    assert _gaps(db)[0][:2] == [slow_id, slow_id]

    # then, once the slow writer committed, the next pass processes the skipped-over id
    second = pipeline.run(db)
    assert second.events == 1 and recorder.seen == [fast_id, slow_id]
    assert _gaps(db) == []
    # and nothing is processed twice afterwards
    assert pipeline.run(db).events == 0


def test_a_late_event_still_raises_its_finding(db) -> None:
    """A late id is matched by the rules like any other (here: legacy authentication on SQLite,
    where a late commit is simulated by an explicit lower id)."""
    pipeline = DetectionPipeline()
    with db.session() as session:
        session.add(Event(id=5, **_signin(5).model_dump(exclude={"id"})))
    pipeline.run(db)
    with db.session() as session:
        legacy = _signin(3, user="bob@northwind.example", clientAppUsed="IMAP4")
        legacy.id = 3
        session.add(legacy)
    result = pipeline.run(db)
    assert result.events == 1
    with db.session(readonly=True) as session:
        findings = session.exec(select(Finding)).all()
    assert any(3 in f.evidence_event_ids for f in findings), [f.rule_id for f in findings]


def test_an_id_that_never_commits_is_given_up_after_the_timeout(db) -> None:
    # given ids 1..3 with 2 never committed (a rolled-back insert burns a sequence value)
    with db.session() as session:
        session.add(Event(id=1, **_signin(1).model_dump(exclude={"id"})))
        session.add(Event(id=3, **_signin(3).model_dump(exclude={"id"})))
    patient = DetectionPipeline(detectors=[Recorder()])
    patient.run(db)
    assert [g[:2] for g in _gaps(db)] == [[2, 2]]
    # when a pass runs with no timeout left, the gap is dropped instead of re-read for ever
    DetectionPipeline(gap_timeout=0).run(db)
    assert _gaps(db) == []


def test_a_filtered_reader_treats_other_rows_as_seen_but_keeps_missing_ones_as_gaps(db) -> None:
    from detectors.cursor import GapCursor

    reader = GapCursor("test.signins-only", Event, where=Event.stream == "signins")
    audit = _signin(2).model_dump(exclude={"id"}) | {"stream": "directory_audits"}
    # given id 1 (a sign-in), 2 (another stream), 3 missing (still being written), 4 (a sign-in)
    with db.session() as session:
        session.add(Event(id=1, **_signin(1).model_dump(exclude={"id"})))
        session.add(Event(id=2, **audit))
        session.add(Event(id=4, **_signin(4).model_dump(exclude={"id"})))
    with db.session() as session:
        rows = reader.read(session, 100)
        reader.advance(session, rows)
    assert [r.id for r in rows] == [1, 4]
    # then only the missing id is a gap, and once it commits it is read
    with db.session(readonly=True) as session:
        assert [g[:2] for g in session.get(AnalysisCursor, "test.signins-only").gaps] == [[3, 3]]
    with db.session() as session:
        session.add(Event(id=3, **_signin(3).model_dump(exclude={"id"})))
    with db.session() as session:
        rows = reader.read(session, 100)
        reader.advance(session, rows)
    assert [r.id for r in rows] == [3]
    with db.session(readonly=True) as session:
        assert session.get(AnalysisCursor, "test.signins-only").gaps == []
