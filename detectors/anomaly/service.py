"""Anomaly detection over stored events, in event time, with its own cursors.

- :func:`detect_anomalies` judges each tenant partition's stored events up to a time
  (`anomaly_pass`: an event-time cursor, and an id reader that tells late arrivals — stored
  after the cursor passed their time — from events judged in their place);
  `detectors.pipeline.detect_new` runs it after the rules (handing over what they read:
  `detectors.anomaly.handoff`), and the cycle passes the time every stream it reads of the
  partition's connections is collected to. The judgement rule: `detectors.anomaly`.
- A new tenant's backfill needs no separate learning step: judged in event time, its first
  days are the baseline its later days are judged against (`AnomalyEngine.process`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import LargeBinary, and_, not_, or_, type_coerce
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from core.audit import Actor, AuditAction, record
from core.clock import as_utc, utcnow
from core.db import Database
from core.findings import FindingDraft, store_findings
from core.models import Event, FindingKind
from core.packing import unpack
from core.quarantine import quarantine
from core.settings import Settings
from detectors.anomaly.config import AnomalyConfig
from detectors.anomaly.engine import AnomalyEngine, configured_locator
from detectors.anomaly.handoff import SignalHandoff
from detectors.anomaly.rules import MITRE, AnomalyHit
from detectors.anomaly.signals import StoredEvent
from detectors.cursor import GapCursor
from detectors.partitions import ANOMALY, CLOCK_SUFFIX
from detectors.pipeline import (  # detectors.pipeline imports this lazily
    ACTOR,
    ChosenPartition,
    PipelineResult,
    Watermark,
    by_tenant,
    chosen_partitions,
)

# Anomaly detection runs per tenant partition (`detectors.partitions`), each partition through
# two cursors of the `ANOMALY` family: an id reader over the partition's events of the streams
# anomaly detection reads (``anomaly.p<k>of<P>``), which finds the events stored after the
# event-time cursor passed their time, and that event-time cursor (``anomaly.p<k>of<P>.event_time``,
# microseconds before which every seen event was judged). Each partition has its own engine:
# baselines, model (`AnomalyEngine.scope`) and watermark, so one tenant's backlog or failing stream
# never holds another's judgement, and workers judge partitions side by side.
# The event columns the engine reads, the raw record as its stored (packed) bytes: it is unpacked
# only when a check reads it (`LazyRaw`), so an event that cannot be a sign-in or a file activity
# (most audit records: its action column says so) is never decoded here.
_TABLE = Event.__table__  # type: ignore[attr-defined]
COLUMNS = [
    _TABLE.c.id,
    _TABLE.c.connection_id,
    _TABLE.c.provider,
    _TABLE.c.stream,
    _TABLE.c.occurred_at,
    _TABLE.c.actor,
    _TABLE.c.action,
    _TABLE.c.ip,
    _TABLE.c.country,
    _TABLE.c.provider_event_id,
    type_coerce(_TABLE.c.raw, LargeBinary).label("raw"),
]
# The window's columns: no raw record, most events' signals were handed over by the rules stage
# (`detectors.anomaly.handoff`); the others' records are read by id (`_raw_records`).
WINDOW_COLUMNS = COLUMNS[:-1]
# The order events are judged and replayed in: event time, one instant's events by their provider
# identity (unique: connection, stream, provider id), never by id (the order they were stored in).
JUDGING_ORDER = [
    col(Event.occurred_at),
    col(Event.provider),
    col(Event.stream),
    col(Event.provider_event_id),
    col(Event.connection_id),
]
ID_COLUMNS = [col(Event.id), col(Event.occurred_at)]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SAVE_EVERY_BATCHES = 20


@dataclass(frozen=True)
class Scope:
    """What one anomaly engine judges: a tenant partition's events of the anomaly streams, through
    its id reader (`reader`) and event-time cursor (`clock`, only its row is used)."""

    reader: GapCursor
    connections: tuple[int, ...] = ()  # the partition's connections (its watermark's streams)

    @property
    def name(self) -> str:
        return self.reader.name

    @property
    def clock(self) -> GapCursor:
        return GapCursor(self.name + CLOCK_SUFFIX, Event)

    @classmethod
    def of(cls, chosen: ChosenPartition) -> Scope:
        return cls(GapCursor(chosen.name, Event, where=chosen.where, skip=chosen.skip), chosen.connections)


def scopes(db: Database, partitions: int, only: int | None = None) -> list[Scope]:
    """The partitions' scopes to judge (`only`, or every partition in use), their cursors made by
    the upgrade rule where missing (`detectors.partitions`: from the single cursors before
    partitions, or another partition count's)."""
    return [Scope.of(chosen) for chosen in chosen_partitions(db, partitions, only, ANOMALY)]


RUNBOOKS = {
    "anomaly.impossible_travel": "1. Ask the person whether they signed in from both places (VPN?).\n2. If not, revoke their sessions and reset the password.\n3. Review what the session did after sign-in.",
    "anomaly.password_spray": "1. Block the source IP/network at the IdP.\n2. Check the accounts that then signed in successfully; reset their passwords and revoke sessions.\n3. Make sure legacy authentication is blocked.",
    "anomaly.mfa_fatigue": "1. Contact the person out of band: did they approve a prompt?\n2. If so, revoke sessions, reset the password and review new MFA methods.\n3. Turn on number matching for push MFA.",
    "anomaly.volume_spike": "1. Confirm with the person or their manager whether the bulk action was expected.\n2. If not, suspend the account and revoke sessions.\n3. Review shared links and external recipients of the files.",
}
DEFAULT_RUNBOOK = "1. Confirm with the person whether this was them.\n2. If not, revoke sessions and reset credentials.\n3. Review the activity that followed."


class LazyRaw(Mapping[str, Any]):
    """A stored event's raw record, unpacked on first use (then kept until `release`)."""

    __slots__ = ("_data", "_value")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._value: dict[str, Any] | None = None

    def _loaded(self) -> dict[str, Any]:
        value = self._value
        if value is None:
            value = self._value = unpack(self._data) or {}
        return value

    def release(self) -> None:
        """Drop the decoded record (the engine has read what it needs); it is unpacked again if read."""
        self._value = None

    def get(self, key: str, default: Any = None) -> Any:
        return self._loaded().get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self._loaded()[key]

    def __contains__(self, key: object) -> bool:
        return key in self._loaded()

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())


