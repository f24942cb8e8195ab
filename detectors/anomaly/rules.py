"""Explicit anomaly checks over a batch of sign-ins and activity, each explained in words and numbers.

Every function is pure: a batch (columns sorted by person and time), the baseline learned from
the history before it, the configuration — and it returns :class:`AnomalyHit` values. Checks
that compare a person with their own past are withheld to low severity and low confidence when
the person has no established baseline yet (cold start); cross-account checks (password spray,
MFA fatigue) need no baseline.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

import numpy as np

from core.findings import MAX_EVIDENCE
from core.models.enums import Severity
from detectors.anomaly.baseline import BaselineSet
from detectors.anomaly.config import AnomalyConfig
from detectors.anomaly.geo import country_position, haversine_km_array
from detectors.anomaly.signals import Activity, Outcome, SignInColumns

COLD_START_CONFIDENCE = 0.3
_HOSTING_WORDS = (
    "hosting", "cloud", "datacenter", "data center", "datacamp", "server", "ovh", "hetzner", "leaseweb",
    "m247", "digitalocean", "linode", "vultr", "choopa", "amazon", "google llc", "microsoft", "tornado",
    "hostroyale", "contabo", "scaleway",
)  # fmt: skip


class AnomalyRule(StrEnum):
    IMPOSSIBLE_TRAVEL = "anomaly.impossible_travel"
    NEW_COUNTRY = "anomaly.new_country"
    NEW_NETWORK = "anomaly.new_network"
    NEW_DEVICE = "anomaly.new_device"
    UNFAMILIAR_SIGNIN = "anomaly.unfamiliar_signin"
    UNUSUAL_HOUR = "anomaly.unusual_hour"
    VOLUME_SPIKE = "anomaly.volume_spike"
    PASSWORD_SPRAY = "anomaly.password_spray"
    MFA_FATIGUE = "anomaly.mfa_fatigue"
    SESSION_MODEL = "anomaly.signin_model"


MITRE = {
    AnomalyRule.IMPOSSIBLE_TRAVEL: ("T1078",),
    AnomalyRule.NEW_COUNTRY: ("T1078",),
    AnomalyRule.NEW_NETWORK: ("T1078",),
    AnomalyRule.NEW_DEVICE: ("T1078",),
    AnomalyRule.UNFAMILIAR_SIGNIN: ("T1078", "T1539"),
    AnomalyRule.UNUSUAL_HOUR: ("T1078",),
    AnomalyRule.VOLUME_SPIKE: ("T1530", "T1485"),
    AnomalyRule.PASSWORD_SPRAY: ("T1110.003",),
    AnomalyRule.MFA_FATIGUE: ("T1621",),
    AnomalyRule.SESSION_MODEL: ("T1078",),
}


@dataclass(frozen=True)
class AnomalyHit:
    rule: AnomalyRule
    severity: Severity
    confidence: float
    title: str
    description: str
    dedup_key: str
    first_ts: float
    last_ts: float
    event_ids: tuple[int, ...]
    people: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    provider: str | None = None
    context: dict[str, Any] = field(default_factory=dict)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    if minutes < 120:
        return f"{minutes:.0f} minutes"
    return f"{minutes / 60:.1f} hours"


# A hosting network at least this many people of the tenant use is a shared egress (a VPN).
SHARED_EGRESS_PEOPLE = 3
# Devices the provider identifies by its own device id (Entra joined/registered), see signals.
REGISTERED_DEVICE_PREFIX = "id:"
# "Too fast" on the person's own registered device: recorded for the digest, not an incident.
OWN_DEVICE_TRAVEL_CONFIDENCE = 0.4


@lru_cache(maxsize=4096)  # a batch names few networks, most of them many times
def is_hosting(network: str | None) -> bool:
    return network is not None and any(word in network.lower() for word in _HOSTING_WORDS)


def _raise(severity: Severity, steps: int = 1) -> Severity:
    order = [Severity.INFORMATIONAL, Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL]
    return order[min(order.index(severity) + steps, len(order) - 2)]  # never critical on anomalies alone


@dataclass
class BatchView:
    """A batch joined with the baseline: per-row person code and how familiar each value is."""

    cols: SignInColumns
    person: np.ndarray
    established: np.ndarray
    seen_country: np.ndarray
    seen_network: np.ndarray
    seen_device: np.ndarray
    devices_known: np.ndarray
    allowed: np.ndarray
    success: np.ndarray
    # rows this call judges; the others are context (the same day's earlier sign-ins, judged
    # before: a person's previous sign-in, a spray's first attempts) that only inform them
    judged: np.ndarray
    # travel_speeds of this view against one baseline, computed once for travel and the features
    travel: tuple[BaselineSet, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] | None = field(
        default=None, repr=False
    )


def join(
    cols: SignInColumns, base: BaselineSet, config: AnomalyConfig, judged: np.ndarray | None = None
) -> BatchView:
    person = base.person_codes(cols.actor)
    return BatchView(
        cols=cols,
        person=person,
        established=base.established(person, config.min_baseline_days, config.min_baseline_signins),
        seen_country=base.count_of("country", person, cols.country),
        seen_network=base.count_of("network", person, cols.network),
        seen_device=base.count_of("device", person, cols.device),
        devices_known=base.distinct_of("device", person),
        allowed=np.array([config.is_allowed(ip) for ip in cols.ip], dtype=bool)
        if config.allowed
        else np.zeros(len(cols), dtype=bool),
        success=cols.outcome == Outcome.SUCCESS.value,
        judged=np.ones(len(cols), dtype=bool) if judged is None else judged,
    )


# ---------------------------------------------------------------- travel


def travel_speeds(
    view: BatchView, base: BaselineSet
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each successful sign-in: (previous row or -1, distance km lower bound, hours, previous ts).

    Distances use provider/database coordinates when both ends have them; otherwise country
    centres minus each country's radius, so "US then US" is 0 km and big countries never look
    far apart by accident. The previous sign-in is the person's last one in this batch, or the
    last one the baseline remembers. Computed once per view and baseline (the result is shared:
    callers must not change it).
    """
    if view.travel is not None and view.travel[0] is base:
        return view.travel[1]
    result = _travel_speeds(view, base)
    view.travel = (base, result)
    return result


