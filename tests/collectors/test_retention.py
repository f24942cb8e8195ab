"""TENANTGUARD_EVENT_RETENTION_DAYS: the pipeline's retention stage deletes events older than
that, with an audit record in the same transaction, and keeps everything when it is 0."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from core.models import AuditRecord, Event
from pipeline.stages import SCHEDULER_ACTOR, STAGES, StageContext, retention_stage

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _events(db, ages_in_days: list[float]) -> None:
    with db.session() as session:
        for n, age in enumerate(ages_in_days):
            session.add(
                Event(
                    provider="m365",
                    stream="audit",
                    provider_event_id=f"e{n}",
                    occurred_at=NOW - timedelta(days=age),
                    action="UserLoggedIn",
                )
            )


def _ages(db) -> list[int]:
    with db.session(readonly=True) as session:
        return sorted(
            round((NOW - e.occurred_at).total_seconds() / 86400) for e in session.exec(select(Event))
        )


def test_the_retention_stage_deletes_old_events_and_audits_it(db, settings) -> None:
    assert "retention" in [stage.name for stage in STAGES]
    _events(db, [1, 10, 29, 31, 45, 400])
    configured = settings.model_copy(update={"event_retention_days": 30})
    result = retention_stage(db, configured, SCHEDULER_ACTOR, StageContext(now=NOW))
    assert result.counts == {"events_deleted": 3}
    assert _ages(db) == [1, 10, 29]
    with db.session(readonly=True) as session:
        [audit] = session.exec(select(AuditRecord).where(AuditRecord.action == "events.purged")).all()
    assert audit.details["deleted"] == 3
    # a second run has nothing to do
    again = retention_stage(db, configured, SCHEDULER_ACTOR, StageContext(now=NOW))
    assert again.skipped and again.counts == {}


def test_zero_days_keeps_everything(db, settings) -> None:
    _events(db, [1, 4000])
    result = retention_stage(db, settings, SCHEDULER_ACTOR, StageContext(now=NOW))
    assert result.skipped
    assert _ages(db) == [1, 4000]
