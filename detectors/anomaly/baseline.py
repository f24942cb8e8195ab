"""Per-person baselines: countries, networks, devices, hours, daily volumes — learned from history.

:class:`BaselineBuilder` accumulates counts (vectorised per batch) and :meth:`freeze` turns them
into a :class:`BaselineSet`: sorted int64 key arrays (``person * VOCAB + value``) with counts, so
"how often has alice signed in from BR?" for 100,000 sign-ins is one ``np.searchsorted``. The
builder is saved as :class:`core.models.PersonBaseline` rows (JSON per person), a summary for
people and privacy requests; a restart re-learns from the stored events (see the engine).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from operator import is_

import numpy as np

from core.models import PersonBaseline
from detectors.anomaly.signals import Activity, ActivityKind, Outcome, SignInColumns

VOCAB = 1 << 32
FEATURES = ("country", "network", "device")


class Vocabulary:
    """Stable small integer codes for strings (countries, networks, devices, people)."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.codes: dict[str, int] = {}
        self.values: list[str] = []
        for value in values:
            self.code(value)

    def code(self, value: str) -> int:
        code = self.codes.get(value)
        if code is None:
            code = len(self.values)
            self.codes[value] = code
            self.values.append(value)
        return code

    def encode(self, values: np.ndarray, *, grow: bool) -> np.ndarray:
        """Codes for an object array; None stays -1, unknown values are -1 unless `grow`."""
        if grow:
            get = self.code
            return np.fromiter(
                (-1 if v is None else get(v) for v in values), dtype=np.int64, count=len(values)
            )
        # None is never a key (growing skips it), so a plain lookup with -1 for misses does both
        return np.fromiter(map(self.codes.get, values, repeat(-1)), dtype=np.int64, count=len(values))


@dataclass
class VolumeStats:
    mean: np.ndarray  # per person: mean daily count over the person's active days
    std: np.ndarray
    maximum: np.ndarray
    peer_p50: float
    peer_p99: float


@dataclass
class BaselineSet:
    """A frozen, array-backed view of every person's baseline (what scoring reads)."""

    people: Vocabulary
    vocab: dict[str, Vocabulary]
    keys: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    hours: np.ndarray  # (people, 24) counts of successful sign-ins
    signins: np.ndarray
    active_days: np.ndarray
    last_ts: np.ndarray
    last_lat: np.ndarray
    last_lon: np.ndarray
    last_country: list[str | None]
    last_event: np.ndarray
    last_precise: np.ndarray
    volumes: dict[str, VolumeStats]
    window_start: float
    window_end: float
    # the network and device of that last sign-in (a VPN exit on the person's own laptop is no place)
    last_network: list[str | None] = field(default_factory=list)
    last_device: list[str | None] = field(default_factory=list)

    def person_codes(self, actors: np.ndarray) -> np.ndarray:
        return self.people.encode(actors, grow=False)

    def count_of(self, feature: str, person: np.ndarray, values: np.ndarray) -> np.ndarray:
        """How often each (person, value) pair was seen; -1 where the value is missing."""
        codes = self.vocab[feature].encode(values, grow=False)
        keys, counts = self.keys[feature], self.counts[feature]
        result = np.zeros(len(values), dtype=np.int64)
        query = person * VOCAB + codes
        valid = (person >= 0) & (codes >= 0)
        if len(keys) and valid.any():
            where = np.searchsorted(keys, query[valid])
            where = np.minimum(where, len(keys) - 1)
            hit = keys[where] == query[valid]
            result[np.flatnonzero(valid)[hit]] = counts[where[hit]]
        result[np.fromiter(map(is_, values, repeat(None)), dtype=bool, count=len(values))] = -1
        return result

    def distinct_of(self, feature: str, person: np.ndarray) -> np.ndarray:
        """How many distinct values of a feature each person has in the baseline."""
        keys = self.keys[feature]
        owners = keys // VOCAB
        per_person = (
            np.bincount(owners, minlength=len(self.people.values)) if len(keys) else np.zeros(0, np.int64)
        )
        result = np.zeros(len(person), dtype=np.int64)
        known = (person >= 0) & (person < len(per_person))
        result[known] = per_person[person[known]]
        return result

    def people_using(self, feature: str, values: np.ndarray) -> np.ndarray:
        """How many distinct people of the tenant each value was seen with (population view)."""
        keys = self.keys[feature]
        result = np.zeros(len(values), dtype=np.int64)
        if not len(keys):
            return result
        per_value = np.bincount(keys % VOCAB, minlength=len(self.vocab[feature].values))
        codes = self.vocab[feature].encode(values, grow=False)
        known = (codes >= 0) & (codes < len(per_value))
        result[known] = per_value[codes[known]]
        return result

    def established(self, person: np.ndarray, min_days: int, min_signins: int) -> np.ndarray:
        """True where the person has enough history for a trustworthy baseline (cold start otherwise)."""
        result = np.zeros(len(person), dtype=bool)
        known = person >= 0
        result[known] = (self.active_days[person[known]] >= min_days) & (
            self.signins[person[known]] >= min_signins
        )
        return result