class _Read(NamedTuple):
    """What the anomaly reads hand on: the engine's events, and each one's connection."""

    events: list[StoredEvent]
    connections: dict[int, int | None]


def _events(rows: Iterable[Any], raws: Mapping[int, bytes] | None = None) -> _Read:
    """Rows of `COLUMNS` as the engine's events (one per id, in the order given); rows of
    `WINDOW_COLUMNS` take their raw record from `raws` (an event without one there was handed
    over: the engine does not read its record)."""
    events: list[StoredEvent] = []
    connections: dict[int, int | None] = {}
    for row in rows:
        ident = int(row.id)
        if ident in connections:
            continue
        connections[ident] = row.connection_id
        raw = row.raw if raws is None else raws.get(ident)
        events.append(
            StoredEvent(
                ident,
                row.provider,
                row.stream,
                row.occurred_at,
                row.actor,
                row.action,
                row.ip,
                row.country,
                LazyRaw(bytes(raw)) if raw is not None else {},
                row.provider_event_id,
            )
        )
    return _Read(events, connections)


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


def quarantine_rejected(
    session: Session, rejected: Sequence[tuple[Any, str]], connections: Mapping[int, int | None]
) -> list[str]:
    """Quarantine each event the engine could not read, with its reason; the messages for the run."""
    errors = []
    for event, reason in rejected:
        quarantine(
            session,
            connection_id=connections.get(event.id),
            provider=event.provider,
            stream=event.stream,
            source=f"anomaly detection of event {event.id}",
            reason=f"anomaly detector could not read the event: {reason}",
            raw=dict(event.raw),
        )
        errors.append(f"anomaly: event {event.id} ({event.provider}/{event.stream}) quarantined: {reason}")
    return errors


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
    findings: list[int] = field(default_factory=list)  # ids of the findings created or updated
    pending: bool = False  # judging work waits beyond `max_batches`


