"""The detection pipeline: stored Events -> detectors -> Finding rows, one transaction per batch.

It reads stored events in event time (`detectors.event_time`: an id reader, `AnalysisCursor`
"detection", a `GapCursor` that re-reads ids a concurrent writer commits late, and an event-time
cursor "detection.event_time"), so a backlog is processed in event time however it was stored
(streams one after another, pages newest first) and however the passes are cut; an event stored
after the cursor passed its time is a late arrival, processed when found (its rule matches are
reported as usual; correlations take it in within their lateness, `detectors.sigma.correlation`).
It runs the Sigma engine (rule matches, correlations, dedup/threshold, suppressions) and then
every extra `Detector` plugged in (anomaly, identity ...), and writes what they conclude. A
finding that grows inside its dedup period is updated in place (same `dedup_key` and
`window_start`), never duplicated. The cursors move in the same transaction as the findings, so a
crash loses or repeats nothing.

After a restart the engine's windows are rebuilt by replaying the stored events of the last
`replay_horizon` seconds of event time before the cursor with emission off.

`detect_new` runs the anomaly stage after the rules (in event time, its own cursors); each batch's
decoded events are offered to it (`observe`, `detectors.anomaly.handoff`), so the anomaly stage
does not decode their raw records a second time.

Plugging in a detector::

    class ImpossibleTravel:
        name = "anomaly.impossible_travel"
        def detect(self, session, events):   # -> Iterable[FindingDraft]
            ...

    DetectionPipeline(load_default_pack(), detectors=[ImpossibleTravel()]).run(db)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlmodel import Session, col, select

from core.audit import Actor
from core.clock import utcnow
from core.db import Database
from core.findings import FindingDraft, StoredFinding, store_findings, tenant_key
from core.models import Connection, Event, Suppression
from core.models.event import EventRow, StoredEvent, event_row_columns
from core.settings import Settings
from detectors.cursor import DEFAULT_GAP_TIMEOUT
from detectors.event_time import EventTimeReader
from detectors.partitions import DETECTION, CursorFamily, organisation
from detectors.sigma.definitions import RulePack
from detectors.sigma.engine import DetectionEngine
from detectors.sigma.events import EventRecord
from detectors.sigma.loader import load_pack
from detectors.sigma.suppressions import SuppressionSpec

__all__ = [
    "Detector",
    "DetectionPipeline",
    "FindingDraft",
    "PipelineResult",
    "by_tenant",
    "default_rules_path",
]

CURSOR_NAME = "detection"
ACTOR = Actor.system("detector")


class Detector(Protocol):
    """Anything that turns a batch of stored events (read-only rows, see `StoredEvent`) into finding drafts.

    A detector that sets aside single events it cannot read (quarantining them, scoring the rest
    of the batch) says so in an ``errors`` list of the last call; the run reports them.
    """

    name: str

    def detect(self, session: Session, events: Sequence[StoredEvent]) -> Iterable[FindingDraft]: ...


# Given each batch's events (decoded, read-only) after the rules ran: the anomaly stage's handoff
# keeps what it needs of them, so their records are not decoded a second time.
BatchObserver = Callable[[Sequence[StoredEvent]], None]
# The event time before which every stream anomaly detection reads of these connections (a
# partition's) is collected; None when there is nothing to wait for (`pipeline.watermark`).
Watermark = Callable[[Sequence[int]], datetime | None]

SHIPPED_RULES = Path(__file__).resolve().parents[1] / "rules" / "detections"


def default_rules_path(settings: Settings | None = None) -> Path:
    """The settings' `rules_dir` (TENANTGUARD_RULES_DIR), else the pack shipped in the repository."""
    if settings is not None and settings.rules_dir is not None:
        return settings.rules_dir
    return SHIPPED_RULES


def load_default_pack(settings: Settings | None = None) -> RulePack:
    """The configured rule pack (`default_rules_path`)."""
    return load_pack([default_rules_path(settings)])