def _travel_speeds(
    view: BatchView, base: BaselineSet
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    cols = view.cols
    idx = np.flatnonzero(view.success & ~view.allowed)
    n = len(cols)
    prev = np.full(n, -1, dtype=np.int64)
    dist = np.full(n, np.nan)
    hours = np.full(n, np.nan)
    prev_ts = np.full(n, np.nan)
    if len(idx) == 0:
        return prev, dist, hours, prev_ts
    same = np.r_[False, cols.actor[idx][1:] == cols.actor[idx][:-1]]
    prev_rows = np.where(same, np.r_[-1, idx[:-1]], -1)
    prev[idx] = prev_rows
    lat1 = np.where(same, cols.latitude[np.maximum(prev_rows, 0)], np.nan)
    lon1 = np.where(same, cols.longitude[np.maximum(prev_rows, 0)], np.nan)
    ts1 = np.where(same, cols.ts[np.maximum(prev_rows, 0)], np.nan)
    country1 = [
        cols.country[p] if s else None for p, s in zip(prev_rows.tolist(), same.tolist(), strict=True)
    ]
    # first row of a person in the batch: continue from the baseline's last location
    person = view.person[idx]
    from_base = ~same & (person >= 0)
    if from_base.any():
        codes = person[from_base]
        lat1[from_base] = base.last_lat[codes]
        lon1[from_base] = base.last_lon[codes]
        ts1[from_base] = base.last_ts[codes]
        for i, code in zip(np.flatnonzero(from_base).tolist(), codes.tolist(), strict=True):
            country1[i] = base.last_country[code]
    lat2, lon2 = cols.latitude[idx], cols.longitude[idx]
    precise = ~np.isnan(lat1) & ~np.isnan(lat2)
    km = np.where(precise, haversine_km_array(lat1, lon1, lat2, lon2), np.nan)
    for i in np.flatnonzero(~precise).tolist():
        c1, c2 = country1[i], cols.country[idx[i]]
        if not c1 or not c2 or np.isnan(ts1[i]):
            continue
        if c1 == c2:
            km[i] = 0.0
            continue
        p1, p2 = country_position(c1), country_position(c2)
        if p1 is None or p2 is None:
            continue
        a_lat, a_lon, a_r = (lat1[i], lon1[i], 0.0) if not np.isnan(lat1[i]) else p1
        b_lat, b_lon, b_r = (lat2[i], lon2[i], 0.0) if not np.isnan(lat2[i]) else p2
        centre = haversine_km_array(
            np.array([a_lat]), np.array([a_lon]), np.array([b_lat]), np.array([b_lon])
        )[0]
        km[i] = max(0.0, centre - a_r - b_r)
    dist[idx] = km
    elapsed = (cols.ts[idx] - ts1) / 3600.0
    # a late-arriving event older than the remembered location says nothing about travel
    hours[idx] = np.where(elapsed >= 0, np.maximum(elapsed, 1 / 60), np.nan)
    prev_ts[idx] = ts1
    return prev, dist, hours, prev_ts


def impossible_travel(view: BatchView, base: BaselineSet, config: AnomalyConfig) -> list[AnomalyHit]:
    cols = view.cols
    prev, dist, hours, prev_ts = travel_speeds(view, base)
    speed = dist / hours
    flagged = np.flatnonzero(
        (dist >= config.min_travel_km) & (speed >= config.impossible_speed_kmh) & view.judged
    )
    # Population view: a hosting network (commercial VPN, cloud egress) that several people of the
    # tenant sign in through is shared infrastructure; where it is says nothing about where they are.
    users_of_network = (
        base.people_using("network", cols.network) if len(flagged) else np.zeros(len(cols), dtype=np.int64)
    )
    own_device_at = _own_registered_device_at(view, flagged)
    hits = []
    for row in flagged.tolist():
        new_country = view.seen_country[row] == 0
        new_network = view.seen_network[row] == 0
        if not (new_country or new_network):
            continue  # both ends are places this person uses (e.g. a VPN they always use): not travel
        p = int(prev[row])
        if p >= 0 and view.seen_network[p] > 0 and is_hosting(cols.network[p]):
            # The previous sign-in came through a VPN or cloud egress this person uses: where
            # that egress is says nothing about where they were (a commercial VPN, then travel).
            continue
        if _left_through_own_vpn(view, base, row, p, own_device_at):
            continue
        if is_hosting(cols.network[row]) and users_of_network[row] >= SHARED_EGRESS_PEOPLE:
            continue
        if p >= 0 and is_hosting(cols.network[p]) and users_of_network[p] >= SHARED_EGRESS_PEOPLE:
            continue
        actor, country = cols.actor[row], cols.country[row]
        before_country = cols.country[p] if p >= 0 else base.last_country[int(view.person[row])]
        before_event = int(cols.event_id[p]) if p >= 0 else int(base.last_event[int(view.person[row])])
        minutes = (cols.ts[row] - prev_ts[row]) / 60
        severity = Severity.HIGH if new_country else Severity.MEDIUM
        confidence = 0.9 if new_country else 0.7
        own_device = None if is_hosting(cols.network[row]) else own_device_at.get((actor, cols.ip[row]))
        if own_device is not None:
            severity, confidence = Severity.LOW, OWN_DEVICE_TRAVEL_CONFIDENCE
        if not view.established[row]:
            severity, confidence = Severity.LOW, COLD_START_CONFIDENCE
        first = "first sign-in from" if new_country else "sign-in from a new network in"
        description = (
            f"{first} {country} for {actor}; {dist[row]:,.0f} km from their {before_country} sign-in "
            f"{_duration(minutes * 60)} earlier = {speed[row]:,.0f} km/h (limit {config.impossible_speed_kmh:,.0f} km/h). "
            f"IP {cols.ip[row]} ({cols.network[row] or 'unknown network'})"
            + (
                f"; from that IP they signed in on their registered device {own_device[0].removeprefix('id:')} "
                f"(seen {own_device[1]} times before): the person is there (a trip, or a phone and a laptop "
                "on different networks), not someone replaying their session"
                if own_device is not None
                else ""
            )
            + "."
        )
        hits.append(
            AnomalyHit(
                AnomalyRule.IMPOSSIBLE_TRAVEL,
                severity,
                confidence,
                f"Impossible travel: {actor} {before_country} → {country} at {speed[row]:,.0f} km/h",
                description,
                f"anomaly:travel:{actor}:{country}:{_day(cols.ts[row])}",
                float(prev_ts[row]),
                float(cols.ts[row]),
                tuple(e for e in (before_event, int(cols.event_id[row])) if e >= 0),
                (actor,),
                (cols.ip[row],) if cols.ip[row] else (),
                cols.provider[row],
                {
                    "distance_km": round(float(dist[row]), 1),
                    "minutes": round(float(minutes), 1),
                    "speed_kmh": round(float(speed[row]), 1),
                    "from_country": before_country,
                    "to_country": country,
                    "new_country": bool(new_country),
                    "cold_start": not bool(view.established[row]),
                    "own_registered_device": own_device[0] if own_device is not None else None,
                },
            )
        )
    return hits


def _own_registered_device_at(view: BatchView, flagged: np.ndarray) -> dict[tuple[str, str], tuple[str, int]]:
    """(person, IP) -> (device, times seen) where the batch shows the person signing in from that IP
    on a registered device (the provider's device id, not a user-agent family) their baseline knows.

    A stolen session or password is used from the thief's machine, which carries no device id of
    the tenant's; the person's own enrolled laptop or phone at the far end says they are there.
    """
    if not len(flagged):
        return {}
    cols = view.cols
    rows = np.flatnonzero(
        view.success & (view.seen_device > 0) & np.isin(cols.actor, list(set(cols.actor[flagged].tolist())))
    )
    found: dict[tuple[str, str], tuple[str, int]] = {}
    for row in rows.tolist():
        device, ip = cols.device[row], cols.ip[row]
        if ip and isinstance(device, str) and device.startswith(REGISTERED_DEVICE_PREFIX):
            found.setdefault((cols.actor[row], ip), (device, int(view.seen_device[row])))
    return found


def _left_through_own_vpn(
    view: BatchView,
    base: BaselineSet,
    row: int,
    prev: int,
    own_device_at: dict[tuple[str, str], tuple[str, int]],
) -> bool:
    """Whether the sign-in before `row` came through a hosting network (a VPN exit) on the person's
    own registered device: the exit's location is not theirs, whether this batch saw that sign-in
    (`prev` ≥ 0) or the baseline remembers it as their last one."""
    cols = view.cols
    if prev >= 0:
        return is_hosting(cols.network[prev]) and (cols.actor[prev], cols.ip[prev]) in own_device_at
    code = int(view.person[row])
    if code < 0 or code >= len(base.last_device) or not is_hosting(base.last_network[code]):
        return False
    device = base.last_device[code]
    if not (isinstance(device, str) and device.startswith(REGISTERED_DEVICE_PREFIX)):
        return False
    # more than that one sign-in: a device they had before, not one enrolled by whoever signed in
    seen = base.count_of("device", np.array([code]), np.array([device], dtype=object))
    return int(seen[0]) > 1


# ---------------------------------------------------------------- novelty


def _spray_ips(cols: SignInColumns) -> set[str]:
    """IPs that failed against several different accounts in this batch (attacker infrastructure)."""
    failures: dict[str, set[str]] = defaultdict(set)
    rows = np.flatnonzero(cols.outcome == Outcome.FAILURE.value)
    for ip, actor in zip(cols.ip[rows].tolist(), cols.actor[rows].tolist(), strict=True):
        if ip:
            failures[ip].add(actor)
    return {ip for ip, actors in failures.items() if len(actors) >= 3}


def _known_countries(base: BaselineSet, person: int) -> list[tuple[str, int]]:
    """A person's three most frequent baseline countries (ties in key order). The keys are sorted
    (person << 32 | country code), so a person's are one contiguous slice, found by bisection
    instead of a scan of every person's keys per hit."""
    countries = base.vocab["country"].values
    keys, counts = base.keys["country"], base.counts["country"]
    low, high = np.searchsorted(keys, [person << 32, (person + 1) << 32]).tolist()
    return sorted(
        (
            (countries[k % (1 << 32)], c)
            for k, c in zip(keys[low:high].tolist(), counts[low:high].tolist(), strict=True)
        ),
        key=lambda item: -item[1],
    )[:3]


def novelty(view: BatchView, base: BaselineSet, config: AnomalyConfig) -> list[AnomalyHit]:
    """New country / network / device for a person, grouped per person and value."""
    cols = view.cols
    spray_ips = _spray_ips(cols)
    rows = np.flatnonzero(view.success & ~view.allowed & (view.person >= 0) & view.judged)
    groups: dict[tuple[AnomalyRule, str, str], list[int]] = defaultdict(list)
    # the per-row tests as whole-array operations, then plain Python values per row
    country_rows = view.seen_country[rows] == 0
    network_rows = view.seen_network[rows] == 0
    device_rows = (view.seen_device[rows] == 0) & (view.devices_known[rows] > 0)
    # only rows with something new make a group: the rest (most sign-ins) are never visited
    some = country_rows | network_rows | device_rows
    rows = rows[some]
    countries = country_rows[some].tolist()
    networks = network_rows[some].tolist()
    devices = device_rows[some].tolist()
    for row, actor, new_country, new_network, new_device in zip(
        rows.tolist(), cols.actor[rows].tolist(), countries, networks, devices, strict=True
    ):
        if new_country:
            groups[(AnomalyRule.NEW_COUNTRY, actor, str(cols.country[row]))].append(row)
        elif new_network and new_device:
            groups[(AnomalyRule.UNFAMILIAR_SIGNIN, actor, f"{cols.network[row]}|{cols.device[row]}")].append(
                row
            )
        elif new_network:
            groups[(AnomalyRule.NEW_NETWORK, actor, str(cols.network[row]))].append(row)
        elif new_device:
            groups[(AnomalyRule.NEW_DEVICE, actor, str(cols.device[row]))].append(row)
    hits = []
    for (rule, actor, value), members in groups.items():
        first = members[0]
        person = int(view.person[first])
        established = bool(view.established[first])
        hosting = is_hosting(cols.network[first])
        from_spray = cols.ip[first] in spray_ips
        new_device = view.seen_device[first] == 0 and view.devices_known[first] > 0
        severity = Severity.LOW
        reasons = []
        if rule is AnomalyRule.NEW_COUNTRY:
            # Travellers land in new countries on new phones, and commercial-VPN users exit from
            # hosting networks, every week. Each alone stays low; an IP that sprayed other
            # accounts, or a hosting network *and* a never-seen device together, raise it.
            reasons = [
                reason
                for flag, reason in (
                    (hosting, "a hosting/VPS network"),
                    (from_spray, "an IP that failed against other accounts"),
                    (new_device, "a device never seen for them"),
                )
                if flag
            ]
            for _ in range(int(from_spray) + int(hosting and new_device)):
                severity = _raise(severity)
        elif rule is AnomalyRule.UNFAMILIAR_SIGNIN and (hosting or from_spray):
            severity = Severity.MEDIUM
            reasons.append("a hosting/VPS network" if hosting else "an IP that failed against other accounts")
        elif rule in (AnomalyRule.NEW_NETWORK, AnomalyRule.NEW_DEVICE):
            severity = Severity.INFORMATIONAL if not (hosting or from_spray) else Severity.LOW
        confidence = 0.8 if established else COLD_START_CONFIDENCE
        if not established:
            severity = min(severity, Severity.LOW, key=lambda s: s.rank)
        known = _known_countries(base, person)
        history = ", ".join(f"{c} ({n})" for c, n in known) or "none yet"
        total = int(base.signins[person])
        at = cols.ts[first]
        what = {
            AnomalyRule.NEW_COUNTRY: f"first sign-in from {value} for {actor}",
            AnomalyRule.UNFAMILIAR_SIGNIN: f"sign-in for {actor} from a new network ({cols.network[first]}) on a new device ({cols.device[first]})",
            AnomalyRule.NEW_NETWORK: f"first sign-in from network {value} for {actor}",
            AnomalyRule.NEW_DEVICE: f"first sign-in from device {value} for {actor}",
        }[rule]
        description = (
            f"{what} at {_when(at)} (IP {cols.ip[first]}, {cols.network[first] or 'unknown network'}); "
            f"{len(members)} sign-in(s) like it in this batch; their {total} earlier sign-ins came from {history}"
            + (f"; it came from {' and '.join(reasons)}" if reasons else "")
            + ("" if established else "; baseline still being learned (cold start): low confidence")
            + "."
        )
        hits.append(
            AnomalyHit(
                rule,
                severity,
                confidence,
                what[0].upper() + what[1:],
                description,
                f"{rule.value}:{actor}:{value}",
                float(at),
                float(cols.ts[members[-1]]),
                tuple(cols.event_id[members[:MAX_EVIDENCE]].tolist()),
                (actor,),
                tuple(sorted({ip for ip in cols.ip[members].tolist() if ip}))[:10],
                cols.provider[first],
                {
                    "value": value,
                    "baseline_signins": total,
                    "known_countries": dict(known),
                    "cold_start": not established,
                    "hosting_network": hosting,
                    "spray_ip": from_spray,
                },
            )
        )
    return hits


def unusual_hour(view: BatchView, base: BaselineSet, config: AnomalyConfig) -> list[AnomalyHit]:
    cols = view.cols
    rows = np.flatnonzero(view.success & view.established & view.judged)
    if len(rows) == 0:
        return []
    person = view.person[rows]
    hour = ((cols.ts[rows] % 86400) // 3600).astype(np.int64)
    hist = base.hours[person]
    total = hist.sum(axis=1)
    near = (
        hist[np.arange(len(rows)), hour]
        + hist[np.arange(len(rows)), (hour - 1) % 24]
        + hist[np.arange(len(rows)), (hour + 1) % 24]
    )
    share = near / np.maximum(total, 1)
    flagged = rows[(total >= 50) & (share < config.unusual_hour_max_share)]
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for row in flagged.tolist():
        groups[(cols.actor[row], _day(cols.ts[row]))].append(row)
    hits = []
    for (actor, day), members in groups.items():
        row = members[0]
        h = int((cols.ts[row] % 86400) // 3600)
        p = int(view.person[row])
        busiest = int(np.argmax(base.hours[p]))
        share_pct = (
            100.0
            * float(base.hours[p][[(h - 1) % 24, h, (h + 1) % 24]].sum())
            / max(int(base.hours[p].sum()), 1)
        )
        hits.append(
            AnomalyHit(
                AnomalyRule.UNUSUAL_HOUR,
                Severity.LOW,
                0.5,
                f"Sign-in at an unusual hour for {actor} ({h:02d}:00 UTC)",
                f"{actor} signed in at {_when(cols.ts[row])}; only {share_pct:.1f}% of their {int(base.hours[p].sum())} "
                f"earlier sign-ins fall within an hour of {h:02d}:00 UTC (busiest hour {busiest:02d}:00).",
                f"anomaly:hour:{actor}:{day}",
                float(cols.ts[row]),
                float(cols.ts[members[-1]]),
                tuple(int(cols.event_id[m]) for m in members[:MAX_EVIDENCE]),
                (actor,),
                tuple(sorted({cols.ip[m] for m in members if cols.ip[m]}))[:10],
                cols.provider[row],
                {"hour_utc": h, "share_percent": round(share_pct, 2), "busiest_hour_utc": busiest},
            )
        )
    return hits


# ---------------------------------------------------------------- cross-account


def password_spray(cols: SignInColumns, config: AnomalyConfig) -> list[AnomalyHit]:
    """One source IP failing against many different accounts inside the window."""
    window = config.spray_window_minutes * 60
    failure, success = Outcome.FAILURE.value, Outcome.SUCCESS.value
    # only an IP with enough failures can be a source: count them first (whole-array), then
    # visit the rows of those IPs alone, in row order as before
    failed = Counter(ip for ip in cols.ip[cols.outcome == failure].tolist() if ip)
    sources = {ip for ip, n in failed.items() if n >= config.spray_min_accounts}
    if not sources:
        return []
    by_ip: dict[str, list[int]] = defaultdict(list)
    candidates = np.flatnonzero((cols.outcome == failure) | (cols.outcome == success))
    for row, ip in zip(candidates.tolist(), cols.ip[candidates].tolist(), strict=True):
        if ip in sources:
            by_ip[ip].append(row)
    hits = []
    for ip, rows in by_ip.items():
        failures = [r for r in rows if cols.outcome[r] == failure]
        if len(failures) < config.spray_min_accounts:
            continue
        failures.sort(key=lambda r: cols.ts[r])
        best: tuple[int, int] | None = None
        start = 0
        for end in range(len(failures)):
            while cols.ts[failures[end]] - cols.ts[failures[start]] > window:
                start += 1
            window_accounts = {cols.actor[r] for r in failures[start : end + 1]}
            if len(window_accounts) >= config.spray_min_accounts and (
                best is None or end - start > best[1] - best[0]
            ):
                best = (start, end)
        if best is None:
            continue
        members = failures[best[0] : best[1] + 1]
        first_ts, last_ts = cols.ts[members[0]], cols.ts[members[-1]]
        successes = [
            r for r in rows if cols.outcome[r] == success and first_ts <= cols.ts[r] <= last_ts + window
        ]
        ratio = len(members) / max(
            len(members)
            + len([r for r in rows if first_ts <= cols.ts[r] <= last_ts and cols.outcome[r] == success]),
            1,
        )
        if ratio < config.spray_min_failure_ratio:
            continue  # a shared office egress with many good sign-ins is not a spray source
        accounts = sorted({cols.actor[r] for r in members})
        won = sorted({cols.actor[r] for r in successes})
        description = (
            f"{len(members)} failed sign-ins against {len(accounts)} different accounts from {ip} "
            f"({cols.network[members[0]] or 'unknown network'}, {cols.country[members[0]] or '??'}) within "
            f"{_duration(last_ts - first_ts)} ({_when(first_ts)} – {_when(last_ts)}); failure ratio {ratio:.0%}."
            + (f" Then successful sign-in(s) from the same IP for {', '.join(won)}." if won else "")
        )
        hits.append(
            AnomalyHit(
                AnomalyRule.PASSWORD_SPRAY,
                Severity.HIGH if won or len(accounts) >= 2 * config.spray_min_accounts else Severity.MEDIUM,
                0.9,
                f"Password spray from {ip} against {len(accounts)} accounts"
                + (f"; {len(won)} succeeded" if won else ""),
                description,
                f"anomaly:spray:{ip}:{_day(first_ts)}",
                float(first_ts),
                float(max(last_ts, *(cols.ts[r] for r in successes))) if successes else float(last_ts),
                tuple(int(cols.event_id[r]) for r in (members + successes)[:500]),
                tuple(won + [a for a in accounts if a not in won])[:100],
                (ip,),
                cols.provider[members[0]],
                {
                    "accounts": len(accounts),
                    "failures": len(members),
                    "failure_ratio": round(ratio, 3),
                    "succeeded_for": won,
                },
            )
        )
    return hits


def mfa_fatigue(cols: SignInColumns, config: AnomalyConfig) -> list[AnomalyHit]:
    """Many denied MFA prompts for one person in a short window (push bombing)."""
    window = config.mfa_window_minutes * 60
    denied_by_actor: dict[str, list[int]] = defaultdict(list)
    success_by_actor: dict[str, list[int]] = defaultdict(list)
    # denials are few: find them whole-array, and the successes of the people denied enough only
    denied = np.flatnonzero(cols.outcome == Outcome.MFA_DENIED.value)
    for row, actor in zip(denied.tolist(), cols.actor[denied].tolist(), strict=True):
        denied_by_actor[actor].append(row)
    targets = {actor for actor, rows in denied_by_actor.items() if len(rows) >= config.mfa_min_denials}
    if not targets:
        return []
    succeeded = np.flatnonzero(cols.outcome == Outcome.SUCCESS.value)
    for row, actor in zip(succeeded.tolist(), cols.actor[succeeded].tolist(), strict=True):
        if actor in targets:
            success_by_actor[actor].append(row)
    hits = []
    for actor, rows in denied_by_actor.items():
        if len(rows) < config.mfa_min_denials:
            continue
        rows.sort(key=lambda r: cols.ts[r])
        start, best = 0, None
        for end in range(len(rows)):
            while cols.ts[rows[end]] - cols.ts[rows[start]] > window:
                start += 1
            if end - start + 1 >= config.mfa_min_denials and (
                best is None or end - start > best[1] - best[0]
            ):
                best = (start, end)
        if best is None:
            continue
        members = rows[best[0] : best[1] + 1]
        first_ts, last_ts = cols.ts[members[0]], cols.ts[members[-1]]
        accepted = [r for r in success_by_actor.get(actor, []) if last_ts <= cols.ts[r] <= last_ts + 1800]
        ips = sorted({cols.ip[r] for r in members if cols.ip[r]})
        description = (
            f"{len(members)} MFA prompts denied or failed for {actor} within {_duration(last_ts - first_ts)} "
            f"({_when(first_ts)} – {_when(last_ts)}) from {', '.join(ips) or 'unknown IPs'}"
            + (
                f"; then a successful sign-in at {_when(cols.ts[accepted[0]])} — the user may have accepted a prompt"
                if accepted
                else ""
            )
            + "."
        )
        hits.append(
            AnomalyHit(
                AnomalyRule.MFA_FATIGUE,
                Severity.HIGH,
                0.9 if accepted else 0.8,
                f"MFA fatigue against {actor}: {len(members)} prompts in {_duration(last_ts - first_ts)}"
                + (" then accepted" if accepted else ""),
                description,
                f"anomaly:mfa_fatigue:{actor}:{_day(first_ts)}",
                float(first_ts),
                float(cols.ts[accepted[0]]) if accepted else float(last_ts),
                tuple(int(cols.event_id[r]) for r in members + accepted[:1]),
                (actor,),
                tuple(ips[:10]),
                cols.provider[members[0]],
                {"denials": len(members), "accepted": bool(accepted)},
            )
        )
    return hits


# ---------------------------------------------------------------- volumes


def volume_spikes(
    activities: Sequence[Activity],
    base: BaselineSet,
    config: AnomalyConfig,
    day_counts: dict[tuple[str, str, int], int] | None = None,
) -> list[AnomalyHit]:
    """Daily downloads / shares / deletes far above the person's own history and their peers'.

    `day_counts` may carry the full day's counts (when earlier batches already saw part of it);
    otherwise the batch's own activity is the day's count.
    """
    grouped: dict[tuple[str, str, int], list[Activity]] = defaultdict(list)
    for activity in activities:
        grouped[(activity.actor, activity.kind.value, int(activity.ts // 86400))].append(activity)
    hits = []
    for (actor, kind, day), items in grouped.items():
        count = (day_counts or {}).get((actor, kind, day), len(items))
        if count < config.volume_min_count:
            continue
        stats = base.volumes[kind]
        code = base.people.codes.get(actor, -1)
        mean = float(stats.mean[code]) if 0 <= code < len(stats.mean) else 0.0
        std = float(stats.std[code]) if 0 <= code < len(stats.std) else 0.0
        top = float(stats.maximum[code]) if 0 <= code < len(stats.maximum) else 0.0
        own_limit = mean + config.volume_user_sigmas * max(std, 2.0)
        peer_limit = max(stats.peer_p99 * config.volume_peer_factor, float(config.volume_min_count))
        if count <= own_limit or count <= peer_limit or count <= top * 1.5:
            continue
        established = 0 <= code < len(base.active_days) and base.active_days[code] >= config.min_baseline_days
        ratio = count / max(stats.peer_p99, 1.0)
        severity = Severity.HIGH if ratio >= 10 and established else Severity.MEDIUM
        if not established:
            severity = Severity.LOW
        verb = {"download": "downloaded", "share": "shared", "delete": "deleted"}[kind]
        description = (
            f"{count:,} files {verb} by {actor} on {_day(day * 86400)}; their daily average is {mean:.1f} "
            f"(σ {std:.1f}, busiest day {top:.0f}) and peers' 99th percentile is {stats.peer_p99:.0f} — "
            f"{ratio:.0f}× the peer level."
            + ("" if established else " Cold start: little history for this person.")
        )
        items.sort(key=lambda a: a.ts)
        hits.append(
            AnomalyHit(
                AnomalyRule.VOLUME_SPIKE,
                severity,
                0.85 if established else COLD_START_CONFIDENCE,
                f"Mass {kind}: {count:,} files {verb} by {actor} in a day",
                description,
                f"anomaly:volume:{kind}:{actor}:{day}",
                float(items[0].ts),
                float(items[-1].ts),
                tuple(a.event_id for a in items[:500]),
                (actor,),
                (),
                items[0].provider,
                {
                    "kind": kind,
                    "count": count,
                    "user_mean": round(mean, 2),
                    "user_std": round(std, 2),
                    "user_max": top,
                    "peer_p50": stats.peer_p50,
                    "peer_p99": stats.peer_p99,
                    "files": sorted({a.target for a in items if a.target})[:50],
                },
            )
        )
    return hits
