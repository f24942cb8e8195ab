"""The stages of the cycle, each a function ``(db, settings, actor, ctx) -> StageResult``.

Every stage is level-triggered: it looks at database state (cursors, checkpoints, watermarks,
due timers), does what that state calls for and records how far it got in the same
transactions as its results, so a stage run that is lost, repeated or killed half-way loses
and duplicates nothing. A stage with nothing to do returns quickly.

`STAGES` is the cycle, in order. Adding a stage is one line::

    STAGES.insert(STAGES.index(NOTIFY) + 1, Stage("escalations", escalations_stage))
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from core.audit import Actor
from core.clock import as_utc, utcnow
from core.db import Database
from core.models import (
    Account,
    ActionStatus,
    AnalysisCursor,
    ConfigSnapshot,
    Finding,
    Incident,
    Message,
    Person,
    RemediationAction,
)
from core.settings import Settings

LOG = logging.getLogger("tenantguard.pipeline")
SCHEDULER_ACTOR = Actor.system("scheduler")
IDENTITY_RESOLVE_CURSOR = "pipeline.identity.resolve"
IDENTITY_SCORE_CURSOR = "pipeline.identity.score"
RETENTION_CURSOR = "pipeline.retention"
INCIDENTS_CURSOR = "pipeline.incidents"
# Re-scoring every person reads all accounts and grants: at most this often (seconds) when only
# findings changed; at once when new snapshots arrived.
IDENTITY_INTERVAL = 60.0
# Incident building is a fixpoint of findings, incidents, messages and people: with none of them
# changed it is skipped, but still run this often (seconds) as a safety sweep.
INCIDENTS_SWEEP = 300.0


@dataclass
class StageResult:
    """What one stage run did: counts by name ("events", "findings", ...), errors, and whether
    work is still waiting (a bounded stage leaves the rest of a backlog for its next run)."""

    stage: str
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    pending: bool = False
    skipped: bool = False  # nothing to do

    def add(self, name: str, value: int) -> None:
        if value:
            self.counts[name] = self.counts.get(name, 0) + int(value)


@dataclass
class StageContext:
    """What one run of the cycle hands to its stages: bounds and the caller's shortcuts (caches
    that only save work; every stage is correct without them)."""

    max_batches: int | None = None
    with_anomaly: bool = True
    with_rules: bool = True
    partition: int | None = None  # detection: this tenant partition's rules only (None: every one)
    notify: bool = True
    caches: dict[str, Any] = field(default_factory=dict)
    now: datetime | None = None


StageFunction = Callable[[Database, Settings, Actor, StageContext], StageResult]


@dataclass(frozen=True)
class Stage:
    name: str
    run: StageFunction


# ------------------------------------------------------------------------------------ stages


def collect_stage(db: Database, settings: Settings, actor: Actor, ctx: StageContext) -> StageResult:
    """Every enabled stream of every connection once (serve runs the collectors' own schedule
    instead, one job per stream, and leaves this stage out)."""
    from collectors import collect_once

    result = StageResult("collect")
    report = collect_once(db, settings)
    result.add("events", sum(r.records_new for r in report.results))
    result.add("streams", len(report.results))
    result.errors.extend(f"{r.connection}/{r.stream}: {r.error}" for r in report.results if r.error)
    result.errors.extend(f"{name}: {error}" for name, error in report.connection_errors.items())
    return result


def detect_stage(db: Database, settings: Settings, actor: Actor, ctx: StageContext) -> StageResult:
    """Rules and correlations over events after each tenant partition's cursor (`ctx.partition`'s
    alone when set); anomaly detectors, per partition too and in event time, over the events
    older than what every stream they read of the partition's connections is collected to (the
    jobs run the two apart: `pipeline.jobs`)."""
    from detectors.pipeline import detect_new
    from pipeline.watermark import anomaly_watermark

    result = StageResult("detect")
    out = detect_new(
        db,
        settings,
        with_anomaly=ctx.with_anomaly,
        max_batches=ctx.max_batches,
        cache=ctx.caches.setdefault("detection", {}),
        anomaly_watermark=partial(anomaly_watermark, db) if ctx.with_anomaly else None,
        partition=ctx.partition,
        with_rules=ctx.with_rules,
    )
    result.add("events", out.events)
    result.add("findings", out.created)
    result.add("findings_updated", out.updated)
    result.add("suppressed", out.suppressed)
    result.errors.extend(out.errors)
    result.pending = out.pending
    result.skipped = out.events == 0 and not (out.created or out.updated)
    return result


def posture_stage(db: Database, settings: Settings, actor: Actor, ctx: StageContext) -> StageResult:
    """Posture checks and drift, when snapshots were stored since the last evaluation."""
    from detectors.posture import evaluate, snapshots_pending

    result = StageResult("posture")
    if not snapshots_pending(db):
        result.skipped = True
        return result
    report = evaluate(db, settings, now=ctx.now)
    result.add("results", report.results)
    result.add("failing", report.failing)
    result.add("findings", report.posture_findings + report.drift_findings)
    result.add("resolved", report.resolved)
    result.errors.extend(report.errors)
    return result


def exceptions_stage(db: Database, settings: Settings, actor: Actor, ctx: StageContext) -> StageResult:
    """Compliance exceptions that end within a week, or have ended: announced loudly, once each."""
    from compliance.exceptions import announce_expiring

    result = StageResult("exceptions")
    with db.session() as session:
        announced = announce_expiring(session, now=ctx.now or utcnow())
        for row in announced:
            LOG.warning(
                "compliance exception #%s for %s (owner %s) %s at %s: the check counts as failing from then on",
                row.id,
                row.check_id,
                row.owner,
                "expired" if as_utc(row.expires_at) <= (ctx.now or utcnow()) else "expires",
                row.expires_at.isoformat(),
            )
    result.add("exceptions_expiring", len(announced))
    result.skipped = not announced
    return result


def identity_stage(db: Database, settings: Settings, actor: Actor, ctx: StageContext) -> StageResult:
    """Resolve people when snapshots arrived; re-score them when findings changed."""
    from identity import resolve_people, review_people

    result = StageResult("identity")
    now = ctx.now or utcnow()
    with db.session(readonly=True) as session:
        newest_snapshot = int(session.exec(select(func.max(ConfigSnapshot.id))).one() or 0)
        newest_finding = session.exec(select(func.max(Finding.updated_at))).one()
        resolved = session.get(AnalysisCursor, IDENTITY_RESOLVE_CURSOR)
        scored = session.get(AnalysisCursor, IDENTITY_SCORE_CURSOR)
        resolved_at = resolved.position if resolved is not None else 0
        scored_at = scored.position if scored is not None else 0
        last_score = as_utc(scored.updated_at) if scored is not None else None
    finding_mark = int(as_utc(newest_finding).timestamp() * 1000) if newest_finding else 0
    snapshots_moved = newest_snapshot > resolved_at
    if snapshots_moved:
        report = resolve_people(db)
        result.add("people", report.people)
        _mark(db, IDENTITY_RESOLVE_CURSOR, newest_snapshot)
    findings_moved = finding_mark > scored_at
    due = last_score is None or (now - last_score).total_seconds() >= IDENTITY_INTERVAL
    if snapshots_moved or (findings_moved and due):
        review = review_people(db, now=ctx.now)
        result.add("scored", review.people)
        result.add("findings", review.findings_opened)
        result.add("resolved", review.findings_resolved)
        _mark(db, IDENTITY_SCORE_CURSOR, finding_mark)
    else:
        result.skipped = True
        result.pending = findings_moved
    return result


def incidents_stage(db: Database, settings: Settings, actor: Actor, ctx: StageContext) -> StageResult:
    """Findings into incidents (grouping, priority, conversations): a fixpoint, cheap when settled."""
    from timeline import build_incidents

    result = StageResult("incidents")
    now = ctx.now or utcnow()
    with db.session(readonly=True) as session:
        inputs = _incident_inputs(session)
        built = session.get(AnalysisCursor, INCIDENTS_CURSOR)
    swept = built is not None and (now - as_utc(built.updated_at)).total_seconds() < INCIDENTS_SWEEP
    if swept and built is not None and built.position == inputs:
        result.skipped = True
        return result
    changed = build_incidents(db, settings, now=ctx.now, notify=False)
    # the inputs as they were before this build: whatever the build changed, or anything written
    # while it ran, makes the next run's inputs differ, and that run builds again (and settles)
    _mark(db, INCIDENTS_CURSOR, inputs)
    result.add("builds", 1)
    result.add("incidents", len(changed))
    result.skipped = not changed
    return result


def _incident_inputs(session: Any) -> int:
    """A fingerprint of what incident building reads: findings, incidents, messages and people
    (newest id, newest change and count of each), as a non-negative 63-bit number."""
    marks = []
    for model in (Finding, Incident, Person, Account):
        marks.extend(session.exec(select(func.max(model.id), func.max(model.updated_at), func.count())).one())
    marks.append(session.exec(select(func.max(Message.id))).one())
    digest = hashlib.blake2b(repr([str(m) for m in marks]).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def notify_stage(db: Database, settings: Settings, actor: Actor, ctx: StageContext) -> StageResult:
    """Post every pending incident announcement and update (state kept on each incident)."""
    from timeline.notify import NotificationError, deliver_notifications

    result = StageResult("notify")
    if not ctx.notify:
        result.skipped = True
        return result
    try:
        report = deliver_notifications(db, settings, now=ctx.now)
    except NotificationError as exc:
        result.errors.append(f"notifications: {exc}")
        return result
    result.add("notifications", len(report.posted))
    result.errors.extend(f"incident {i}: {why}" for i, why in report.failed.items())
    result.skipped = not report.posted and not report.failed
    return result


def digests_stage(db: Database, settings: Settings, actor: Actor, ctx: StageContext) -> StageResult:
    """Daily digests of the low-signal findings that joined no incident, then their notification."""
    from timeline.digest import build_digests, deliver_digests
    from timeline.notify import NotificationError

    result = StageResult("digests")
    result.add("digests", len(build_digests(db, settings, now=ctx.now)))
    if ctx.notify:
        try:
            report = deliver_digests(db, settings, now=ctx.now)
        except NotificationError as exc:
            result.errors.append(f"digest notifications: {exc}")
            return result
        result.add("digests_posted", len(report.posted))
        result.errors.extend(f"digest {d}: {why}" for d, why in report.failed.items())
    result.skipped = not result.counts and not result.errors
    return result


def escalations_stage(db: Database, settings: Settings, actor: Actor, ctx: StageContext) -> StageResult:
    """On-call: start escalations for new P1/P2 incidents, fire the steps whose delay has passed,
    send due pages (all from database state; a step comes due at most one sweep late)."""
    from oncall import run_due

    result = StageResult("escalations")
    report = run_due(db, settings, now=ctx.now)
    result.add("escalations", report.started)
    result.add("steps", len(report.sweep.fired))
    result.add("pages", len(report.outbox.sent))
    result.add("pages_failed", len(report.outbox.failed))
    result.errors.extend(f"page {page}: {why}" for page, why in report.outbox.failed.items())
    result.skipped = not (report.started or report.sweep.fired or report.outbox.sent or report.outbox.failed)
    return result


def response_stage(db: Database, settings: Settings, actor: Actor, ctx: StageContext) -> StageResult:
    """Response: the intake mailbox, incident channels (open, summary, mirror), update reminders, Jira both ways,
    postmortem drafts for resolved incidents, drills (all from database state)."""
    from response import run_due

    result = StageResult("response")
    report = run_due(db, settings, now=ctx.now)
    result.add("mails", report.mailbox.read)
    result.add("drills", report.drills_linked)
    result.add("channels", len(report.channels.created))
    result.add("mirrored", report.channels.mirrored)
    result.add("posted", report.channels.posted)
    result.add("reminders", len(report.updates.reminders))
    result.add("tickets", len(report.tickets.created))
    result.add("ticket_syncs", report.tickets.pushed + report.tickets.pulled)
    result.add("postmortems", len(report.postmortems))
    result.errors.extend(report.errors)
    result.skipped = report.idle
    return result


def remediation_stage(db: Database, settings: Settings, actor: Actor, ctx: StageContext) -> StageResult:
    """Execute the steps that are approved and not yet executed; never an unapproved one (the
    executor checks the approvals again on each step, in plan order, dependencies first)."""
    from remediation.executor import STALE_RUN, execute

    result = StageResult("remediation")
    now = ctx.now or utcnow()
    with db.session(readonly=True) as session:
        rows = session.exec(
            select(RemediationAction.id, RemediationAction.status, RemediationAction.updated_at)
            .where(col(RemediationAction.status).in_([ActionStatus.APPROVED, ActionStatus.RUNNING]))
            .order_by(col(RemediationAction.id))
        ).all()
    ready = [
        int(action_id)
        for action_id, status, updated in rows
        if action_id is not None and (status == ActionStatus.APPROVED or as_utc(updated) <= now - STALE_RUN)
    ]
    if not ready:
        result.skipped = True
        return result
    report = execute(db, settings, action_ids=ready, actor=actor, now=ctx.now)
    for step in report.results:
        result.add(str(step.outcome), 1)
        if str(step.outcome) == "failed":
            result.errors.append(f"remediation step {step.action_id}: {step.message}")
    from timeline.containment import contain_when_done

    contained = contain_when_done(db, now=ctx.now)
    if contained:
        result.add("contained", len(contained))
    return result


def retention_stage(db: Database, settings: Settings, actor: Actor, ctx: StageContext) -> StageResult:
    """Delete each class of data older than its retention (events, messages, findings, incidents,
    audit), except what a legal hold covers; at most every TENANTGUARD_RETENTION_INTERVAL."""
    from compliance.retention import apply_retention, periods

    result = StageResult("retention")
    now = ctx.now or utcnow()
    if not any(period.total_seconds() > 0 for period in periods(settings).values()):
        result.skipped = True
        return result
    with db.session(readonly=True) as session:
        cursor = session.get(AnalysisCursor, RETENTION_CURSOR)
        last = cursor.position if cursor is not None else None
    mark = int(now.timestamp() * 1000)
    if last is not None and mark - last < settings.retention.interval.total_seconds() * 1000:
        result.skipped = True
        return result
    report = apply_retention(db, settings, actor=actor, now=now)
    for name, count in report.deleted.items():
        result.add(f"{name}_deleted", count)
    for name, count in report.held.items():
        result.add(f"{name}_held", count)
    _mark(db, RETENTION_CURSOR, mark)
    result.skipped = not report.deleted
    return result


def audit_checkpoint_stage(db: Database, settings: Settings, actor: Actor, ctx: StageContext) -> StageResult:
    """Sign the audit chain's head as a checkpoint (an ``audit.checkpointed`` record) when it has moved
    and the last one is TENANTGUARD_AUDIT_CHECKPOINT_INTERVAL old, and keep a copy beside the key,
    outside the database (what `tenantguard audit verify --database` compares the chain with)."""
    from core.audit import anchor_path, checkpoint_document, write_anchor, write_checkpoint
    from core.audit_keys import load_signing_key

    result = StageResult("audit_checkpoint")
    every = settings.audit_checkpoint_interval
    if every.total_seconds() <= 0:
        result.skipped = True
        return result
    key_path = settings.signing_key_path
    key = load_signing_key(key_path)
    with db.session() as session:
        written = write_checkpoint(session, key, actor=actor, every=every, now=ctx.now)
        doc = checkpoint_document(written) if written is not None else None
    if doc is None:
        result.skipped = True
        return result
    write_anchor(anchor_path(key_path), doc)
    result.add("checkpoints", 1)
    LOG.info("audit checkpoint signed: seq %s, head %s", doc["seq"], doc["hash"])
    return result


def _mark(db: Database, name: str, position: int) -> None:
    with db.session() as session:
        row = session.get(AnalysisCursor, name) or AnalysisCursor(name=name, position=0, gaps=[])
        row.position = position
        row.updated_at = utcnow()
        session.add(row)


COLLECT = Stage("collect", collect_stage)
DETECT = Stage("detect", detect_stage)
POSTURE = Stage("posture", posture_stage)
EXCEPTIONS = Stage("exceptions", exceptions_stage)
IDENTITY = Stage("identity", identity_stage)
INCIDENTS = Stage("incidents", incidents_stage)
NOTIFY = Stage("notify", notify_stage)
DIGESTS = Stage("digests", digests_stage)
ESCALATIONS = Stage("escalations", escalations_stage)
RESPONSE = Stage("response", response_stage)
REMEDIATION = Stage("remediation", remediation_stage)
RETENTION = Stage("retention", retention_stage)
AUDIT_CHECKPOINT = Stage("audit_checkpoint", audit_checkpoint_stage)

# The cycle, in order. Jobs run a slice of it: collection jobs the first stage, detection jobs
# the second, the analysis job everything after detection.
STAGES: list[Stage] = [
    COLLECT,
    DETECT,
    POSTURE,
    EXCEPTIONS,
    IDENTITY,
    INCIDENTS,
    NOTIFY,
    DIGESTS,
    ESCALATIONS,
    RESPONSE,
    REMEDIATION,
    RETENTION,
    AUDIT_CHECKPOINT,
]


def stage_names() -> list[str]:
    return [stage.name for stage in STAGES]


def after(name: str) -> list[Stage]:
    """The stages after `name` (what the analysis job runs after detection)."""
    names = stage_names()
    return STAGES[names.index(name) + 1 :]