@dataclass
class PipelineResult:
    events: int = 0
    created: int = 0
    updated: int = 0
    suppressed: int = 0
    errors: list[str] = field(default_factory=list)
    findings: list[int] = field(default_factory=list)
    pending: bool = False  # set by `detect_new`: events are still waiting after this call

    def add(self, other: PipelineResult) -> None:
        self.events += other.events
        self.created += other.created
        self.updated += other.updated
        self.suppressed += other.suppressed
        self.errors.extend(other.errors)
        self.findings.extend(other.findings)

    def record(self, stored: Iterable[StoredFinding]) -> None:
        """Count what the finding store did with this batch's drafts."""
        for finding, created in stored:
            if created:
                self.created += 1
            else:
                self.updated += 1
            if finding.id is not None:
                self.findings.append(finding.id)


def event_record(event: StoredEvent, tenants: Mapping[int, str] | None = None) -> EventRecord:
    """A stored Event as the engine's record: stored events are already in the normalised shape.
    `tenants`: connection id -> organisation (`connection_tenants`), so that the engine's windows
    and alerts keep tenants apart."""
    assert event.id is not None
    connection = event.connection_id
    return EventRecord(
        event.id,
        event.provider,
        event.stream,
        event.occurred_at.timestamp(),
        event.raw or {},
        event.provider_event_id,
        tenants.get(connection, "") if tenants and connection is not None else "",
    )


def connection_tenants(session: Session) -> dict[int, str]:
    """Each connection's organisation, for those that name one (one query: connections are few)."""
    rows = session.exec(select(Connection.id, Connection.config)).all()
    return {int(cid): name for cid, config in rows if cid is not None and (name := organisation(config))}


def by_tenant(
    session: Session, drafts: Sequence[FindingDraft], tenants: Mapping[int, str] | None = None
) -> list[FindingDraft]:
    """`drafts` with dedup keys that name their tenant (`core.findings.tenant_key`): the
    organisation (`detectors.partitions.organisation`) of the connection of each draft's first
    stored evidence event. A draft without one, or of a connection without an organisation, is of
    the default tenant and keeps its key. `tenants`: `connection_tenants`, when the caller has
    read it already. At most two queries per batch, whatever its size."""
    first = {i: ids[0] for i, d in enumerate(drafts) if (ids := _stored_ids(d.evidence_event_ids))}
    if not first:
        return list(drafts)
    connection_of: dict[int, int] = {}
    event_ids = sorted(set(first.values()))
    for start in range(0, len(event_ids), 1000):
        connection_of.update(
            (int(event_id), int(connection_id))
            for event_id, connection_id in session.exec(
                select(Event.id, Event.connection_id).where(
                    col(Event.id).in_(event_ids[start : start + 1000]), col(Event.connection_id).is_not(None)
                )
            ).all()
            if event_id is not None and connection_id is not None
        )
    if connection_of and tenants is None:
        tenants = connection_tenants(session)
    tenants = tenants or {}
    keyed = list(drafts)
    for i, event_id in first.items():
        tenant = tenants.get(connection_of.get(event_id, -1), "")
        if tenant:
            keyed[i] = replace(keyed[i], dedup_key=tenant_key(tenant, keyed[i].dedup_key))
    return keyed


def _stored_ids(ids: Iterable[int | str]) -> list[int]:
    return [e for e in ids if isinstance(e, int) and not isinstance(e, bool)]


def _active_suppressions(session: Session, now: datetime) -> list[Suppression]:
    rows = session.exec(select(Suppression)).all()
    return [s for s in rows if s.expires_at is None or s.expires_at > now]


def _spec(row: Suppression) -> SuppressionSpec:
    assert row.id is not None
    return SuppressionSpec(row.id, row.rule_id, dict(row.match or {}), row.expires_at, row.reason)


