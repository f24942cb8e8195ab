"""The detection pipeline over stored events: findings written once, grown in place, survive restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

from sqlmodel import select

from core.audit import Actor, Channel
from core.models import AuditRecord, Event, Finding, Suppression
from detectors.pipeline import DetectionPipeline, default_rules_path
from detectors.sigma.loader import load_pack
from detectors.suppressions import create_suppression, list_suppressions, remove_suppression
from tests.leaks import PHONE, SECRET, assert_stored_redacted

T0 = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
_ids = count(1)


def _failure(user: str, at: datetime, ip: str = "185.220.101.34") -> Event:
    raw = {
        "id": f"signin-{next(_ids)}",
        "createdDateTime": at.isoformat().replace("+00:00", "Z"),
        "userPrincipalName": user,
        "ipAddress": ip,
        "clientAppUsed": "Browser",
        "status": {"errorCode": 50126},
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


def _store(db, events: list[Event]) -> list[int]:
    with db.session() as session:
        session.add_all(events)
        session.flush()
        return [e.id for e in events]


def _spray(db, users: range, start: datetime) -> list[int]:
    return _store(
        db,
        [
            _failure(f"user{i}@northwind.example", start + timedelta(seconds=30 * n))
            for n, i in enumerate(users)
        ],
    )


def _findings(db) -> list[Finding]:
    with db.session(readonly=True) as session:
        return list(session.exec(select(Finding).order_by(Finding.id)).all())


def test_stored_spray_becomes_one_audited_finding_citing_its_events(db) -> None:
    # given twelve failed sign-ins for twelve users from one IP, stored by the collectors
    ids = _spray(db, range(12), T0)
    # when the pipeline runs
    result = DetectionPipeline().run(db)
    # then one password-spray finding cites every event, and its creation is audited
    (finding,) = [f for f in _findings(db) if f.rule_id == "m365_password_spray"]
    assert result.events == 12 and result.created == 1
    assert sorted(finding.evidence_event_ids) == ids
    assert finding.severity == "high" and finding.kind == "correlation" and finding.count == 12
    assert finding.mitre == ["T1110.003"] and finding.runbook.startswith("1.")
    assert "185.220.101.34" in finding.entities["ips"]
    with db.session(readonly=True) as session:
        audits = session.exec(select(AuditRecord).where(AuditRecord.action == "finding.created")).all()
    assert [a.object_id for a in audits] == [str(finding.id)]


def test_running_again_processes_nothing_twice(db) -> None:
    _spray(db, range(12), T0)
    pipeline = DetectionPipeline()
    pipeline.run(db)
    assert pipeline.run(db).events == 0
    assert len(_findings(db)) == 1


def test_after_a_restart_the_alert_grows_in_place_instead_of_duplicating(db) -> None:
    _spray(db, range(12), T0)
    DetectionPipeline().run(db)
    # a new process (fresh engine) sees three more failures from the same IP a few minutes later
    _spray(db, range(12, 15), T0 + timedelta(minutes=7))
    result = DetectionPipeline().run(db)
    (finding,) = _findings(db)
    assert result.created == 0 and result.updated == 1
    assert finding.count == 15 and len(finding.evidence_event_ids) == 15


def test_suppressions_are_applied_counted_and_audited(db) -> None:
    pack = load_pack([default_rules_path()])
    with db.session() as session:
        row = create_suppression(
            session,
            rule_id="m365_password_spray",
            match={"ipAddress": "185.220.101.*"},
            reason="red team exercise REQ-42",
            actor=Actor("principal:alice", Channel.CLI),
            pack=pack,
        )
        suppression_id = row.id
    _spray(db, range(12), T0)
    DetectionPipeline(pack).run(db)
    assert _findings(db) == []
    with db.session() as session:
        (stored,) = list_suppressions(session)
        assert stored.suppressed_count >= 1
        remove_suppression(session, suppression_id, actor=Actor("principal:alice", Channel.CLI))
    with db.session(readonly=True) as session:
        actions = [a.action for a in session.exec(select(AuditRecord).order_by(AuditRecord.seq)).all()]
        assert session.exec(select(Suppression)).all() == []
    assert actions[0] == "suppression.created" and actions[-1] == "suppression.deleted"


def test_a_plugged_in_detector_writes_through_the_same_path(db) -> None:
    from detectors.sigma.alerting import FindingDraft

    class EveryBatch:
        name = "test.every_batch"

        def detect(self, session, events):
            first = min(e.occurred_at for e in events)
            yield FindingDraft(
                rule_id="anomaly.test",
                kind="anomaly",
                severity="low",
                confidence=0.5,
                title="seen a batch",
                description="",
                provider="m365",
                entities={},
                evidence_event_ids=tuple(e.id for e in events[:2]),
                first_seen=first,
                last_seen=first,
                count=len(events),
                dedup_key="anomaly.test|batch",
                window_start=first.timestamp(),
                mitre=(),
                context={},
                runbook="",
            )

    _store(db, [_failure("a@northwind.example", T0)])
    DetectionPipeline(detectors=[EveryBatch()]).run(db)
    assert [f.rule_id for f in _findings(db)] == ["anomaly.test"]


def test_detect_new_runs_anomaly_detectors_too_and_reads_each_event_once(db, settings) -> None:
    from detectors.pipeline import detect_new

    _spray(db, range(12), T0)
    first = detect_new(db, settings)
    assert first.events == 12 and first.created >= 1
    assert detect_new(db, settings).events == 0
    assert "m365_password_spray" in {f.rule_id for f in _findings(db)}


def test_the_detection_batch_is_the_configured_size(db, settings) -> None:
    from detectors.pipeline import detect_new

    _spray(db, range(12), T0)
    small = settings.model_copy(update={"pipeline_batch_size": 5})
    first = detect_new(db, small, with_anomaly=False, max_batches=1)
    assert first.events == 5 and first.pending
    rest = detect_new(db, small, with_anomaly=False)
    assert rest.events == 7 and not rest.pending


def test_a_growing_finding_keeps_its_title_and_description_current(db) -> None:
    from detectors.sigma.alerting import FindingDraft

    class GrowingSpike:
        """Emits the same alert (same dedup key and window) with the day's count so far."""

        name = "test.growing_spike"

        def __init__(self) -> None:
            self.batches = 0

        def detect(self, session, events):
            self.batches += 1
            files = 400 * self.batches
            last = max(e.occurred_at for e in events)
            yield FindingDraft(
                rule_id="anomaly.volume_spike",
                kind="anomaly",
                severity="medium" if files < 1000 else "high",
                confidence=0.85,
                title=f"Mass download: {files:,} files downloaded by a@northwind.example in a day",
                description=f"{files:,} files downloaded by a@northwind.example",
                provider="m365",
                entities={"people": ["a@northwind.example"]},
                evidence_event_ids=tuple(e.id for e in events),
                first_seen=T0,
                last_seen=last,
                count=len(events),
                dedup_key="anomaly:volume:download:a@northwind.example:day",
                window_start=T0.timestamp(),
                mitre=(),
                context={"count": files},
                runbook="",
            )

    pipeline = DetectionPipeline(detectors=[GrowingSpike()])
    # given a spike first reported at 400 files
    _store(db, [_failure("a@northwind.example", T0)])
    pipeline.run(db)
    # when it grows to 800 and then 1,200 files in later batches
    for n in (1, 2):
        _store(db, [_failure("a@northwind.example", T0 + timedelta(minutes=n))])
        pipeline.run(db)
    # then the one finding says the new number and its severity rose with it
    [finding] = [f for f in _findings(db) if f.rule_id == "anomaly.volume_spike"]
    assert finding.title.startswith("Mass download: 1,200 files")
    assert finding.description.startswith("1,200 files")
    assert finding.context["count"] == 1200 and finding.severity == "high"


def test_a_suppression_reason_is_stored_redacted(db) -> None:
    with db.session() as session:
        create_suppression(
            session,
            rule_id="m365_password_spray",
            match={"ipAddress": "185.220.101.*"},
            reason=f"red team, token {SECRET}, call {PHONE}",
            actor=Actor("principal:alice", Channel.CLI),
        )
    assert_stored_redacted(db)