def _micros(at: datetime) -> int:
    return (as_utc(at) - EPOCH) // timedelta(microseconds=1)


def _at(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def _seen(session: Session, reader: GapCursor) -> Any:
    """The scope's events that its id reader has seen (read, not passed over as not its own): at
    or below its position and in none of its gaps."""
    row = reader.row(session)
    ident = col(Event.id)
    seen = and_(reader.where, ident <= row.position)
    gaps = [(int(g[0]), int(g[1])) for g in row.gaps or []]
    if gaps:
        seen = and_(seen, not_(or_(*(and_(ident >= low, ident <= high) for low, high in gaps))))
    return seen


def _judged_before(session: Session, reader: GapCursor, position: int, days: int) -> list[StoredEvent]:
    """What an engine at `position` has judged: the seen events of the last `days` before it."""
    if position <= 0:
        return []
    query = (
        sa_select(*COLUMNS)
        .where(_seen(session, reader), col(Event.occurred_at) < _at(position))
        .where(col(Event.occurred_at) >= _at(position) - timedelta(days=days))
        .order_by(*JUDGING_ORDER)
    )
    return _events(session.execute(query)).events


def _judged_between(session: Session, reader: GapCursor, start: int, end: int) -> list[StoredEvent]:
    """The seen events of event time [start, end), in event time."""
    query = (
        sa_select(*COLUMNS)
        .where(
            _seen(session, reader), col(Event.occurred_at) >= _at(start), col(Event.occurred_at) < _at(end)
        )
        .order_by(*JUDGING_ORDER)
    )
    return _events(session.execute(query)).events


@dataclass
class AnomalyPass:
    events: int = 0
    hits: list[AnomalyHit] = field(default_factory=list)
    signins: int = 0
    activities: int = 0
    errors: list[str] = field(default_factory=list)
    pending: bool = False  # judging work waits beyond this pass's bound
    position: int = 0  # the event-time cursor after the pass


def _full_rows(session: Session, ids: list[int]) -> list[Any]:
    """The rows (`COLUMNS`) of the events of `ids`, in that order."""
    found: dict[int, Any] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        query = sa_select(*COLUMNS).where(col(Event.id).in_(chunk))
        found.update((row.id, row) for row in session.execute(query).all())
    return [found[i] for i in ids if i in found]


def _scan(session: Session, reader: GapCursor, position: int, limit: int) -> tuple[list[int], bool]:
    """Move the id reader over every anomaly-stream event committed since the last pass (ids and
    times only). Returns the ids of the late arrivals among them (stored after the event-time
    cursor, at `position`, had passed their time), at most about `limit`, and whether the reader
    got to the end: only then has it seen everything the window may judge."""
    late: list[int] = []
    while True:
        rows = reader.read(session, limit, columns=ID_COLUMNS)
        reader.advance(session, rows)
        late.extend(int(row.id) for row in rows if _micros(row.occurred_at) < position)
        if len(rows) < limit:
            return late, True
        if len(late) >= limit:
            return late, False


def _raw_records(session: Session, ids: list[int]) -> dict[int, bytes]:
    """The packed raw records of the events of `ids`."""
    found: dict[int, bytes] = {}
    for start in range(0, len(ids), 1000):
        query = sa_select(_TABLE.c.id, COLUMNS[-1]).where(col(Event.id).in_(ids[start : start + 1000]))
        found.update((int(row.id), bytes(row.raw)) for row in session.execute(query) if row.raw is not None)
    return found


def _window_events(session: Session, rows: list[Any], handoff: SignalHandoff | None) -> _Read:
    """The window's rows as the engine's events, raw records read only for those not handed over."""
    held = handoff.holds if handoff is not None else None
    missing = [int(r.id) for r in rows if held is None or not held(int(r.id), r.provider_event_id)]
    return _events(rows, _raw_records(session, missing))


def anomaly_pass(
    session: Session,
    engine: AnomalyEngine,
    scope: Scope,
    *,
    until: datetime | None = None,
    limit: int = 20_000,
) -> AnomalyPass:
    """Judge, in the caller's transaction, the scope's stored events up to `until`.

    Events are judged in event time, not in the order they were stored: the event-time cursor
    (`scope.clock`, microseconds) says everything before it was judged. A pass first moves the
    id reader over every event committed since the last pass; those whose time the cursor had
    passed are late arrivals, judged now against what is known. Then it judges every seen event
    from the cursor up to `until` (the time every stream the engine reads is collected to: see
    `pipeline.watermark`; None when nothing is being collected), at most `limit` of them cut
    between two instants, one instant's events ordered by provider id (`JUDGING_ORDER`), and
    moves the cursor there. Whether an event is judged in its place or late thus depends on its
    time and on what was stored when the cursor passed it, never on ids or on `limit`.
    """
    clock = scope.clock.row(session)
    position = int(clock.position)
    late_ids, complete = _scan(session, scope.reader, position, limit)
    late = _full_rows(session, late_ids)
    window: list[Any] = []
    out = AnomalyPass(pending=not complete)
    if complete:  # else more late arrivals wait: the window waits until the reader has seen all
        query = sa_select(*WINDOW_COLUMNS).where(
            _seen(session, scope.reader), col(Event.occurred_at) >= _at(position)
        )
        if until is not None:
            query = query.where(col(Event.occurred_at) < until)
        window = list(session.execute(query.order_by(*JUDGING_ORDER).limit(limit + 1)).all())
        if len(window) > limit:  # the rest of the window next pass, cut between two instants
            cut = window[limit].occurred_at
            kept = [e for e in window if e.occurred_at < cut]
            if kept:
                window, position = kept, _micros(cut)
            else:  # more events at one instant than a pass holds: that instant whole
                same = query.where(col(Event.occurred_at) == cut).order_by(*JUDGING_ORDER)
                window, position = list(session.execute(same).all()), _micros(cut) + 1
            out.pending = True
        elif until is not None:
            position = max(position, _micros(until))
        elif window:
            position = max(position, _micros(window[-1].occurred_at) + 1)
    read = _events(late)
    windowed = _window_events(session, window, engine.handoff)
    read.events.extend(windowed.events)
    read.connections.update(windowed.connections)
    if read.events:
        result = engine.process(read.events)
        out.errors = quarantine_rejected(session, result.rejected, read.connections)
        out.hits, out.signins, out.activities = result.hits, result.signins, result.activities
        out.events = len(read.events)
        engine.store_model(session)
    clock.position = position
    clock.updated_at = utcnow()
    session.add(clock)
    out.position = position
    return out


def prepared_engine(
    session: Session,
    engine: AnomalyEngine | None,
    config: AnomalyConfig,
    models_dir: Path | None,
    scope: Scope,
) -> AnomalyEngine:
    """`engine` when it reflects the scope's event-time cursor; else a new one that replayed what
    was judged before (another process moved the cursor, a transaction rolled back, a restart)."""
    position = int(scope.clock.row(session).position)
    if engine is not None and engine.position == position:
        return engine
    if engine is not None and engine.position is not None and engine.position < position:
        # another process judged on from where this engine stopped (workers take turns): catch
        # up on what it judged rather than replaying everything
        engine.process(_judged_between(session, scope.reader, engine.position, position))
        engine._pending_model = None
        engine.position = position
        return engine
    engine = AnomalyEngine(config, models_dir=models_dir, scope=scope.name)
    engine.load(session, events=_judged_before(session, scope.reader, position, config.baseline_days))
    engine.position = position
    return engine


def detect_anomalies(
    db: Database,
    settings: Settings | None = None,
    *,
    config: AnomalyConfig | None = None,
    until: datetime | None = None,
    watermark: Watermark | None = None,
    cache: dict[str, Any] | None = None,
    max_batches: int | None = None,
    batch_size: int = 20_000,
    handoff: SignalHandoff | None = None,
    partition: int | None = None,
) -> AnomalyReport:
    """Judge each tenant partition's stored events (`partition`'s alone when set) up to `until`,
    or up to the partition's `watermark` (see `anomaly_pass`), one transaction per pass; write
    findings. `max_batches` bounds the passes per partition. `cache` (the caller's, e.g. the
    running cycle's) keeps each partition's engine between calls, `handoff` what the rules stage
    already read of the events; both are only shortcuts (see `prepared_engine`,
    `detectors.anomaly.handoff`)."""
    configured = settings or db.settings
    report = AnomalyReport()
    for scope in scopes(db, configured.pipeline_partitions, partition):
        limit = watermark(scope.connections) if watermark is not None else until
        _detect_scope(
            db,
            settings,
            scope,
            report,
            config=config or configured.anomaly,
            until=limit,
            cache=cache,
            max_batches=max_batches,
            batch_size=batch_size,
            handoff=handoff,
        )
    return report


def _detect_scope(
    db: Database,
    settings: Settings | None,
    scope: Scope,
    report: AnomalyReport,
    *,
    config: AnomalyConfig,
    until: datetime | None,
    cache: dict[str, Any] | None,
    max_batches: int | None,
    batch_size: int,
    handoff: SignalHandoff | None,
) -> None:
    """`detect_anomalies` of one scope, added to `report`."""
    models_dir = settings.models_dir if settings is not None else None
    key = f"{db.url}|anomaly|{scope.name}"
    engine = cache.get(key) if cache is not None else None
    passes = 0
    while max_batches is None or passes < max_batches:
        with db.session() as session:
            engine = prepared_engine(session, engine, config, models_dir, scope)
            engine.handoff = handoff
            engine.position = None  # until this transaction commits
            done = anomaly_pass(session, engine, scope, until=until, limit=batch_size)
            report.errors.extend(done.errors)
            drafts = [to_draft(hit) for hit in done.hits]
            pipeline_result = PipelineResult()
            pipeline_result.record(store_findings(session, by_tenant(session, drafts), actor=ACTOR))
            report.model_trained |= engine.store_model(session) is not None
            report.events += done.events
            report.signins += done.signins
            report.activities += done.activities
            report.findings_created += pipeline_result.created
            report.findings_updated += pipeline_result.updated
            report.findings.extend(pipeline_result.findings)
            for hit in done.hits:
                report.by_rule[hit.rule.value] = report.by_rule.get(hit.rule.value, 0) + 1
            engine.passes += 1
            if not done.pending and (cache is None or engine.passes % SAVE_EVERY_BATCHES == 0):
                engine.save(session)
            if done.events and not done.pending:
                record(
                    session,
                    actor=Actor.system("anomaly"),
                    action=AuditAction.ANOMALY_DETECTED,
                    object_type="anomaly_run",
                    object_id=f"{scope.name}@{done.position}",
                    details={
                        "events": done.events,
                        "created": pipeline_result.created,
                        "updated": pipeline_result.updated,
                    },
                )
        engine.position = done.position
        if cache is not None:
            cache[key] = engine
        passes += 1
        if not done.pending:
            return
    report.pending = True


def signal_handoff(db: Database, settings: Settings | None, cache: dict[str, Any] | None) -> SignalHandoff:
    """The handoff from the rules stage to this one: the caller's (kept in `cache` between calls,
    as the engine is), else a new one for this call."""
    key = f"{db.url}|anomaly.handoff"
    handoff = cache.get(key) if cache is not None else None
    if handoff is None:
        handoff = SignalHandoff(configured_locator((settings or db.settings).anomaly))
        if cache is not None:
            cache[key] = handoff
    return handoff
