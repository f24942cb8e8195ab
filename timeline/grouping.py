"""Which findings belong together: a pure, explainable decision over grouping keys and time.

A finding joins a group when it shares a key (person, account, IP, file, app) with it and starts
no later than ``window`` after the last finding of the group that had that key; each join moves
that key's window on, so it slides with the activity about each person, IP or app. A finding that bridges several groups merges them when that surprises nobody —
groups opened in this run, or incidents nobody has touched yet (status ``new``, no assignee, made by
the system) — and otherwise joins the best match and records the other relation for an analyst to
merge. Findings that cannot open an incident (posture, informational) only ever join one.

Every decision is kept as a reason: ``joined: same person alice@corp.example within 2 h 5 min of
finding #12``.

An analyst's split teaches it (:class:`Lesson`): findings of the rules split off are not joined
by that key to a group holding only the rules left behind (nor the other way round), and the
finding's reason says which split kept them apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from core.clock import isoformat
from timeline.entities import KEY_WORDS, key_kind


@dataclass(frozen=True)
class FindingFacts:
    """The part of a Finding that grouping reads."""

    id: int
    severity: str
    first_seen: datetime
    last_seen: datetime
    keys: tuple[str, ...]
    labels: Mapping[str, str]
    can_open: bool = True
    # What it names too many of to group by (a spray's targets); overlapping sets still link.
    broad: tuple[str, ...] = ()
    rule: str = ""
    tenant: str = ""  # its organisation (`core.findings.tenant_of`): nothing joins across tenants


@dataclass(frozen=True)
class Lesson:
    """From a split: by `key`, findings of `apart` and findings of `kept` are not one incident."""

    key: str
    apart: frozenset[str]
    kept: frozenset[str]
    text: str  # "split from incident #4 by principal:erin"

    def forbids(self, rule: str, group_rules: set[str]) -> bool:
        if not group_rules or not rule:
            return False
        return (rule in self.apart and group_rules <= self.kept) or (
            rule in self.kept and group_rules <= self.apart
        )


@dataclass(frozen=True)
class OpenIncident:
    """An incident later findings may still join."""

    id: int
    keys: tuple[str, ...]
    first_seen: datetime
    last_seen: datetime
    # Untouched by humans (new, unassigned, system-made): may be merged automatically.
    auto_mergeable: bool
    rules: tuple[str, ...] = ()  # its findings' rule ids (read when a split taught a lesson)
    tenant: str = ""  # its findings' organisation


@dataclass
class Group:
    """Findings decided to be one incident (an existing one when `incident_id` is set)."""

    ref: int
    incident_id: int | None
    first_seen: datetime
    last_seen: datetime
    auto_mergeable: bool
    keys: dict[str, str] = field(default_factory=dict)
    finding_ids: list[int] = field(default_factory=list)
    reasons: list[dict[str, Any]] = field(default_factory=list)
    absorbed_incident_ids: list[int] = field(default_factory=list)
    merged_into: Group | None = None
    rules: set[str] = field(default_factory=set)
    tenant: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.finding_ids or self.absorbed_incident_ids)


@dataclass(frozen=True)
class GroupingPlan:
    groups: list[Group]  # surviving groups with new findings or absorbed incidents
    ungrouped: list[int]  # findings that could not open an incident and matched none


@dataclass
class _KeyUse:
    group: Group
    finding_id: int | None  # None: the key came from an existing incident
    at: datetime
    size: int = 0  # for a broad set: how many it named


BROAD_PREFIX = "broad:"
TARGETS_KEY = "targets"
# Two broad sets are one campaign when they share at least this many members and this share of
# the smaller set ("sprays from three IPs against the same 17 accounts").
MIN_SHARED_TARGETS = 3
MIN_TARGET_OVERLAP = 0.5
_BROAD_HISTORY = 50


def _root(group: Group) -> Group:
    while group.merged_into is not None:
        group = group.merged_into
    return group


def describe_gap(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def describe_keys(keys: Iterable[str], labels: Mapping[str, str]) -> str:
    parts = [
        "targets"
        if k == TARGETS_KEY
        else f"{KEY_WORDS.get(key_kind(k), key_kind(k))} {labels.get(k, k.partition(':')[2])}"
        for k in keys
    ]
    if len(parts) > 3:
        parts = parts[:3] + [f"{len(parts) - 3} more"]
    return " and ".join(parts) if len(parts) < 3 else ", ".join(parts[:-1]) + " and " + parts[-1]


class Grouper:
    """Holds the key index while findings are fed in time order; `plan()` returns the outcome."""

    def __init__(
        self,
        window: timedelta,
        open_incidents: Iterable[OpenIncident] = (),
        lessons: Iterable[Lesson] = (),
    ) -> None:
        self.window = window
        self._lessons: dict[str, list[Lesson]] = {}
        for lesson in lessons:
            self._lessons.setdefault(lesson.key, []).append(lesson)
        self._kept_apart: dict[int, list[str]] = {}
        self._groups: list[Group] = []
        self._index: dict[str, _KeyUse] = {}
        self._broad: dict[str, list[_KeyUse]] = {}
        self._ungrouped: list[int] = []
        for incident in sorted(open_incidents, key=lambda i: (i.last_seen, i.id)):
            group = self._new_group(
                incident.id, incident.first_seen, incident.last_seen, incident.auto_mergeable
            )
            group.rules.update(incident.rules)
            group.tenant = incident.tenant
            broad = [k.removeprefix(BROAD_PREFIX) for k in incident.keys if k.startswith(BROAD_PREFIX)]
            for key in incident.keys:
                if key.startswith(BROAD_PREFIX):
                    continue
                group.keys[key] = key.partition(":")[2]
                self._index[key] = _KeyUse(group, None, incident.last_seen)
            self._remember_broad(broad, _KeyUse(group, None, incident.last_seen, len(broad)))

    def _new_group(self, incident_id: int | None, first: datetime, last: datetime, mergeable: bool) -> Group:
        group = Group(len(self._groups), incident_id, first, last, mergeable)
        self._groups.append(group)
        return group

    def _in_window(self, group: Group, use: _KeyUse, finding: FindingFacts) -> bool:
        """Within the window of the last finding that shared this key (not of any finding in the
        group), so an incident does not keep growing through one busy key after another."""
        return (
            finding.first_seen <= use.at + self.window and finding.last_seen >= group.first_seen - self.window
        )

    def _candidates(self, finding: FindingFacts) -> dict[int, tuple[Group, list[tuple[str, _KeyUse]]]]:
        found: dict[int, tuple[Group, list[tuple[str, _KeyUse]]]] = {}
        for key in finding.keys:
            use = self._index.get(key)
            if use is None:
                continue
            group = _root(use.group)
            if group.tenant != finding.tenant or not self._in_window(group, use, finding):
                continue
            taught = next(
                (t for t in self._lessons.get(key, ()) if t.forbids(finding.rule, group.rules)), None
            )
            if taught is not None:
                what = describe_keys([key], finding.labels)
                self._kept_apart.setdefault(finding.id, []).append(f"not joined by {what}: {taught.text}")
                continue
            found.setdefault(group.ref, (group, []))[1].append((key, use))
        for use in self._overlapping(finding):
            if _root(use.group).tenant != finding.tenant:
                continue
            found.setdefault(_root(use.group).ref, (_root(use.group), []))[1].append((TARGETS_KEY, use))
        return found

    def _overlapping(self, finding: FindingFacts) -> list[_KeyUse]:
        """Earlier broad sets in the window that share most of this finding's broad set."""
        if len(finding.broad) < MIN_SHARED_TARGETS:
            return []
        shared: dict[int, int] = {}
        uses: dict[int, _KeyUse] = {}
        for key in finding.broad:
            for use in self._broad.get(key, ()):
                if finding.first_seen > use.at + self.window:
                    continue
                shared[id(use)] = shared.get(id(use), 0) + 1
                uses[id(use)] = use
        return [
            uses[u]
            for u, n in shared.items()
            if n >= MIN_SHARED_TARGETS
            and n / min(len(finding.broad), uses[u].size or 1) >= MIN_TARGET_OVERLAP
        ]

    def _shared_targets(self, finding: FindingFacts, group: Group) -> int:
        """How many of the finding's broad set the group's earlier findings named too."""
        return sum(
            1
            for key in finding.broad
            if any(_root(u.group) is _root(group) for u in self._broad.get(key, ()))
        )

    def _remember_broad(self, broad: Iterable[str], use: _KeyUse) -> None:
        for key in broad:
            history = self._broad.setdefault(key, [])
            history.append(use)
            if len(history) > _BROAD_HISTORY:
                del history[0]

    def add(self, finding: FindingFacts) -> None:
        candidates = self._candidates(finding)
        if not candidates:
            if not finding.can_open:
                self._ungrouped.append(finding.id)
                return
            group = self._new_group(None, finding.first_seen, finding.last_seen, True)
            group.tenant = finding.tenant
            self._record(group, finding, "opened", [], None, None)
        else:
            # Prefer an existing incident (ids stay stable), then the most shared keys, then the oldest.
            ranked = sorted(
                candidates.values(),
                key=lambda c: (c[0].incident_id is None, -len(c[1]), c[0].incident_id or 0, c[0].ref),
            )
            group, shared = ranked[0]
            key, use = shared[0]
            gap = (finding.first_seen - use.at).total_seconds()
            self._record(group, finding, "joined", [k for k, _ in shared], use, gap)
            for other, other_shared in ranked[1:]:
                self._bridge(group, other, finding, [k for k, _ in other_shared])
        self._extend(group, finding)

    def _bridge(self, group: Group, other: Group, finding: FindingFacts, keys: list[str]) -> None:
        what = describe_keys(keys, finding.labels)
        other_name = f"incident #{other.incident_id}" if other.incident_id else "another new group"
        if group.auto_mergeable and other.auto_mergeable:
            other.merged_into = group
            group.finding_ids.extend(other.finding_ids)
            group.reasons.extend(other.reasons)
            group.keys.update(other.keys)
            group.rules.update(other.rules)
            group.first_seen = min(group.first_seen, other.first_seen)
            group.last_seen = max(group.last_seen, other.last_seen)
            if other.incident_id is not None:
                group.absorbed_incident_ids.append(other.incident_id)
            group.absorbed_incident_ids.extend(other.absorbed_incident_ids)
            group.reasons.append(
                self._reason(
                    finding, "merged", keys, f"merged {other_name}: finding #{finding.id} shares {what}"
                )
            )
            return
        group.reasons.append(
            self._reason(
                finding,
                "related",
                keys,
                f"also related to {other_name} ({what}); not merged because it is already being worked on",
            )
        )

    def _record(
        self,
        group: Group,
        finding: FindingFacts,
        decision: str,
        keys: list[str],
        use: _KeyUse | None,
        gap: float | None,
    ) -> None:
        if decision == "opened":
            about = describe_keys(finding.keys, finding.labels) if finding.keys else "no shared entity"
            text = f"opened: finding #{finding.id} ({finding.severity}) about {about}"
        else:
            assert use is not None and gap is not None
            anchor = (
                f"finding #{use.finding_id}"
                if use.finding_id is not None
                else f"incident #{use.group.incident_id}'s last activity"
            )
            named = [k for k in keys if k != TARGETS_KEY]
            parts = [f"same {describe_keys(named, finding.labels)}"] if named else []
            if TARGETS_KEY in keys:
                shared = self._shared_targets(finding, group)
                parts.append(
                    f"{shared} of its {len(finding.broad)} targets" if shared else "mostly the same targets"
                )
            when = f"within {describe_gap(gap)} of" if gap > 0 else "overlapping"
            text = f"joined: {' and '.join(parts)} {when} {anchor}"
        apart = self._kept_apart.get(finding.id)
        if apart:
            text += "; " + "; ".join(dict.fromkeys(apart))
        reason = self._reason(finding, decision, keys, text)
        if apart:
            reason["kept_apart"] = list(dict.fromkeys(apart))
        if use is not None:
            reason["with_finding_id"] = use.finding_id
            reason["gap_seconds"] = int(max(0.0, gap or 0.0))
        group.reasons.append(reason)
        group.finding_ids.append(finding.id)

    @staticmethod
    def _reason(finding: FindingFacts, decision: str, keys: list[str], text: str) -> dict[str, Any]:
        return {
            "finding_id": finding.id,
            "decision": decision,
            "keys": keys,
            "at": isoformat(finding.first_seen),
            "text": text,
        }

    def _extend(self, group: Group, finding: FindingFacts) -> None:
        if finding.rule:
            group.rules.add(finding.rule)
        group.first_seen = min(group.first_seen, finding.first_seen)
        group.last_seen = max(group.last_seen, finding.last_seen)
        for key in finding.keys:
            group.keys.setdefault(key, finding.labels.get(key, key))
            self._index[key] = _KeyUse(group, finding.id, finding.last_seen)
        if finding.broad:
            self._remember_broad(
                finding.broad, _KeyUse(group, finding.id, finding.last_seen, len(finding.broad))
            )

    def plan(self) -> GroupingPlan:
        survivors = [g for g in self._groups if g.merged_into is None and g.changed]
        return GroupingPlan(survivors, list(self._ungrouped))


def group_findings(
    findings: Sequence[FindingFacts],
    open_incidents: Iterable[OpenIncident],
    window: timedelta,
    lessons: Iterable[Lesson] = (),
) -> GroupingPlan:
    """Group `findings` (any order) with each other and with `open_incidents`, heeding `lessons`."""
    grouper = Grouper(window, open_incidents, lessons)
    for finding in sorted(findings, key=lambda f: (f.first_seen, f.id)):
        grouper.add(finding)
    return grouper.plan()
