"""Anomaly detection over stored events: as a pipeline `Detector`, or standalone with its own cursor.

- :class:`AnomalyDetector` plugs into :class:`detectors.pipeline.DetectionPipeline` (``name`` and
  ``detect(session, events)``); :func:`anomaly_detectors` builds the list to register.
- :func:`detect_anomalies` runs the same engine over every stored event after its own cursor
  (``anomaly``), for backfills, benchmarks and ``tenantguard`` commands.
- :func:`build_baselines` learns baselines from the last N days without reporting anything
  (a new tenant's backfill, before detection starts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_
from sqlmodel import Session, col, select

from core.audit import Actor, AuditAction, record
from core.clock import utcnow
from core.db import Database
from core.findings import FindingDraft, store_findings
from core.models import Event, FindingKind
from core.models.event import StoredEvent
from core.quarantine import quarantine
from core.settings import Settings
from detectors.anomaly.config import AnomalyConfig
from detectors.anomaly.engine import READ_STREAMS, AnomalyEngine, stored
from detectors.anomaly.rules import MITRE, AnomalyHit
from detectors.anomaly.signals import activity_from, signin_from, to_columns
from detectors.cursor import GapCursor
from detectors.pipeline import ACTOR, PipelineResult

CURSOR = "anomaly"
# The streams anomaly detection reads, through a cursor that re-reads ids committed late.
READER = GapCursor(
    CURSOR,
    Event,
    where=and_(
        col(Event.provider).in_(sorted({p for p, _ in READ_STREAMS})),
        col(Event.stream).in_(sorted({s for _, s in READ_STREAMS})),
    ),
)
SAVE_EVERY_BATCHES = 20

RUNBOOKS = {
    "anomaly.impossible_travel": "1. Ask the person whether they signed in from both places (VPN?).\n2. If not, revoke their sessions and reset the password.\n3. Review what the session did after sign-in.",
    "anomaly.password_spray": "1. Block the source IP/network at the IdP.\n2. Check the accounts that then signed in successfully; reset their passwords and revoke sessions.\n3. Make sure legacy authentication is blocked.",
    "anomaly.mfa_fatigue": "1. Contact the person out of band: did they approve a prompt?\n2. If so, revoke sessions, reset the password and review new MFA methods.\n3. Turn on number matching for push MFA.",
    "anomaly.volume_spike": "1. Confirm with the person or their manager whether the bulk action was expected.\n2. If not, suspend the account and revoke sessions.\n3. Review shared links and external recipients of the files.",
}
DEFAULT_RUNBOOK = "1. Confirm with the person whether this was them.\n2. If not, revoke sessions and reset credentials.\n3. Review the activity that followed."


def to_draft(hit: AnomalyHit) -> FindingDraft:
    day_start = float(int(hit.first_ts // 86400) * 86400)
    return FindingDraft(
        rule_id=hit.rule.value,
        kind=FindingKind.ANOMALY.value,
        severity=hit.severity.value,
        confidence=hit.confidence,
        title=hit.title[:500],
        description=hit.description,
        provider=hit.provider,
        entities={"people": list(hit.people), "ips": list(hit.ips)},
        evidence_event_ids=hit.event_ids,
        first_seen=datetime.fromtimestamp(hit.first_ts, UTC),
        last_seen=datetime.fromtimestamp(hit.last_ts, UTC),
        count=max(1, len(hit.event_ids)),
        dedup_key=hit.dedup_key,
        window_start=day_start,
        mitre=MITRE[hit.rule],
        context={**hit.context, "explanation": hit.description},
        runbook=RUNBOOKS.get(hit.rule.value, DEFAULT_RUNBOOK),
    )


class AnomalyDetector:
    """The anomaly engine as a detection-pipeline `Detector`."""

    name = "anomaly"

    def __init__(self, settings: Settings | None = None, config: AnomalyConfig | None = None) -> None:
        models_dir = settings.models_dir if settings is not None else None
        self.engine = AnomalyEngine(config or (settings.anomaly if settings else None), models_dir=models_dir)
        self._batches = 0
        # the last batch's events that could not be scored (quarantined; see `quarantine_rejected`)
        self.errors: list[str] = []

    def detect(self, session: Session, events: Sequence[StoredEvent]) -> Iterable[FindingDraft]:
        if not self.engine._loaded:
            self.engine.load(session)
        rows = {e.id: e for e in events if e.id is not None}
        result = self.engine.process([stored(e) for e in rows.values()])
        self.errors = quarantine_rejected(session, result.rejected, rows)
        self.engine.store_model(session)
        self._batches += 1
        if self._batches % SAVE_EVERY_BATCHES == 0:
            self.engine.save(session)
        return [to_draft(hit) for hit in result.hits]


def quarantine_rejected(
    session: Session, rejected: Sequence[tuple[Any, str]], rows: Mapping[int, StoredEvent]
) -> list[str]:
    """Quarantine each event the engine could not read, with its reason; the messages for the run."""
    errors = []
    for event, reason in rejected:
        row = rows.get(event.id)
        quarantine(
            session,
            connection_id=getattr(row, "connection_id", None),
            provider=event.provider,
            stream=event.stream,
            source=f"anomaly detection of event {event.id}",
            reason=f"anomaly detector could not read the event: {reason}",
            raw=dict(event.raw),
        )
        errors.append(f"anomaly: event {event.id} ({event.provider}/{event.stream}) quarantined: {reason}")
    return errors


def anomaly_detectors(
    settings: Settings | None = None, config: AnomalyConfig | None = None
) -> list[AnomalyDetector]:
    """What `detectors.pipeline` should register: ``DetectionPipeline(..., detectors=anomaly_detectors(settings))``."""
    return [AnomalyDetector(settings, config)]


@dataclass
class AnomalyReport:
    events: int = 0
    signins: int = 0
    activities: int = 0
    findings_created: int = 0
    findings_updated: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)
    model_trained: bool = False
    errors: list[str] = field(default_factory=list)  # events quarantined, each with its reason


def detect_anomalies(
    db: Database,
    settings: Settings | None = None,
    *,
    config: AnomalyConfig | None = None,
    engine: AnomalyEngine | None = None,
    batch_size: int = 20_000,
) -> AnomalyReport:
    """Run anomaly detection over every event after the `anomaly` cursor; write findings."""
    engine = engine or AnomalyEngine(
        config or (settings or db.settings).anomaly, models_dir=settings.models_dir if settings else None
    )
    report = AnomalyReport()
    while True:
        with db.session() as session:
            if not engine._loaded:
                engine.load(session)
            events = READER.read(session, batch_size)
            if not events:
                engine.save(session)
                READER.advance(session, events)  # lets gaps that never filled expire
                break
            result = engine.process([stored(e) for e in events])
            report.errors.extend(
                quarantine_rejected(session, result.rejected, {e.id: e for e in events if e.id is not None})
            )
            pipeline_result = PipelineResult()
            pipeline_result.record(
                store_findings(session, [to_draft(hit) for hit in result.hits], actor=ACTOR)
            )
            report.model_trained |= engine.store_model(session) is not None
            report.events += len(events)
            report.signins += result.signins
            report.activities += result.activities
            report.findings_created += pipeline_result.created
            report.findings_updated += pipeline_result.updated
            for hit in result.hits:
                report.by_rule[hit.rule.value] = report.by_rule.get(hit.rule.value, 0) + 1
            READER.advance(session, events)
            if len(events) < batch_size:
                engine.save(session)
                record(
                    session,
                    actor=Actor.system("anomaly"),
                    action=AuditAction.ANOMALY_DETECTED,
                    object_type="anomaly_run",
                    object_id=str(READER.row(session).position),
                    details={
                        "events": report.events,
                        "created": report.findings_created,
                        "updated": report.findings_updated,
                    },
                )
                break
    return report


def build_baselines(
    db: Database,
    settings: Settings | None = None,
    *,
    days: int | None = None,
    config: AnomalyConfig | None = None,
    now: datetime | None = None,
) -> int:
    """Learn baselines from the last `days` of stored events without reporting anything; returns people.

    The `anomaly` cursor moves past what was learned from, so those events are not reported later.
    """
    config = config or (settings or db.settings).anomaly
    engine = AnomalyEngine(config, models_dir=settings.models_dir if settings else None)
    since = (now or utcnow()) - timedelta(days=days or config.baseline_days)
    with db.session() as session:
        last_id = 0
        while True:
            events = session.exec(
                select(Event)
                .where(col(Event.id) > last_id, col(Event.occurred_at) >= since)
                .order_by(col(Event.id))
                .limit(50_000)
            ).all()
            if not events:
                break
            last_id = int(events[-1].id or 0)
            batch = [stored(e) for e in events]
            engine.builder.add_signins(to_columns(s for e in batch if (s := signin_from(e, engine.geo))))
            engine.builder.add_activities([a for e in batch if (a := activity_from(e))])
        engine.save(session)
        # what was learned from is history, not news: detection continues after it
        cursor = READER.row(session)
        cursor.position = max(cursor.position, last_id)
        cursor.updated_at = utcnow()
        session.add(cursor)
        return len(engine.builder.people.values)