class DetectionPipeline:
    """Long-lived (one per process): keeps the engine's windows between batches."""

    def __init__(
        self,
        pack: RulePack | None = None,
        *,
        detectors: Sequence[Detector] = (),
        batch_size: int = 5000,
        cursor_name: str = CURSOR_NAME,
        gap_timeout: float = DEFAULT_GAP_TIMEOUT,
        where: Any = None,
        skip: Any = None,
    ) -> None:
        """`where`/`skip`: the events this pipeline reads and those certainly not its own (a
        partition's, `detectors.partitions`; default every event)."""
        self.pack = pack if pack is not None else load_default_pack()
        self.engine = DetectionEngine(self.pack)
        self.detectors = list(detectors)
        self.batch_size = batch_size
        self.cursor_name = cursor_name
        self.gap_timeout = gap_timeout
        self.reader = EventTimeReader(cursor_name, where=where, skip=skip, gap_timeout=gap_timeout)
        self.cursor = self.reader.ids
        self._position: tuple[int, int] | None = None  # the cursor positions the engine's windows reflect
        self._columns = event_row_columns()  # events are read as plain rows, not ORM objects

    def select(self, where: Any, skip: Any = None) -> None:
        """Read these events from now on (a partition's connections, read again each run)."""
        self.reader = EventTimeReader(self.cursor_name, where=where, skip=skip, gap_timeout=self.gap_timeout)
        self.cursor = self.reader.ids

    def _reset(self) -> None:
        self.engine = DetectionEngine(self.pack)
        self._position = None

    def _warm_up(self, session: Session, position: tuple[int, int]) -> None:
        """Rebuild windows and open alerts from events already processed before this process."""
        self._position = position
        replay = self.reader.replay(session, position[1], self.engine.replay_horizon(), self._columns)
        tenants = connection_tenants(session)
        self.engine.warm_up(event_record(EventRow._make(row), tenants) for row in replay)

    def run_batch(self, session: Session, *, observe: BatchObserver | None = None) -> PipelineResult:
        """Process the next batch after the cursor, in the caller's transaction; `observe` is
        given the batch's events once the rules have run (the anomaly stage's handoff)."""
        self.cursor.row(session, lock=True)  # a second run of these cursors waits for this one
        position = self.reader.position(session)
        if self._position != position:  # first batch, or the cursors moved without this engine
            if self._position is not None:
                self._reset()
            self._warm_up(session, position)
        read = self.reader.read(session, self.batch_size, self._columns)
        read.commit(session)
        events = [EventRow._make(row) for row in read.rows]
        result = PipelineResult(events=len(events), pending=read.pending)
        if not events:
            self._position = self.reader.position(session)
            return result
        now = utcnow()
        rows: dict[int | str, Suppression] = {
            row.id: row for row in _active_suppressions(session, now) if row.id is not None
        }
        self.engine.set_suppressions(_spec(row) for row in rows.values())
        tenants = connection_tenants(session)
        records = [event_record(event, tenants) for event in events]
        batch = self.engine.process(records)
        drafts = list(batch.findings)
        for detector in self.detectors:
            try:
                drafts.extend(detector.detect(session, events))
                result.errors.extend(getattr(detector, "errors", ())[:100])
            except Exception as exc:  # one detector's bug must not stop detection
                result.errors.append(f"detector {detector.name}: {type(exc).__name__}: {exc}")
        result.record(store_findings(session, by_tenant(session, drafts, tenants), actor=ACTOR))
        for suppression_id, count in batch.suppressed.items():
            row = rows.get(suppression_id)
            if row is not None:
                row.suppressed_count += count
                session.add(row)
                result.suppressed += count
        result.errors.extend(str(e) for e in batch.errors[:100])
        if observe is not None:
            observe(events)
        self._position = self.reader.position(session)
        return result

    def run(
        self, db: Database, *, max_batches: int | None = None, observe: BatchObserver | None = None
    ) -> PipelineResult:
        """Process everything stored so far, one transaction per batch."""
        total = PipelineResult()
        batches = 0
        while max_batches is None or batches < max_batches:
            with db.session() as session:
                result = self.run_batch(session, observe=observe)
            total.add(result)
            total.pending = result.pending
            batches += 1
            if not result.pending:
                break
        return total


