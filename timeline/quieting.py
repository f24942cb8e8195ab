"""Read what :mod:`timeline.noise` decides on: findings of a mass change, findings inside declared changes.

`held_back` is asked by the build (these findings cannot open an incident) and by the daily
digest (which says why each line is there). Cheap when nothing applies: one indexed query for
the rules that recur, one for change windows overlapping the findings' time range.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlmodel import Session, col

from core.models.enums import FindingStatus
from core.models.finding import Finding
from core.models.noise import ChangeWindow
from timeline.assembly import BuildContext
from timeline.evidence import load_events
from timeline.noise import (
    MASS_MAX_SEVERITIES,
    ActedEvent,
    DeclaredChange,
    PopulationFinding,
    PopulationRules,
    change_note,
    covering_change,
    ip_keys,
    mass_changes,
    person_keys,
    with_other_signals,
)

MIN_RULE_FINDINGS = 2


def held_back(
    session: Session, ctx: BuildContext, rows: Sequence[Any], incident_keys: Iterable[str] = ()
) -> dict[int, dict[str, Any]]:
    """Of `rows` (id, rule_id, severity, first_seen, last_seen, entities, evidence_event_ids),
    those that are part of a mass change or inside a declared change, each with its note."""
    if not rows:
        return {}
    notes: dict[int, dict[str, Any]] = {}
    for finding_id, note in _mass_members(session, ctx, rows, set(incident_keys)).items():
        notes.setdefault(finding_id, {})["mass"] = note
    for finding_id, note in _inside_changes(session, rows).items():
        notes.setdefault(finding_id, {})["change"] = note
    return notes


def _population(ctx: BuildContext, row: Any) -> PopulationFinding:
    keys = ctx.keys_of(row.id, row.entities).keys
    return PopulationFinding(
        row.id, row.rule_id, row.severity, row.first_seen, person_keys(keys), ip_keys(keys, ctx.common)
    )


def _mass_members(
    session: Session, ctx: BuildContext, rows: Sequence[Any], incident_keys: set[str]
) -> dict[int, dict[str, Any]]:
    rules = PopulationRules(ctx.config.mass_window, ctx.config.mass_min_people)
    counts: dict[str, int] = {}
    for row in rows:
        if row.severity in MASS_MAX_SEVERITIES:
            counts[row.rule_id] = counts.get(row.rule_id, 0) + 1
    recurring = sorted(rule for rule, n in counts.items() if n >= MIN_RULE_FINDINGS)
    if not recurring:
        return {}
    start = min(r.first_seen for r in rows) - rules.window
    end = max(r.first_seen for r in rows) + rules.window
    wanted = {r.id for r in rows}
    # The rule's other findings in the span (already in incidents or digests): a rollout seen
    # over several builds is still one population.
    population = {r.id: _population(ctx, r) for r in rows}
    for row in _findings_in_span(session, ctx, start, end):
        if row.id not in population:
            population[row.id] = _population(ctx, row)
    members: dict[int, dict[str, Any]] = {}
    changes = mass_changes((p for p in population.values() if p.rule_id in recurring), rules)
    for change in changes:
        busy = with_other_signals(change, population.values(), incident_keys, ctx.config.group_window)
        note = {
            "rule_id": change.rule_id,
            "people": change.people,
            "first_seen": change.first_seen.isoformat(),
            "last_seen": change.last_seen.isoformat(),
            "findings": len(change.finding_ids),
            "why": change.why,
        }
        for finding_id in change.finding_ids:
            if finding_id in wanted and not set(population[finding_id].people) & busy:
                members[finding_id] = note
    return members


def _findings_in_span(session: Session, ctx: BuildContext, start: datetime, end: datetime) -> list[Any]:
    """The findings first seen between `start` and `end`; a build asks again for a narrower span
    in a later grouping round, answered from the first read (findings do not change meanwhile)."""
    if ctx.span_rows is not None and ctx.span_rows[0] <= start and end <= ctx.span_rows[1]:
        return [row for row in ctx.span_rows[2] if start <= row.first_seen <= end]
    query = select(
        col(Finding.id),
        col(Finding.rule_id),
        col(Finding.severity),
        col(Finding.first_seen),
        col(Finding.entities),
    ).where(col(Finding.first_seen).between(start, end))
    if not ctx.candidates:
        rows = list(session.execute(query).all())
    else:
        # the candidates were read at the build's start (they may be in an incident since): the
        # rest from SQL, a finding in both is one population member (the caller keys them by id)
        others = query.where(
            or_(col(Finding.incident_id).is_not(None), col(Finding.status) != FindingStatus.OPEN)
        )
        rows = [row for row in ctx.candidates if start <= row.first_seen <= end]
        rows.extend(session.execute(others).all())
    ctx.span_rows = (start, end, rows)
    return rows


def active_changes(session: Session, start: datetime, end: datetime) -> list[DeclaredChange]:
    rows = session.execute(
        select(ChangeWindow).where(
            col(ChangeWindow.cancelled_at).is_(None),
            col(ChangeWindow.starts_at) <= end,
            col(ChangeWindow.ends_at) >= start,
        )
    ).scalars()
    return [DeclaredChange(w.id or 0, w.reference, w.actor, w.starts_at, w.ends_at) for w in rows]


def _inside_changes(session: Session, rows: Sequence[Any]) -> dict[int, dict[str, Any]]:
    changes = active_changes(session, min(r.first_seen for r in rows), max(r.last_seen for r in rows))
    if not changes:
        return {}
    events = {
        e.id: ActedEvent(e.actor, e.occurred_at)
        for e in load_events(session, {int(i) for r in rows for i in (r.evidence_event_ids or [])})
    }
    found: dict[int, dict[str, Any]] = {}
    for row in rows:
        acted = [events[int(i)] for i in row.evidence_event_ids or [] if int(i) in events]
        change = covering_change(acted, changes)
        if change is not None:
            found[row.id] = change_note(change)
    return found
