"""Assemble an incident from its findings: aggregates, finding and evidence entries, priority, SLA.

`refresh_incidents` is what the build step and the lifecycle operations (merge, split) call after
the set of findings of an incident changed. It rewrites only what depends on the findings: the
evidence entries are rebuilt (collapsed) when a finding was added, moved or updated, the finding
entries are upserted, the priority is recomputed and a change of priority is recorded.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, or_, select
from sqlmodel import Session, col

from core.audit import Actor, AuditAction, AuditEntry, record_many
from core.bulk import update_many
from core.clock import as_utc
from core.models.connection import Connection
from core.models.enums import FindingKind, FindingStatus, Priority, TimelineEntryKind
from core.models.event import Event
from core.models.finding import Finding
from core.models.incident import Incident, TimelineEntry
from timeline.config import TimelineConfig
from timeline.entities import (
    ENTITY_FIELDS,
    EntityKeys,
    IdentityIndex,
    keys_for,
    normalise_email,
    normalise_ip,
)
from timeline.entries import entry_row, evidence_row, finding_fields, finding_row, insert_rows
from timeline.evidence import EventFacts, collapse, load_events
from timeline.grouping import BROAD_PREFIX, describe_gap
from timeline.impact import LIFTS_TO_P2, customer_impact
from timeline.prevalence import (
    RECENT,
    PrevalenceRules,
    common_in_findings,
    first_party_apps,
    recent_finding_entities,
    shared_ips,
)
from timeline.priority import FindingSignal, PersonSignal, compute_priority, severity_weight
from timeline.sla import set_due_dates

SYSTEM_ACTOR = Actor.system("timeline")
MAX_ENTITY_VALUES = 500
MAX_GROUPING_REASONS = 2000
MAX_BROAD_KEYS = 200


@dataclass
class BuildContext:
    """What one build (or one lifecycle operation) shares: configuration, identities, time, caches."""

    config: TimelineConfig
    identities: IdentityIndex
    now: datetime
    actor: Actor = SYSTEM_ACTOR
    # Keys too common to group by, with why (see timeline.prevalence); IPs checked against events.
    common: dict[str, str] = field(default_factory=dict)
    checked_ips: set[str] = field(default_factory=set)
    checked_keys: set[str] = field(default_factory=set)
    learned: bool = False
    _keys: dict[int, EntityKeys] = field(default_factory=dict)
    # Findings read for one span of first sightings (see timeline.quieting): findings do not
    # change during one build, so a narrower span later in it is filtered from this read.
    span_rows: tuple[datetime, datetime, list[Any]] | None = None
    # The build's candidates (FINDING_COLUMNS rows of the open findings in no incident, as read at
    # its start): a read of findings by time takes these from memory and only the others from SQL.
    candidates: Sequence[Any] = ()

    def keys_of(self, finding_id: int, entities: Mapping[str, Any] | None) -> EntityKeys:
        """A finding's keys, worked out once per build."""
        found = self._keys.get(finding_id)
        if found is None:
            found = self._keys[finding_id] = keys_for(entities, self.identities)
        return found

    @property
    def rules(self) -> PrevalenceRules:
        return PrevalenceRules(self.config.shared_ip_min_people, self.config.shared_ip_min_span)

    def ignored_keys(self, keys: Iterable[str]) -> dict[str, str]:
        return {k: self.common[k] for k in keys if k in self.common}


def learn_common_keys(
    session: Session, ctx: BuildContext, *, since: datetime, known: Sequence[Any] = ()
) -> None:
    """What recent findings say is common (apps, files, IPs about many people over days).

    `known` are the rows (id, entities, first_seen, last_seen) of the findings in no incident yet,
    the build's candidates: only the others are read."""
    rows: list[tuple[int, Any, datetime]]
    if known:
        recent = since - RECENT
        rows = [(r.id, r.entities, r.first_seen) for r in known if r.last_seen >= recent]
        rows.extend(
            session.execute(
                select(col(Finding.id), col(Finding.entities), col(Finding.first_seen)).where(
                    col(Finding.last_seen) >= recent,
                    or_(col(Finding.incident_id).is_not(None), col(Finding.status) != FindingStatus.OPEN),
                )
            ).tuples()
        )
        rows.sort(key=lambda row: row[0])
    else:
        rows = recent_finding_entities(session, since)
    # keys through the build's cache: the same findings' keys are needed again for grouping
    keys = ((ctx.keys_of(finding_id, entities), seen) for finding_id, entities, seen in rows)
    ctx.common.update(common_in_findings(keys, ctx.rules))
    ctx.learned = True


