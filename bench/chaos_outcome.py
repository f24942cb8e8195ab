"""What a scenario run leaves in the database, in a form two runs can be compared by.

Row ids differ between runs, so a run's outcome is described by provider identities: events by
``(provider, stream, provider_event_id)``; findings by rule and the provider ids of their
evidence; incidents by the findings they group. A chaos run passes when its outcome equals a
clean run's and every event the ground truth names is stored exactly once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

EventKey = tuple[str, str, str]
FindingKey = tuple[str, frozenset[EventKey]]


@dataclass(frozen=True)
class Outcome:
    events: frozenset[EventKey]
    duplicate_events: int
    findings: frozenset[FindingKey]
    incidents: frozenset[frozenset[FindingKey]]
    quarantined: int

    def summary(self) -> str:
        return (
            f"{len(self.events):,} events ({self.duplicate_events} duplicated), {len(self.findings):,} findings, "
            f"{len(self.incidents):,} incidents, {self.quarantined} quarantined records"
        )


def _rows(db: Any, sql: str) -> list[Any]:
    with db.session(readonly=True) as session:
        return list(session.execute(text(sql)).all())


def _table_exists(db: Any, table: str) -> bool:
    from sqlalchemy import inspect

    return inspect(db.engine).has_table(table)


def snapshot(db: Any) -> Outcome:
    """The outcome stored in `db` right now."""
    by_id: dict[int, EventKey] = {}
    counts: Counter[EventKey] = Counter()
    for row in _rows(db, "SELECT id, provider, stream, provider_event_id FROM event"):
        key = (row[1], row[2], row[3])
        by_id[row[0]] = key
        counts[key] += 1
    findings: dict[int, FindingKey] = {}
    members: dict[int, set[FindingKey]] = {}
    for row in _rows(db, "SELECT id, rule_id, evidence_event_ids, incident_id FROM finding"):
        evidence = row[2] if isinstance(row[2], list) else _json(row[2])
        finding_key: FindingKey = (row[1], frozenset(by_id[i] for i in evidence if i in by_id))
        findings[row[0]] = finding_key
        if row[3] is not None:
            members.setdefault(row[3], set()).add(finding_key)
    quarantined = (
        _rows(db, "SELECT count(*) FROM quarantinedrecord")[0][0]
        if _table_exists(db, "quarantinedrecord")
        else 0
    )
    return Outcome(
        events=frozenset(counts),
        duplicate_events=sum(n - 1 for n in counts.values()),
        findings=frozenset(findings.values()),
        incidents=frozenset(frozenset(m) for m in members.values()),
        quarantined=int(quarantined),
    )


def _json(value: Any) -> list[int]:
    import orjson

    return list(orjson.loads(value)) if value else []


def truth_event_keys(truth: dict[str, Any]) -> set[EventKey]:
    """Every event the ground truth names (story steps), as event keys."""
    keys: set[EventKey] = set()
    for story in truth.get("stories", []):
        for step in story.get("steps", []):
            for event in step.get("events", []):
                keys.add((event["provider"], event["stream"], str(event["id"])))
    return keys


def simulator_event_keys(streams: Iterable[tuple[str, Iterable[str]]]) -> frozenset[EventKey]:
    """Every event a simulator serves, from (``"provider:stream"``, provider ids) pairs."""
    keys: set[EventKey] = set()
    for stream, ids in streams:
        provider, _, name = stream.partition(":")
        keys.update((provider, name, str(i)) for i in ids)
    return frozenset(keys)


def differences(
    expected: Outcome,
    actual: Outcome,
    truth_keys: Iterable[EventKey] = (),
    served: frozenset[EventKey] | None = None,
) -> list[str]:
    """Plain sentences for every way `actual` differs from `expected` (empty: the same).

    `served`, when given, is every event the simulator serves: the stored events must be exactly
    those (the ground truth), not merely those of the clean run.
    """
    problems = []
    if served is not None:
        missing = served - actual.events
        foreign = actual.events - served
        if missing:
            problems.append(
                f"{len(missing)} of the simulator's {len(served):,} events not stored, e.g. {sorted(missing)[:3]}"
            )
        if foreign:
            problems.append(
                f"{len(foreign)} stored events the simulator never served, e.g. {sorted(foreign)[:3]}"
            )
    lost = expected.events - actual.events
    extra = actual.events - expected.events
    if lost:
        problems.append(f"{len(lost)} events lost, e.g. {sorted(lost)[:3]}")
    if extra:
        problems.append(f"{len(extra)} events that the clean run does not have, e.g. {sorted(extra)[:3]}")
    if actual.duplicate_events:
        problems.append(f"{actual.duplicate_events} events stored more than once")
    missing_truth = set(truth_keys) - actual.events
    if missing_truth:
        problems.append(
            f"{len(missing_truth)} ground-truth events not stored, e.g. {sorted(missing_truth)[:3]}"
        )
    if expected.findings != actual.findings:
        problems.append(
            f"findings differ: {len(expected.findings - actual.findings)} missing, "
            f"{len(actual.findings - expected.findings)} unexpected, e.g. "
            f"{sorted((r for r, _ in actual.findings ^ expected.findings))[:5]}"
        )
    if expected.incidents != actual.incidents:
        problems.append(
            f"incidents differ: clean run {len(expected.incidents)}, this run {len(actual.incidents)} "
            f"({len(expected.incidents - actual.incidents)} missing, {len(actual.incidents - expected.incidents)} unexpected); "
            f"missing e.g. {_shown(expected.incidents - actual.incidents)}, unexpected e.g. {_shown(actual.incidents - expected.incidents)}"
        )
    return problems


def _shown(incidents: frozenset[frozenset[FindingKey]], limit: int = 2) -> list[str]:
    """A few incidents by what they group: rule ids and how many evidence events each finding has."""
    shown = []
    for incident in sorted(incidents, key=len)[:limit]:
        shown.append(" + ".join(sorted(f"{rule}({len(evidence)})" for rule, evidence in incident)))
    return shown