DAY_SLOTS = 100_000  # day keys are person * DAY_SLOTS + day (days since the epoch)
KINDS = [kind.value for kind in ActivityKind]
_EMPTY = np.zeros(0, dtype=np.int64)


def _merged(
    keys: np.ndarray, counts: np.ndarray, more: np.ndarray, more_counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Two sorted (key, count) arrays as one, counts of equal keys summed (new arrays)."""
    if not len(more):
        return keys, counts
    if not len(keys):
        return more, more_counts
    merged, inverse = np.unique(np.concatenate([keys, more]), return_inverse=True)
    total = np.zeros(len(merged), dtype=np.int64)
    np.add.at(total, inverse.ravel(), np.concatenate([counts, more_counts]))
    return merged, total


class BaselineBuilder:
    """Accumulates history; cheap to update per batch, frozen into a BaselineSet for scoring.

    Counts are kept as sorted int64 key arrays with counts (what `freeze` hands out, without
    sorting a dict each time), a few bytes per person and value or day, not a Python dict entry.
    """

    def __init__(self) -> None:
        self.people = Vocabulary()
        self.vocab = {feature: Vocabulary() for feature in FEATURES}
        # per feature: sorted person * VOCAB + value codes, and how often each was seen
        self.pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {f: (_EMPTY, _EMPTY) for f in FEATURES}
        self.hours = np.zeros((0, 24), dtype=np.int64)
        self.signins = np.zeros(0, dtype=np.int64)
        self.days = _EMPTY  # sorted person * DAY_SLOTS + day a person was active
        # person -> (ts, lat, lon, country, event_id, precise, network, device)
        self.last: dict[int, tuple[float, float, float, str | None, int, bool, str | None, str | None]] = {}
        # sorted (person * len(KINDS) + kind) * DAY_SLOTS + day, and the activity count of each
        self.volume: tuple[np.ndarray, np.ndarray] = (_EMPTY, _EMPTY)
        self.window_start = float("inf")
        self.window_end = float("-inf")

    def _grow(self) -> None:
        n = len(self.people.values)
        if len(self.signins) < n:
            extra = n - len(self.signins)
            self.hours = np.vstack([self.hours, np.zeros((extra, 24), dtype=np.int64)])
            self.signins = np.concatenate([self.signins, np.zeros(extra, dtype=np.int64)])

    def add_signins(self, columns: SignInColumns) -> None:
        if len(columns) == 0:
            return
        success = columns.outcome == Outcome.SUCCESS.value
        person = self.people.encode(columns.actor, grow=True)
        self._grow()
        self.window_start = min(self.window_start, float(columns.ts.min()))
        self.window_end = max(self.window_end, float(columns.ts.max()))
        day = (columns.ts // 86400).astype(np.int64)
        self.days = np.union1d(self.days, person * DAY_SLOTS + day)
        p_ok = person[success]
        for feature in FEATURES:
            codes = self.vocab[feature].encode(getattr(columns, feature)[success], grow=True)
            keep = codes >= 0
            keys, counts = np.unique(p_ok[keep] * VOCAB + codes[keep], return_counts=True)
            self.pairs[feature] = _merged(*self.pairs[feature], keys, counts.astype(np.int64))
        hour = ((columns.ts[success] % 86400) // 3600).astype(np.int64)
        np.add.at(self.hours, (p_ok, hour), 1)
        np.add.at(self.signins, p_ok, 1)
        located = success & ~np.isnan(columns.latitude) | success & np.array(
            [c is not None for c in columns.country]
        )
        idx = np.flatnonzero(located)
        if len(idx):
            # rows are sorted by (actor, ts): the last row of each person is their latest location
            last_rows = idx[np.r_[person[idx][1:] != person[idx][:-1], True]]
            for row in last_rows.tolist():
                code = int(person[row])
                if code in self.last and self.last[code][0] > columns.ts[row]:
                    continue
                self.last[code] = (
                    float(columns.ts[row]),
                    float(columns.latitude[row]),
                    float(columns.longitude[row]),
                    columns.country[row],
                    int(columns.event_id[row]),
                    bool(columns.precise[row]),
                    columns.network[row],
                    columns.device[row],
                )

    def add_activities(self, activities: Sequence[Activity]) -> None:
        if activities:
            code = self.people.code
            kind_of = {kind: KINDS.index(kind) for kind in KINDS}
            n = len(activities)
            person = np.fromiter((code(a.actor) for a in activities), dtype=np.int64, count=n)
            day = np.fromiter((int(a.ts // 86400) for a in activities), dtype=np.int64, count=n)
            kind = np.fromiter((kind_of[a.kind.value] for a in activities), dtype=np.int64, count=n)
            keys, counts = np.unique((person * len(KINDS) + kind) * DAY_SLOTS + day, return_counts=True)
            self.volume = _merged(*self.volume, keys, counts.astype(np.int64))
            self.days = np.union1d(self.days, person * DAY_SLOTS + day)
        self._grow()

    def freeze(self, *, volumes_before_day: int | None = None) -> BaselineSet:
        """Freeze for scoring; volumes of `volumes_before_day` and later are left out, so a spike
        that arrives over several batches is never compared with itself."""
        self._grow()
        n = len(self.people.values)
        # the arrays are replaced, never changed in place, by later updates: shared, not copied
        keys = {feature: self.pairs[feature][0] for feature in FEATURES}
        counts = {feature: self.pairs[feature][1] for feature in FEATURES}
        day_keys = self.days
        active = np.bincount(day_keys // DAY_SLOTS, minlength=n) if len(day_keys) else np.zeros(n, np.int64)
        last_ts = np.full(n, np.nan)
        last_lat = np.full(n, np.nan)
        last_lon = np.full(n, np.nan)
        last_event = np.full(n, -1, dtype=np.int64)
        last_precise = np.zeros(n, dtype=bool)
        last_country: list[str | None] = [None] * n
        last_network: list[str | None] = [None] * n
        last_device: list[str | None] = [None] * n
        for code, (ts, lat, lon, country, event_id, precise, network, device) in self.last.items():
            last_ts[code], last_lat[code], last_lon[code] = ts, lat, lon
            last_country[code], last_event[code], last_precise[code] = country, event_id, precise
            last_network[code], last_device[code] = network, device
        return BaselineSet(
            people=self.people,
            vocab=self.vocab,
            keys=keys,
            counts=counts,
            hours=self.hours.copy(),
            signins=self.signins.copy(),
            active_days=active[:n],
            last_ts=last_ts,
            last_lat=last_lat,
            last_lon=last_lon,
            last_country=last_country,
            last_event=last_event,
            last_precise=last_precise,
            volumes=self._volume_stats(n, active, volumes_before_day),
            last_network=last_network,
            last_device=last_device,
            window_start=self.window_start,
            window_end=self.window_end,
        )

    def _volume_stats(
        self, n: int, active: np.ndarray, before_day: int | None = None
    ) -> dict[str, VolumeStats]:
        stats = {}
        if before_day is not None:
            keys = self.days
            keys = keys[keys % DAY_SLOTS < before_day]
            active = np.bincount(keys // DAY_SLOTS, minlength=n) if len(keys) else np.zeros(n, np.int64)
        days = np.maximum(active[:n], 1).astype(np.float64)
        volume_keys, volume_counts = self.volume
        if before_day is not None:
            kept = volume_keys % DAY_SLOTS < before_day
            volume_keys, volume_counts = volume_keys[kept], volume_counts[kept]
        slot = volume_keys // DAY_SLOTS
        person, kinds = slot // len(KINDS), slot % len(KINDS)
        # integer counts: the sums below are exact whatever the order of the entries
        counts = volume_counts.astype(np.float64)
        for index, kind in enumerate(KINDS):
            mask = kinds == index
            p, c = person[mask], counts[mask]
            total = np.bincount(p, weights=c, minlength=n)[:n]
            squares = np.bincount(p, weights=c * c, minlength=n)[:n]
            maximum = np.zeros(n)
            np.maximum.at(maximum, p, c)
            mean = total / days
            std = np.sqrt(np.maximum(squares / days - mean * mean, 0.0))
            stats[kind] = VolumeStats(
                mean,
                std,
                maximum,
                float(np.percentile(c, 50)) if len(c) else 0.0,
                float(np.percentile(c, 99)) if len(c) else 0.0,
            )
        return stats

    # ------------------------------------------------------------ persistence

    def to_rows(self, built_at: datetime) -> list[PersonBaseline]:
        """One row per person (plus the peers row): what a restart reloads."""
        frozen = self.freeze()
        per_person: dict[int, dict[str, dict[str, int]]] = defaultdict(lambda: {f: {} for f in FEATURES})
        for feature in FEATURES:
            values = self.vocab[feature].values
            pair_keys, pair_counts = self.pairs[feature]
            for key, count in zip(pair_keys.tolist(), pair_counts.tolist(), strict=True):
                per_person[key // VOCAB][feature][values[key % VOCAB]] = count
        volume_days: dict[int, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
        for key, count in zip(self.volume[0].tolist(), self.volume[1].tolist(), strict=True):
            slot, day = divmod(key, DAY_SLOTS)
            person, kind = divmod(slot, len(KINDS))
            volume_days[person][KINDS[kind]][str(day)] = count
        start = datetime.fromtimestamp(self.window_start if np.isfinite(self.window_start) else 0, UTC)
        end = datetime.fromtimestamp(self.window_end if np.isfinite(self.window_end) else 0, UTC)
        rows = []
        for code, actor in enumerate(self.people.values):
            seen = per_person.get(code, {f: {} for f in FEATURES})
            last = self.last.get(code)
            rows.append(
                PersonBaseline(
                    actor=actor[:500],
                    built_at=built_at,
                    window_start=start,
                    window_end=end,
                    active_days=int(frozen.active_days[code]),
                    signins=int(frozen.signins[code]),
                    countries=seen["country"],
                    networks=seen["network"],
                    devices=seen["device"],
                    hours=frozen.hours[code].tolist(),
                    volumes={kind: days for kind, days in volume_days.get(code, {}).items()},
                    last_location={
                        "ts": last[0],
                        # no coordinates is NaN in memory; JSON (and PostgreSQL) want null
                        "lat": _finite_or_none(last[1]),
                        "lon": _finite_or_none(last[2]),
                        "country": last[3],
                        "event_id": last[4],
                        "precise": last[5],
                    }
                    if last
                    else {},
                )
            )
        return rows


def _finite_or_none(value: float) -> float | None:
    return None if math.isnan(value) else float(value)