def check_keys(session: Session, keys: Iterable[str], ctx: BuildContext) -> None:
    """Add first-party apps and shared IPs among `keys` to `ctx.common` (IPs queried once per build).

    Each key is checked once per build: what a check added stays in `ctx.common` (it only grows,
    and what is learned from findings is learned before the first check)."""
    wanted = set(keys) - ctx.checked_keys
    if not wanted:
        return
    ctx.checked_keys |= wanted
    ctx.common.update(first_party_apps(wanted))
    ips = {k.partition(":")[2] for k in wanted if k.startswith("ip:")} - ctx.checked_ips
    if ips:
        ctx.common.update(shared_ips(session, ips, ctx.rules))
        ctx.checked_ips |= ips


def finding_keys(finding: Any, ctx: BuildContext) -> tuple[tuple[str, ...], dict[str, str], dict[str, str]]:
    """(grouping keys, their labels, keys ignored with why) for one finding."""
    found = ctx.keys_of(finding.id or 0, finding.entities)
    ignored = ctx.ignored_keys(found.keys)
    keys = tuple(k for k in found.keys if k not in ignored)
    return keys, dict(found.labels), ignored


def _merge_entities(findings: Sequence[Any]) -> dict[str, list[str]]:
    merged: dict[str, dict[str, None]] = {name: {} for name in ENTITY_FIELDS}
    for finding in findings:
        for name in ENTITY_FIELDS:
            values = (finding.entities or {}).get(name) or []
            for value in values if isinstance(values, list) else [values]:
                text = str(value).strip()
                if not text:
                    continue
                if name == "people" and "@" in text:
                    text = normalise_email(text)
                elif name == "ips":
                    text = normalise_ip(text) or text
                merged[name].setdefault(text, None)
    return {name: list(values)[:MAX_ENTITY_VALUES] for name, values in merged.items() if values}


@functools.cache
def _weight(severity: str) -> float:
    """`severity_weight`, worked out once per severity name (not once per finding and use)."""
    return severity_weight(severity)


def _top_finding(findings: Sequence[Any]) -> Any:
    return max(
        findings,
        key=lambda f: (_weight(f.severity), f.confidence, -f.first_seen.timestamp(), -(f.id or 0)),
    )


PERSON_KEY_PREFIXES = ("person:", "email:", "account:")


def _victims_first(
    keys: dict[str, None], findings: Sequence[Any], own_keys: Sequence[tuple[str, ...]]
) -> dict[str, None]:
    """The person keys ordered by how much of the incident is about them (severity of the findings
    that name them, shared among the few they name), the other keys after them in their order;
    `own_keys` are each finding's grouping keys (`finding_keys`)."""
    weight: dict[str, float] = {}
    for finding, mine in zip(findings, own_keys, strict=True):
        persons = [k for k in mine if k.startswith(PERSON_KEY_PREFIXES)]
        for key in persons:
            weight[key] = weight.get(key, 0.0) + _weight(finding.severity) / len(persons)
    order = list(keys)
    people = sorted((k for k in order if k in weight), key=lambda k: (-weight[k], order.index(k)))
    return dict.fromkeys([*people, *(k for k in order if k not in weight)])


def _focus_labels(keys: Iterable[str], findings: Sequence[Any], ctx: BuildContext) -> list[str]:
    """Labels (emails) of the people the incident is about, victims first (not the broad sets a
    spray or a mass download names, which are its reach)."""
    labels: dict[str, str] = {}
    for finding in findings:
        labels.update(ctx.keys_of(finding.id or 0, finding.entities).labels)
    return [labels.get(k, k.partition(":")[2]) for k in keys if k.startswith(PERSON_KEY_PREFIXES)]