def detect_new(
    db: Database,
    settings: Settings | None = None,
    *,
    with_anomaly: bool = True,
    max_batches: int | None = None,
    cache: dict[str, Any] | None = None,
    anomaly_watermark: Watermark | None = None,
    partition: int | None = None,
    with_rules: bool = True,
) -> PipelineResult:
    """Run detection (rules, correlations, then the anomaly detectors unless `with_anomaly` is
    False) over stored events not yet processed; detection only (posture, identity and incidents
    are their own stages in `pipeline`). `max_batches` bounds one call per partition (a backlog
    is worked through over several calls; `result.pending` says more is waiting).

    Rules and correlations run per tenant partition (`detectors.partitions`), each partition
    through its own cursor: `partition` only that one, None every partition in turn. Anomaly
    detection runs per partition too, with its own cursors, judging in event time the events up
    to the partition's `anomaly_watermark` (the time every stream it reads of the partition's
    connections is collected to; None: everything stored), so its findings do not depend on the
    order events were committed (`detectors.anomaly`), nor wait for another tenant's streams.

    `cache` (owned by the caller, e.g. the running cycle) keeps a pipeline per partition between
    calls so its windows need not be rebuilt from stored events each time; it is only a shortcut:
    a pipeline whose position differs from the database cursor (another process advanced it, a
    transaction rolled back) is rebuilt from the stored events, so results never depend on it."""
    configured = settings or db.settings
    handoff = None
    if with_anomaly or cache is not None:  # a later call with the same cache judges anomalies
        from detectors.anomaly import signal_handoff

        handoff = signal_handoff(db, settings, cache)
    result = PipelineResult()
    if with_rules:
        observe = handoff.offer if handoff is not None else None
        for chosen in chosen_partitions(db, configured.pipeline_partitions, partition):
            pipeline = _partition_pipeline(db, configured, chosen, cache)
            ran = pipeline.run(db, max_batches=max_batches, observe=observe)
            result.add(ran)
            with db.session(readonly=True) as session:
                result.pending = result.pending or ran.pending or pipeline.cursor.pending(session)
    if with_anomaly:
        from detectors.anomaly import detect_anomalies

        report = detect_anomalies(
            db,
            settings,
            watermark=anomaly_watermark,
            cache=cache,
            max_batches=max_batches,
            handoff=handoff,
            partition=partition,
        )
        result.events += report.events if not with_rules else 0
        result.created += report.findings_created
        result.updated += report.findings_updated
        result.findings.extend(report.findings)
        result.errors.extend(report.errors)
        result.pending = result.pending or report.pending
    return result


@dataclass(frozen=True)
class ChosenPartition:
    """A partition to run: its cursor's name, the filters of its reader, its connections."""

    partition: int
    partitions: int
    name: str
    where: Any
    skip: Any
    connections: tuple[int, ...]


def chosen_partitions(
    db: Database, partitions: int, only: int | None, family: CursorFamily = DETECTION
) -> list[ChosenPartition]:
    """The partitions to run (`only`, or every one in use), each with its family's filters, their
    cursors made by the upgrade rule where missing."""
    from sqlalchemy.exc import IntegrityError

    from detectors.partitions import PartitionMap, cursor_name, ensure_cursor, partition_map

    def ensured() -> tuple[PartitionMap, list[int]]:
        with db.session() as session:
            layout = partition_map(session, partitions)
            chosen = [only] if only is not None else layout.used
            for partition in chosen:
                ensure_cursor(session, partition, layout.partitions, family)
        return layout, chosen

    try:
        layout, chosen = ensured()
    except IntegrityError:  # another process made a cursor at the same moment: it is there now
        layout, chosen = ensured()
    return [
        ChosenPartition(
            p,
            layout.partitions,
            cursor_name(p, layout.partitions, family),
            family.scoped(layout.events(p)),
            family.skip(layout.others(p)),
            layout.members.get(p, ()),
        )
        for p in chosen
    ]


def _partition_pipeline(
    db: Database, settings: Settings, chosen: ChosenPartition, cache: dict[str, Any] | None
) -> DetectionPipeline:
    name = chosen.name
    key = f"{db.url}|rules|{name}"
    pipeline = cache.get(key) if cache is not None else None
    if pipeline is None:
        pack_key = f"{db.url}|rules.pack"
        pack = cache.get(pack_key) if cache is not None else None
        if pack is None:
            pack = load_default_pack(settings)
            if cache is not None:
                cache[pack_key] = pack
        pipeline = DetectionPipeline(pack, batch_size=settings.pipeline_batch_size, cursor_name=name)
        if cache is not None:
            cache[key] = pipeline
    pipeline.select(chosen.where, chosen.skip)
    return pipeline
