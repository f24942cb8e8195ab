"""The anomaly engine: events in, explained hits out; it learns as it goes and keeps its model fresh.

An :class:`AnomalyEngine` is long-lived (one per process, like the detection pipeline). It reads
sign-ins and file activity in event time: each day is compared with the baseline learned from
the days *before* it (whatever order the events were stored in, however they were cut into
batches), runs the explicit checks and the session model, and is folded into the baseline once
a later day starts. A restart replays the events judged before (see `load`), so it resumes in
the state an undisturbed run has; the model is a hashed ``.npz`` file (see
:mod:`detectors.anomaly.model`) and baselines are also saved as :class:`PersonBaseline` rows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlmodel import Session, col, delete, select

from core.clock import utcnow
from core.findings import MAX_EVIDENCE
from core.models import AnomalyModel, PersonBaseline
from core.models.enums import Severity
from core.models.event import StoredEvent as StoredEventRow
from detectors.anomaly import model as session_model
from detectors.anomaly.baseline import BaselineBuilder, BaselineSet
from detectors.anomaly.config import AnomalyConfig
from detectors.anomaly.errors import ModelIntegrityError
from detectors.anomaly.features import session_features
from detectors.anomaly.geo import GeoLocator, default_locator
from detectors.anomaly.rules import (
    AnomalyHit,
    AnomalyRule,
    impossible_travel,
    join,
    mfa_fatigue,
    novelty,
    password_spray,
    unusual_hour,
    volume_spikes,
)
from detectors.anomaly.signals import (
    ACTIVITY_STREAMS,
    SIGNIN_STREAMS,
    Activity,
    Outcome,
    SignIn,
    StoredEvent,
    activity_from,
    signin_from,
    signin_order,
    to_columns,
)

if TYPE_CHECKING:
    from detectors.anomaly.handoff import SignalHandoff

log = logging.getLogger(__name__)
MODEL_KIND = "signin_forest"
WHOLE_SCOPE = "anomaly"  # the single cursor before partitions (`detectors.anomaly.service.CURSOR`)
MIN_TRAINING_ROWS = 2000
RESERVOIR = 50_000
READ_STREAMS = SIGNIN_STREAMS | ACTIVITY_STREAMS  # (provider, stream) pairs the models learn from


def _canonical(parts: Sequence[np.ndarray]) -> np.ndarray:
    """A day's session features in one order whatever batches the day was judged in (the model's
    training sample, and so the model, must not depend on how passes cut the day)."""
    if not parts:
        return np.zeros((0, len(session_model.FEATURES)), dtype=np.float32)
    rows = np.concatenate(parts)
    if len(rows) < 2:
        return rows
    return rows[np.lexsort(rows.T[::-1])]


def configured_locator(config: AnomalyConfig) -> GeoLocator:
    """The GeoIP lookup the configuration names (one per configuration, shared)."""
    return default_locator(
        str(config.geoip_database) if config.geoip_database else None,
        str(config.geoip_asn_database) if config.geoip_asn_database else None,
    )


def read_signals(event: StoredEvent, geo: GeoLocator) -> tuple[SignIn | None, Activity | None]:
    """The event as a sign-in and as a file activity (either or both may be None); raises on a
    record it cannot read."""
    signin = signin_from(event, geo) if (event.provider, event.stream) in SIGNIN_STREAMS else None
    return signin, activity_from(event)


def stored(event: StoredEventRow) -> StoredEvent:
    return StoredEvent(
        int(event.id or 0),
        event.provider,
        event.stream,
        event.occurred_at,
        event.actor,
        event.action,
        event.ip,
        event.country,
        event.raw or {},
        event.provider_event_id,
    )


def event_order(event: StoredEvent) -> tuple[datetime, str, str, str, int]:
    """Events in event time, those of one instant by provider id: the order events are judged in,
    whatever order (ids) they were stored in."""
    return (event.occurred_at, event.provider, event.stream, event.key, event.id)


@dataclass
class BatchResult:
    hits: list[AnomalyHit] = field(default_factory=list)
    signins: int = 0
    activities: int = 0
    # events that could not be read as a sign-in or an activity, with the reason; the rest of the
    # batch is scored without them
    rejected: list[tuple[StoredEvent, str]] = field(default_factory=list)


class AnomalyEngine:
    """Baseline + model + checks, updated batch by batch."""

    def __init__(
        self,
        config: AnomalyConfig | None = None,
        *,
        models_dir: Path | None = None,
        geo: GeoLocator | None = None,
        scope: str = WHOLE_SCOPE,
    ) -> None:
        self.config = config or AnomalyConfig()
        self.models_dir = models_dir
        self.geo = geo or configured_locator(self.config)
        self.builder = BaselineBuilder()
        self.forest: session_model.ForestArrays | None = None
        self.model_trained_ts: float | None = None
        self._pending_model: tuple[session_model.ForestArrays, int] | None = None  # trained, not yet stored
        self._reservoir: list[np.ndarray] = []
        self._rng = np.random.default_rng(0)
        # the day being judged (event time, days since the epoch) and what of it was judged so far
        self._open_day: int | None = None
        self._today_signins: list[SignIn] = []
        self._today_activities: list[Activity] = []
        self._today_features: list[np.ndarray] = []
        # the event-time cursor this engine's state reflects (None: unknown), and passes run
        self.position: int | None = None
        self.passes = 0
        # signals the rules stage already read (`detectors.anomaly.handoff`), if the caller has one
        self.handoff: SignalHandoff | None = None
        # what this engine judges (its cursor's name: one per tenant partition, `detectors.partitions`):
        # its baselines are saved under it, its model stored as its own kind
        self.scope = scope

    @property
    def model_kind(self) -> str:
        """The kind this engine's model is stored as: one per scope (the single one before
        partitions is `MODEL_KIND`)."""
        return MODEL_KIND if self.scope == WHOLE_SCOPE else f"{MODEL_KIND}@{self.scope}"

    # ------------------------------------------------------------ state

    def load(self, session: Session, *, events: Sequence[StoredEvent] = ()) -> None:
        """Resume: the newest model whose file still verifies, then `events` (what was judged
        before, in event time) replayed with nothing reported, so the engine is in the state an
        undisturbed run would be in. Baselines are derived from the events, never read from the
        saved `PersonBaseline` rows (a summary for people and privacy requests, saved as of a
        moment that need not be the cursor's)."""
        record = None
        # this scope's newest model, else the deployment-wide one of before partitions (an upgrade)
        for kind in dict.fromkeys((self.model_kind, MODEL_KIND)):
            record = session.exec(
                select(AnomalyModel)
                .where(AnomalyModel.kind == kind)
                .order_by(col(AnomalyModel.trained_at).desc())
                .limit(1)
            ).first()
            if record is not None:
                break
        if record is not None:
            try:
                self.forest = session_model.load(Path(record.path), record.sha256)
                self.model_trained_ts = float(
                    record.details.get("trained_event_ts", record.trained_at.timestamp())
                )
            except ModelIntegrityError as exc:
                log.warning("%s", exc)
                self.forest = None
        if events:
            self.process(events)
            self._pending_model = None  # retrained while replaying: already stored then, or close

    def save(self, session: Session, *, now: datetime | None = None) -> int:
        """Replace the stored baselines of this engine's scope with the builder's current state."""
        rows = self.builder.to_rows(now or utcnow())
        for row in rows:
            row.scope = self.scope
        session.exec(delete(PersonBaseline).where(col(PersonBaseline.scope) == self.scope))
        session.add_all(rows)
        return len(rows)

    # ------------------------------------------------------------ analysis

    def process(self, events: Sequence[StoredEvent]) -> BatchResult:
        """Analyse events in event time: each day against everything of the days before it.

        The result depends on the events, not on how they were cut into batches or in what order
        batches came: a day is judged against the baseline of the days before it (the day is
        folded in once a later day starts), and a batch of the day being judged is joined with
        that day's earlier sign-ins as context (a person's previous sign-in for travel, a spray's
        or a push-bombing's first attempts, the day's volume so far). Events of a day older than
        the one being judged (a late arrival) are judged against what is known and folded in.
        A backfill of weeks arriving as a few large batches thus makes the first weeks the
        baseline the later ones are judged against, as if collected live.
        """
        by_day: dict[int, list[StoredEvent]] = {}
        for event in sorted(events, key=event_order):
            by_day.setdefault(int(event.occurred_at.timestamp() // 86400), []).append(event)
        result = BatchResult()
        for day in sorted(by_day):
            if self._open_day is None or day > self._open_day:
                self._close_day()
                self._open_day = day
            if day < self._open_day:
                part = self._process_late(day, by_day[day])
            else:
                part = self._process_open(day, by_day[day])
            result.hits.extend(part.hits)
            result.signins += part.signins
            result.activities += part.activities
            result.rejected.extend(part.rejected)
        return result

    def _read(
        self, events: Sequence[StoredEvent]
    ) -> tuple[list[SignIn], list[Activity], list[tuple[StoredEvent, str]]]:
        """Each event as a sign-in and/or an activity (taken from the handoff when the rules stage
        already read it); one that cannot be read is set aside with its reason instead of costing
        its batch."""
        signins: list[SignIn] = []
        activities: list[Activity] = []
        rejected: list[tuple[StoredEvent, str]] = []
        handoff = self.handoff
        for event in events:
            taken = handoff.take(event.id, event.key) if handoff is not None else None
            if taken is not None:
                signin, activity = taken.signin, taken.activity
            else:
                try:
                    signin, activity = read_signals(event, self.geo)
                except Exception as exc:  # noqa: BLE001 - any shape a provider sends; quarantined with the reason
                    rejected.append((event, f"{type(exc).__name__}: {exc}"[:500]))
                    continue
            if signin is not None:
                signins.append(signin)
            if activity is not None:
                activities.append(activity)
            release = getattr(event.raw, "release", None)
            if release is not None:  # a packed record read lazily: what was needed is taken
                release()
        return signins, activities, rejected

    def _close_day(self) -> None:
        """Fold the day judged so far into the baseline (and the model's training sample)."""
        if self._open_day is None:
            return
        cols = to_columns(self._today_signins)
        self.builder.add_signins(cols)
        self.builder.add_activities(self._today_activities)
        self._remember(_canonical(self._today_features))
        self._maybe_retrain(cols.ts.max() if len(cols) else None)
        self._today_signins, self._today_activities, self._today_features = [], [], []

    def _context(self, signins: Sequence[SignIn]) -> list[SignIn]:
        """The open day's earlier sign-ins a batch of it is judged with: each person's previous
        successful one (travel) and everything within the cross-account windows before it."""
        if not signins or not self._today_signins:
            return []
        horizon = 60.0 * max(2 * self.config.spray_window_minutes, self.config.mfa_window_minutes + 30)
        since = min(s.ts for s in signins) - horizon
        actors = {s.actor for s in signins}
        chosen: dict[int, SignIn] = {}
        previous: dict[str, SignIn] = {}
        for signin in self._today_signins:
            if signin.ts >= since:
                chosen[signin.event_id] = signin
            if (
                signin.actor in actors
                and signin.outcome is Outcome.SUCCESS
                and not self.config.is_allowed(signin.ip)
            ):
                before = previous.get(signin.actor)
                if before is None or signin_order(signin) > signin_order(before):
                    previous[signin.actor] = signin
        for signin in previous.values():
            chosen[signin.event_id] = signin
        return list(chosen.values())

    def _process_open(self, day: int, events: Sequence[StoredEvent]) -> BatchResult:
        signins, activities, rejected = self._read(events)
        keys = {(a.actor, a.kind) for a in activities}
        pool = [a for a in self._today_activities if (a.actor, a.kind) in keys] + activities
        result, features = self._judge(day, signins, self._context(signins), activities, pool)
        result.rejected = rejected
        self._today_features.append(features)
        self._today_signins.extend(signins)
        self._today_activities.extend(activities)
        return result

    def _process_late(self, day: int, events: Sequence[StoredEvent]) -> BatchResult:
        signins, activities, rejected = self._read(events)
        result, features = self._judge(day, signins, [], activities, activities)
        result.rejected = rejected
        self.builder.add_signins(to_columns(signins))
        self.builder.add_activities(activities)
        self._remember(features)
        return result

    def _judge(
        self,
        day: int,
        signins: Sequence[SignIn],
        context: Sequence[SignIn],
        activities: Sequence[Activity],
        day_activities: Sequence[Activity],
    ) -> tuple[BatchResult, np.ndarray]:
        """Hits for `signins` and `activities` (context and the day's earlier activity inform
        them), and the established people's session features for the model's training sample."""
        result = BatchResult(signins=len(signins), activities=len(activities))
        established = np.zeros((0, len(session_model.FEATURES)), dtype=np.float32)
        base = self.builder.freeze(volumes_before_day=day)
        judged_ids = {s.event_id for s in signins}
        cols = to_columns([*context, *signins])
        if len(cols):
            judged = np.isin(cols.event_id, np.fromiter(judged_ids, dtype=np.int64, count=len(judged_ids)))
            view = join(cols, base, self.config, judged)
            result.hits.extend(impossible_travel(view, base, self.config))
            result.hits.extend(novelty(view, base, self.config))
            result.hits.extend(unusual_hour(view, base, self.config))
            # a cross-account window wholly in the context was reported with its own batch
            for hit in (*password_spray(cols, self.config), *mfa_fatigue(cols, self.config)):
                if judged_ids.intersection(hit.event_ids):
                    result.hits.append(hit)
            features = session_features(view, base)
            result.hits.extend(self._model_hits(view, base, features))
            established = features[view.established & judged]
        if activities:
            result.hits.extend(volume_spikes(day_activities, base, self.config))
        return result, established

    def _model_hits(self, view, base: BaselineSet, features: np.ndarray) -> list[AnomalyHit]:
        if self.forest is None or len(features) == 0:
            return []
        scores = self.forest.score(features)
        cols = view.cols
        novel = (features[:, 1] >= 0.99) | (features[:, 2] >= 0.99) | (features[:, 3] >= 0.99)
        flagged = np.flatnonzero(
            (scores >= self.forest.alert_score) & view.established & novel & view.success & view.judged
        )
        grouped: dict[tuple[str, str], list[int]] = {}
        for row in flagged.tolist():
            day = datetime.fromtimestamp(cols.ts[row], UTC).strftime("%Y-%m-%d")
            grouped.setdefault((cols.actor[row], day), []).append(row)
        hits = []
        for (actor, day), rows in grouped.items():
            row = rows[int(np.argmax(scores[rows]))]
            reasons = self.forest.explain(features[row])
            because = (
                "; ".join(f"{name} = {value:.2f} (usual {usual:.2f})" for name, value, usual in reasons)
                or "an unusual combination"
            )
            hits.append(
                AnomalyHit(
                    AnomalyRule.SESSION_MODEL,
                    Severity.LOW,
                    round(float(min(0.9, scores[row])), 2),
                    f"Unusual sign-in session for {actor} (model score {scores[row]:.2f})",
                    f"The sign-in model scored {actor}'s sign-in at {datetime.fromtimestamp(cols.ts[row], UTC):%Y-%m-%d %H:%M} UTC "
                    f"from {cols.ip[row]} ({cols.country[row] or '??'}, {cols.network[row] or 'unknown network'}) at "
                    f"{scores[row]:.2f}, above the alert level {self.forest.alert_score:.2f} (the top "
                    f"{100 * (1 - self.config.model_alert_quantile):.2f}% of training sessions): {because}.",
                    f"anomaly:model:{actor}:{day}",
                    float(cols.ts[rows[0]]),
                    float(cols.ts[rows[-1]]),
                    tuple(int(cols.event_id[r]) for r in rows[:MAX_EVIDENCE]),
                    (actor,),
                    tuple(sorted({cols.ip[r] for r in rows if cols.ip[r]}))[:10],
                    cols.provider[row],
                    {
                        "score": round(float(scores[row]), 4),
                        "alert_score": round(self.forest.alert_score, 4),
                        "features": {
                            name: round(float(v), 3)
                            for name, v in zip(session_model.FEATURES, features[row], strict=True)
                        },
                    },
                )
            )
        return hits

    def _remember(self, rows: np.ndarray) -> None:
        """Keep a bounded, uniform sample of ordinary sessions to (re)train on."""
        if len(rows) == 0:
            return
        self._reservoir.append(rows)
        total = sum(len(r) for r in self._reservoir)
        if total > RESERVOIR:
            merged = np.concatenate(self._reservoir)
            keep = self._rng.choice(len(merged), RESERVOIR, replace=False)
            self._reservoir = [merged[keep]]

    def _maybe_retrain(self, latest_ts: float | None) -> None:
        if latest_ts is None:
            return
        stale = (
            self.model_trained_ts is None
            or latest_ts - self.model_trained_ts >= self.config.model_max_age_hours * 3600
        )
        rows = sum(len(r) for r in self._reservoir)
        if stale and rows >= MIN_TRAINING_ROWS:
            self.retrain(latest_ts)

    def retrain(self, trained_event_ts: float | None = None) -> session_model.ForestArrays | None:
        """Fit a fresh forest on the sample of established people's sessions; store it if we can."""
        if not self._reservoir:
            return None
        training = np.concatenate(self._reservoir)
        self.forest = session_model.train(
            training,
            trees=self.config.model_trees,
            sample=self.config.model_sample,
            alert_quantile=self.config.model_alert_quantile,
        )
        self.model_trained_ts = trained_event_ts if trained_event_ts is not None else utcnow().timestamp()
        self._pending_model = (self.forest, len(training))
        return self.forest

    def store_model(self, session: Session) -> AnomalyModel | None:
        """Write a freshly trained model (file + hash row) in the caller's transaction."""
        pending = self._pending_model
        if pending is None or self.models_dir is None:
            return None
        forest, samples = pending
        now = utcnow()
        stored_model = session_model.save(forest, self.models_dir, now)
        row = AnomalyModel(
            kind=self.model_kind,
            trained_at=now,
            samples=samples,
            features=list(session_model.FEATURES),
            path=str(stored_model.path),
            sha256=stored_model.sha256,
            details={
                "trees": len(forest.roots),
                "alert_score": forest.alert_score,
                "trained_event_ts": self.model_trained_ts,
            },
        )
        session.add(row)
        self._pending_model = None
        return row
