"""What should not open an incident: the low end, mass changes, and drifts inside declared changes.

Pure decisions, each with its reason, read by the build (a finding that "cannot open" only ever
joins an incident that something stronger opened) and by the daily digest (which reports what
joined nothing, see :mod:`timeline.digest`):

* **low signal** — low and informational findings, and posture findings (standing configuration,
  shown by posture), never open an incident on their own;
* **mass change** — many different people doing the same benign-looking thing in a short time
  (a password-manager rollout: 300 people add an MFA method in an afternoon) is scored against
  the population: one grouped "mass change" line in the digest, not hundreds of incidents. Not
  for high/critical findings, not when most members share one source IP that is not common
  infrastructure (that is a campaign from one place), and not for a member who shows another
  signal (another finding about them, or an open incident they are in) — those are judged alone;
* **declared change** — a finding whose evidence events were all done by a change window's
  declared actor inside that window is recorded with the change reference and opens nothing; the
  same drift outside the window, or by anyone else, still does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.models.enums import FindingKind, Severity
from timeline.grouping import describe_gap

CANNOT_OPEN_KINDS = frozenset({FindingKind.POSTURE.value})
# Low-signal findings: reported in the daily digest unless they join an incident.
LOW_SIGNAL_SEVERITIES = frozenset({Severity.INFORMATIONAL.value, Severity.LOW.value})
# A mass change never hides these.
MASS_MAX_SEVERITIES = frozenset({Severity.INFORMATIONAL.value, Severity.LOW.value, Severity.MEDIUM.value})
PERSON_PREFIXES = ("person:", "email:", "account:")


@dataclass(frozen=True)
class PopulationRules:
    """When the same rule about many people is a mass change."""

    window: timedelta = timedelta(hours=6)
    min_people: int = 10
    # Above this share of members coming from one (uncommon) IP it is a campaign, not a rollout.
    max_shared_source: float = 0.5


@dataclass(frozen=True)
class PopulationFinding:
    """What population scoring reads of one finding."""

    id: int
    rule_id: str
    severity: str
    first_seen: datetime
    people: tuple[str, ...]  # person keys
    ips: tuple[str, ...] = ()  # ip keys that are not common infrastructure


@dataclass(frozen=True)
class MassChange:
    rule_id: str
    people: int
    first_seen: datetime
    last_seen: datetime
    finding_ids: tuple[int, ...]

    @property
    def why(self) -> str:
        span = describe_gap((self.last_seen - self.first_seen).total_seconds())
        return (
            f"mass change: {self.people} people did the same ({self.rule_id}) within {span}; "
            "scored against the population, not one incident each"
        )


def mass_changes(
    findings: Iterable[PopulationFinding], rules: PopulationRules = PopulationRules()
) -> list[MassChange]:
    """Clusters of one rule's findings about at least `min_people` people within `window`."""
    by_rule: dict[str, list[PopulationFinding]] = {}
    for finding in findings:
        if finding.severity in MASS_MAX_SEVERITIES and finding.people:
            by_rule.setdefault(finding.rule_id, []).append(finding)
    found: list[MassChange] = []
    for rule_id, members in sorted(by_rule.items()):
        members.sort(key=lambda f: (f.first_seen, f.id))
        marked = [False] * len(members)
        people: Counter[str] = Counter()
        end = 0
        for start, first in enumerate(members):
            while end < len(members) and members[end].first_seen <= first.first_seen + rules.window:
                people.update(set(members[end].people))
                end += 1
            if len(people) >= rules.min_people:
                for index in range(start, end):
                    marked[index] = True
            people.subtract(set(first.people))
            people += Counter()  # drop zero counts
        found.extend(_clusters(rule_id, members, marked, rules))
    return found


def _clusters(
    rule_id: str, members: Sequence[PopulationFinding], marked: Sequence[bool], rules: PopulationRules
) -> list[MassChange]:
    clusters: list[list[PopulationFinding]] = []
    for finding, is_member in zip(members, marked, strict=True):
        if not is_member:
            continue
        if clusters and finding.first_seen - clusters[-1][-1].first_seen <= rules.window:
            clusters[-1].append(finding)
        else:
            clusters.append([finding])
    out = []
    for cluster in clusters:
        sources = Counter(ip for f in cluster for ip in set(f.ips))
        if sources and sources.most_common(1)[0][1] > rules.max_shared_source * len(cluster):
            continue  # most of them from one uncommon IP: a campaign, judged finding by finding
        out.append(
            MassChange(
                rule_id,
                len({p for f in cluster for p in f.people}),
                cluster[0].first_seen,
                cluster[-1].first_seen,
                tuple(f.id for f in cluster),
            )
        )
    return out


def with_other_signals(
    change: MassChange,
    findings: Iterable[PopulationFinding],
    incident_keys: Iterable[str],
    window: timedelta,
) -> set[str]:
    """The members of `change` who show another signal near it: another non-informational
    finding (of another rule) about them, or an open incident they are part of."""
    members = set(change.finding_ids)
    people: dict[str, None] = {}
    for finding in findings:
        if finding.id in members:
            people.update(dict.fromkeys(finding.people))
    busy = set(incident_keys) & set(people)
    for finding in findings:
        if finding.id in members or finding.rule_id == change.rule_id:
            continue
        if finding.severity == Severity.INFORMATIONAL.value:
            continue
        if change.first_seen - window <= finding.first_seen <= change.last_seen + window:
            busy.update(p for p in finding.people if p in people)
    return busy


# ----------------------------------------------------------------------------- change windows


@dataclass(frozen=True)
class DeclaredChange:
    id: int
    reference: str
    actor: str
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class ActedEvent:
    actor: str | None
    occurred_at: datetime


def covering_change(events: Sequence[ActedEvent], changes: Sequence[DeclaredChange]) -> DeclaredChange | None:
    """The declared change that covers every one of `events` (its actor, inside its window)."""
    if not events:
        return None
    for change in changes:
        actor = change.actor.strip().lower()
        if all(
            (event.actor or "").strip().lower() == actor
            and change.starts_at <= event.occurred_at <= change.ends_at
            for event in events
        ):
            return change
    return None


def change_note(change: DeclaredChange) -> dict[str, object]:
    return {
        "change_window_id": change.id,
        "reference": change.reference,
        "actor": change.actor,
        "why": f"inside declared change {change.reference} by its declared actor {change.actor}",
    }


def low_signal(kind: str, severity: str) -> bool:
    return kind in CANNOT_OPEN_KINDS or severity in LOW_SIGNAL_SEVERITIES


def person_keys(keys: Iterable[str]) -> tuple[str, ...]:
    return tuple(k for k in keys if k.startswith(PERSON_PREFIXES))


def ip_keys(keys: Iterable[str], common: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(k for k in keys if k.startswith("ip:") and k not in common)