def _people_in_key_order(
    entities: dict[str, list[str]], keys: dict[str, None], findings: Sequence[Any], ctx: BuildContext
) -> dict[str, list[str]]:
    people = entities.get("people")
    if not people:
        return entities
    focus = [label.lower() for label in _focus_labels(keys, findings, ctx)]
    rank = {label: i for i, label in enumerate(focus)}
    ordered = sorted(people, key=lambda p: (rank.get(p.lower(), len(rank)), people.index(p)))
    return {**entities, "people": ordered}


def _title(
    top: Any, findings: Sequence[Any], entities: dict[str, list[str]], focus: Sequence[str] = ()
) -> str:
    title = top.title
    named = list(focus) or entities.get("people") or entities.get("accounts") or entities.get("apps") or []
    subject = named[0] if named else None
    if subject and not any(n.lower() in title.lower() for n in named[:3]):
        title = f"{title} — {subject}"
    if len(findings) > 1:
        title = f"{title} (+{len(findings) - 1} related finding{'s' if len(findings) > 2 else ''})"
    return title[:500]


def _people(keys: Iterable[str], ctx: BuildContext) -> list[PersonSignal]:
    people: list[PersonSignal] = []
    for key in keys:
        kind, _, value = key.partition(":")
        if kind == "person":
            facts = ctx.identities.people.get(int(value))
            if facts:
                people.append(PersonSignal(facts.email, facts.is_admin, facts.admin_roles))
        elif kind in ("email", "account"):
            roles = ctx.identities.unresolved_admin.get(value)
            people.append(PersonSignal(value, bool(roles), tuple(roles or ())))
    return people


def _reasons_by_finding(incident: Any) -> dict[int, str]:
    found: dict[int, str] = {}
    for reason in incident.grouping or []:
        if reason.get("decision") in ("opened", "joined") and reason.get("finding_id") is not None:
            found[int(reason["finding_id"])] = str(reason.get("text", ""))
    return found


def append_reasons(incident: Any, reasons: Sequence[dict[str, Any]]) -> None:
    incident.grouping = bounded_reasons([*(incident.grouping or []), *reasons])


def bounded_reasons(combined: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the grouping explanation bounded: the first reasons and the latest ones."""
    if len(combined) > MAX_GROUPING_REASONS:
        head = combined[: MAX_GROUPING_REASONS // 2]
        tail = combined[-(MAX_GROUPING_REASONS // 2) + 1 :]
        skipped = len(combined) - len(head) - len(tail)
        combined = [*head, {"decision": "elided", "text": f"{skipped} further decisions not kept"}, *tail]
    return combined


def _chunks(values: Sequence[Any], size: int = 1000) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# What assembling an incident reads of each finding: Core rows, not ORM objects (hydrating
# thousands of Findings was a large part of a build); a row has the Finding's attribute names.
FINDING_COLUMNS = (
    col(Finding.id),
    col(Finding.rule_id),
    col(Finding.kind),
    col(Finding.severity),
    col(Finding.confidence),
    col(Finding.title),
    col(Finding.provider),
    col(Finding.entities),
    col(Finding.evidence_event_ids),
    col(Finding.first_seen),
    col(Finding.last_seen),
    col(Finding.count),
    col(Finding.mitre),
    col(Finding.context),
    col(Finding.incident_id),
    col(Finding.created_at),
    col(Finding.updated_at),
    col(Finding.dedup_key),
)


def _findings_of(session: Session, incident_ids: Sequence[int]) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = {i: [] for i in incident_ids}
    for chunk in _chunks(list(incident_ids)):
        for finding in session.execute(select(*FINDING_COLUMNS).where(col(Finding.incident_id).in_(chunk))):
            found[finding.incident_id or 0].append(finding)
    for mine in found.values():
        mine.sort(key=lambda f: f.id)  # entities are merged in this order, whichever the database
    return found


INCIDENT_TABLE: Any = Incident.__table__  # type: ignore[attr-defined]
_INCIDENT_COLUMNS = tuple(c.name for c in INCIDENT_TABLE.columns)


class IncidentState:
    """An incident's columns as plain attributes (what a build reads and changes), written back
    with `write_incidents` in one statement per set of changed columns; the lifecycle operations
    keep using ORM Incidents, which `refresh_incidents` accepts as well."""

    id: int

    if TYPE_CHECKING:  # every column of Incident, as read

        def __getattr__(self, name: str) -> Any: ...

        def __setattr__(self, name: str, value: Any) -> None: ...

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(dict.fromkeys(_INCIDENT_COLUMNS))
        self.__dict__.update(values)
        self._stored = dict(self.__dict__)

    def changes(self) -> dict[str, Any]:
        return {
            name: value
            for name, value in self.__dict__.items()
            if name != "_stored" and (name not in self._stored or self._stored[name] != value)
        }

    def stored(self) -> None:
        self._stored = {k: v for k, v in self.__dict__.items() if k != "_stored"}

    def stored_values(self) -> dict[str, Any]:
        """Every column as last written or read (a new incident's row for its insert)."""
        return {name: self._stored[name] for name in _INCIDENT_COLUMNS}


def load_incidents(session: Session, ids: Iterable[int], *, lock: bool = True) -> list[IncidentState]:
    """The incidents with these ids as IncidentStates; row-locked (PostgreSQL) so an analyst's
    concurrent change waits for the build, never interleaves."""
    wanted = list(ids)
    found: list[IncidentState] = []
    for chunk in _chunks(wanted):
        query = select(INCIDENT_TABLE).where(INCIDENT_TABLE.c.id.in_(chunk))
        if lock:
            query = query.with_for_update()
        found.extend(IncidentState(dict(row._mapping)) for row in session.execute(query))
    return found


def write_incidents(session: Session, incidents: Iterable[IncidentState]) -> None:
    """Write what changed on each incident: one executemany per set of changed columns."""
    batches: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for incident in incidents:
        changed = incident.changes()
        changed.pop("id", None)
        if changed:
            names = tuple(sorted(changed))
            batches.setdefault(names, []).append({**changed, "id": incident.id})
        incident.stored()
    for rows in batches.values():
        update_many(session.connection(), INCIDENT_TABLE, "id", rows)


def _orm_add(session: Session, incident: Any) -> None:
    if isinstance(incident, Incident):
        session.add(incident)


def _sync_finding_entries(
    session: Session, incidents: Sequence[Any], findings: dict[int, list[Any]], fresh: Collection[int] = ()
) -> None:
    ids = [i.id or 0 for i in incidents]
    existing: dict[int, dict[str, TimelineEntry]] = {i: {} for i in ids}
    for chunk in _chunks([i for i in ids if i not in fresh]):
        for entry in session.execute(
            select(TimelineEntry).where(
                col(TimelineEntry.incident_id).in_(chunk),
                col(TimelineEntry.kind) == TimelineEntryKind.FINDING,
            )
        ).scalars():
            existing[entry.incident_id][entry.dedup_key or ""] = entry
    new_entries: list[dict[str, Any]] = []
    for incident in incidents:
        reasons = _reasons_by_finding(incident)
        mine = existing[incident.id or 0]
        wanted = set()
        for finding in findings[incident.id or 0]:
            key = f"finding:{finding.id}"
            wanted.add(key)
            entry = mine.get(key)
            if entry is None:
                new_entries.append(finding_row(incident.id or 0, finding, reasons.get(finding.id or 0)))
            elif (
                entry.count != finding.count
                or (entry.body or {}).get("last_seen") != finding.last_seen.isoformat()
            ):
                for name, value in finding_fields(finding, reasons.get(finding.id or 0), entry.body).items():
                    setattr(entry, name, value)
                session.add(entry)
        for key, entry in mine.items():
            if key not in wanted:
                session.delete(entry)
    insert_rows(session, new_entries)


def _rebuild_evidence(
    session: Session,
    incidents: Sequence[Any],
    findings: dict[int, list[Any]],
    ctx: BuildContext,
    fresh: Collection[int] = (),
) -> None:
    ids = [i.id or 0 for i in incidents]
    for chunk in _chunks([i for i in ids if i not in fresh]):
        session.execute(
            delete(TimelineEntry).where(
                col(TimelineEntry.incident_id).in_(chunk),
                col(TimelineEntry.kind) == TimelineEntryKind.EVIDENCE,
            )
        )
    cited_by: dict[int, dict[int, list[int]]] = {}
    for incident in incidents:
        mine = cited_by[incident.id or 0] = {}
        for finding in findings[incident.id or 0]:
            for event_id in finding.evidence_event_ids or []:
                mine.setdefault(int(event_id), []).append(finding.id or 0)
    events = {e.id: e for e in load_events(session, {e for m in cited_by.values() for e in m})}
    rows: list[dict[str, Any]] = []
    firsts: dict[int, EventFacts] = {}
    for incident in incidents:
        mine = cited_by[incident.id or 0]
        own_events = [events[e] for e in mine if e in events]
        collapsed = collapse(
            own_events, gap=ctx.config.evidence_gap, max_entries=ctx.config.max_evidence_entries
        )
        for evidence in collapsed:
            finding_ids = sorted({f for event_id in evidence.sample_ids for f in mine.get(event_id, ())})
            rows.append(evidence_row(incident.id or 0, evidence, finding_ids))
        incident.evidence_count = len(own_events)
        first_finding = min((f.first_seen for f in findings[incident.id or 0]), default=incident.first_seen)
        first = min(own_events, key=lambda e: (e.occurred_at, e.id), default=None)
        incident.first_event_at = first.occurred_at if first else first_finding
        incident.first_readable_at = first_finding
        if first is not None:
            firsts[incident.id or 0] = first
    added = connections_added(session, [e.id for e in firsts.values()])
    for incident in incidents:
        first = firsts.get(incident.id or 0)
        if first is not None:
            incident.first_readable_at = _readable(first.occurred_at, added.get(first.id))
    insert_rows(session, rows)


def connections_added(session: Session, event_ids: Sequence[int]) -> dict[int, datetime]:
    """When the connection that collected each event was added (events of a connection only)."""
    found: dict[int, datetime] = {}
    for chunk in _chunks(sorted(set(event_ids))):
        rows = session.execute(
            select(col(Event.id), col(Connection.created_at))
            .join(Connection, col(Event.connection_id) == col(Connection.id))
            .where(col(Event.id).in_(chunk))
        ).all()
        found.update({event_id: added for event_id, added in rows if added is not None})
    return found


def _readable(occurred_at: datetime, added: datetime | None) -> datetime:
    return max(occurred_at, as_utc(added)) if added is not None else occurred_at


def refresh_incidents(
    session: Session,
    incidents: Sequence[Any],
    ctx: BuildContext,
    *,
    rebuild: Iterable[int] = (),
    known: Mapping[int, list[Any]] | None = None,
) -> set[int]:
    """Recompute what depends on each incident's findings; returns the ids whose keys changed.

    `incidents` are ORM Incidents (the lifecycle operations) or IncidentStates (the build, which
    writes them back). Evidence entries are rebuilt for incidents in `rebuild` (their set of
    findings changed) and for those with a finding updated since the last build. `known` gives
    the findings (FINDING_COLUMNS rows, by id) of incidents made by this build that have no
    timeline entries of findings, evidence or messages yet: they are not read back.
    """
    if not incidents:
        return set()
    known = known or {}
    fresh = {i.id or 0 for i in incidents if (i.id or 0) in known}
    findings = _findings_of(session, [i.id or 0 for i in incidents if (i.id or 0) not in fresh])
    findings.update({i: list(known[i]) for i in fresh})
    entities_of = {i.id or 0: _merge_entities(findings[i.id or 0]) for i in incidents}
    all_findings = [f for mine in findings.values() for f in mine]
    if not ctx.learned and all_findings:
        learn_common_keys(session, ctx, since=min(f.first_seen for f in all_findings))
    check_keys(session, (k for f in all_findings for k in ctx.keys_of(f.id or 0, f.entities).keys), ctx)
    force = set(rebuild)
    changed_keys: set[int] = set()
    stale: list[Any] = []
    live = [i for i in incidents if findings[i.id or 0]]
    for incident in incidents:
        mine = findings[incident.id or 0]
        if not mine:
            incident.finding_count = 0
            incident.updated_at = ctx.now
            _orm_add(session, incident)
            continue
        if _aggregate(incident, mine, entities_of[incident.id or 0], ctx):
            changed_keys.add(incident.id or 0)
        latest_update = max(f.updated_at for f in mine)
        if (
            incident.id in force
            or incident.evidence_built_at is None
            or latest_update > incident.evidence_built_at
        ):
            stale.append(incident)
            incident.evidence_built_at = latest_update
    _sync_finding_entries(session, live, findings, fresh)
    _rebuild_evidence(session, stale, findings, ctx, fresh)
    _count_messages(session, live, fresh)
    changes: list[tuple[dict[str, Any], AuditEntry]] = []
    for incident in live:
        change = _update_priority(
            incident, findings[incident.id or 0], incident.keys, entities_of[incident.id or 0], ctx
        )
        if change is not None:
            changes.append(change)
        incident.summary = one_line_summary(incident, findings[incident.id or 0])
        _orm_add(session, incident)
    # the priority changes: their entries in one insert, their records in one chain append
    insert_rows(session, [entry for entry, _ in changes])
    record_many(session, [audit for _, audit in changes])
    return changed_keys


def _count_messages(session: Session, incidents: Sequence[Any], fresh: Collection[int] = ()) -> None:
    counts: dict[int, int] = {}
    for chunk in _chunks([i.id or 0 for i in incidents if (i.id or 0) not in fresh]):
        rows = session.execute(
            select(col(TimelineEntry.incident_id), func.count())
            .where(
                col(TimelineEntry.incident_id).in_(chunk),
                col(TimelineEntry.kind) == TimelineEntryKind.MESSAGE,
            )
            .group_by(col(TimelineEntry.incident_id))
        ).all()
        counts.update({row[0]: row[1] for row in rows})
    for incident in incidents:
        incident.message_count = counts.get(incident.id or 0, 0)


def _aggregate(
    incident: Any, findings: Sequence[Any], entities: dict[str, list[str]], ctx: BuildContext
) -> bool:
    """Title, severity, type, entities, times and keys from the findings; True when keys changed."""
    keys: dict[str, None] = {}
    broad: dict[str, None] = {}
    own_keys = [finding_keys(finding, ctx)[0] for finding in findings]
    for finding, mine in zip(findings, own_keys, strict=True):
        for key in mine:
            keys.setdefault(key, None)
        for key in ctx.keys_of(finding.id or 0, finding.entities).broad:
            broad.setdefault(f"{BROAD_PREFIX}{key}", None)
    keys = _victims_first(keys, findings, own_keys)
    entities = _people_in_key_order(entities, keys, findings, ctx)
    keys.update(dict.fromkeys(list(broad)[:MAX_BROAD_KEYS]))
    top = _top_finding(findings)
    # named after what happened, not after a configuration check that joined it ("Posture: no inbox
    # rule forwards mail outside" is the state the attack left, not the attack)
    story = _top_finding([f for f in findings if f.kind != FindingKind.POSTURE] or findings)
    incident.title = _title(story, findings, entities, _focus_labels(keys, findings, ctx))
    incident.severity = top.severity
    incident.incident_type = story.rule_id[:200]
    incident.entities = entities
    incident.first_seen = min(f.first_seen for f in findings)
    incident.last_seen = max(f.last_seen for f in findings)
    incident.detected_at = min(f.created_at for f in findings)
    incident.finding_count = len(findings)
    incident.updated_at = ctx.now
    if list(keys) == list(incident.keys or []):
        return False
    incident.keys = list(keys)
    incident.messages_scanned_id = 0
    return True


def _update_priority(
    incident: Any,
    findings: Sequence[Any],
    keys: Iterable[str],
    entities: dict[str, list[str]],
    ctx: BuildContext,
) -> tuple[dict[str, Any], AuditEntry] | None:
    """Set the incident's priority; a change of it comes back as (entry row, audit record)."""
    signals = [
        FindingSignal(
            f.id or 0,
            f.severity,
            f.confidence,
            f.provider,
            f.title,
            f.rule_id,
            f.context or {},
            frozenset(int(e) for e in f.evidence_event_ids or []),
            f.kind,
        )
        for f in findings
    ]
    people = _people(keys, ctx)
    result = compute_priority(signals, people, entities.get("files", []))
    assets = float(result.factors.get("factors", {}).get("assets", {}).get("weight", 1.0))
    impact = customer_impact(
        # the people it is about; when it names too many to group by, all it names
        people=len(people) or len(entities.get("people", [])),
        files=len(entities.get("files", [])),
        apps=len(entities.get("apps", [])),
        providers=len({f.provider for f in findings if f.provider}),
        sensitive=assets >= 1.25,
        exposed=round(assets, 4) in (1.2, 1.5),
        severity=max((f.severity for f in findings), key=_weight),
        started=incident.first_seen,
        ended=incident.contained_at or incident.last_seen,
    )
    if impact["score"] >= LIFTS_TO_P2 and result.priority in (Priority.P3, Priority.P4):
        impact["lifted"] = f"impact {impact['score']:g} ≥ {LIFTS_TO_P2} lifts {result.priority.value} to P2"
        result = replace(
            result,
            priority=Priority.P2,
            factors={**result.factors, "priority": Priority.P2.value, "lifted_by_impact": impact["lifted"]},
        )
    first_time = not incident.priority_factors
    previous = incident.priority
    incident.priority_factors = {**result.factors, "impact": impact}
    if first_time or previous != result.priority:
        incident.priority = result.priority
        set_due_dates(incident, ctx.config)
    if first_time or previous == result.priority:
        return None
    details = {"from": previous, "to": result.priority.value, "score": result.score}
    entry = entry_row(
        incident.id or 0,
        TimelineEntryKind.PRIORITY,
        ctx.now,
        "tenantguard",
        f"priority {previous} → {result.priority.value} (score {result.score:.2f})",
        body={**details, "factors": result.factors.get("factors", {})},
        actor=ctx.actor.name,
    )
    audit = AuditEntry(
        ctx.actor,
        AuditAction.INCIDENT_PRIORITY_CHANGED,
        "incident",
        str(incident.id),
        details,
        at=ctx.now,
    )
    return entry, audit


def one_line_summary(incident: Any, findings: Sequence[Any]) -> str:
    """A sentence for lists and notifications; the report has the full story."""
    entities = incident.entities or {}
    named = entities.get("people") or entities.get("accounts") or []
    factors = (incident.priority_factors or {}).get("factors") or {}
    focus = (factors.get("spread") or {}).get("people")
    who = list(focus) if focus else named
    about = (
        ", ".join(who[:3]) + (f" and {len(who) - 3} more" if len(who) > 3 else "")
        if who
        else "no named person"
    )
    targets = len(named) - len(who)
    if focus and targets > 0:
        about += f" ({targets} more {'person' if targets == 1 else 'people'} named as targets)"
    providers = sorted({f.provider for f in findings if f.provider})
    severities: dict[str, int] = {}
    for finding in findings:
        severities[finding.severity] = severities.get(finding.severity, 0) + 1
    counted = ", ".join(f"{n} {s}" for s, n in sorted(severities.items(), key=lambda kv: -_weight(kv[0])))
    raised = [
        f["why"]
        for name, f in factors.items()
        if name in ("privilege", "assets") and f.get("weight", 1.0) > 1.0
    ]
    because = f"; {'; '.join(raised)}" if raised else ""
    span = describe_gap((incident.last_seen - incident.first_seen).total_seconds())
    return (
        f"{len(findings)} finding{'s' if len(findings) != 1 else ''} ({counted}) about {about}"
        f" in {', '.join(providers) or 'the tenant'} over {span}{because}."
    )[:2000]


def window_of(incident: Any, config: TimelineConfig) -> tuple[datetime, datetime]:
    return incident.first_seen - config.conversation_before, incident.last_seen + config.conversation_after
