"""`build_incidents`: open findings -> incidents, with conversations, priority and notifications.

One build runs in one transaction under a lock (PostgreSQL advisory lock; SQLite's
``BEGIN IMMEDIATE``), so two workers never group the same findings twice:

1. group the open findings that are in no incident yet (see :mod:`timeline.grouping`) with each
   other and with the incidents still open, create the new incidents, assign the findings, and
   audit every creation, join and automatic merge;
2. refresh the incidents that changed (aggregates, finding and evidence entries, priority, SLA);
3. link conversations (see :mod:`timeline.conversations`) to the incidents still open;
4. after the commit, post notifications (a Slack failure never undoes the build).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.utils import getaddresses
from typing import Any

from sqlalchemy import bindparam, delete, func, select, text, update
from sqlmodel import Session, col

from core.audit import AuditAction, AuditEntry, record_many
from core.bulk import insert_many, reserve_ids
from core.clock import utcnow
from core.db import Database
from core.findings import TENANT_PREFIX, tenant_of
from core.models.enums import FindingStatus, IncidentStatus, Severity, TimelineEntryKind
from core.models.finding import Finding
from core.models.incident import Incident, Message, TimelineEntry
from core.models.noise import GroupingLesson
from timeline.assembly import (
    FINDING_COLUMNS,
    INCIDENT_TABLE,
    SYSTEM_ACTOR,
    BuildContext,
    IncidentState,
    append_reasons,
    bounded_reasons,
    check_keys,
    learn_common_keys,
    load_incidents,
    refresh_incidents,
    window_of,
    write_incidents,
)
from timeline.config import TimelineConfig
from timeline.conversations import (
    ROUTINE_LOOKBACK,
    ConversationLinker,
    IncidentTerms,
    MessageFacts,
    incident_terms,
    talks_security,
)
from timeline.entities import IdentityIndex
from timeline.entries import entry_row, insert_rows, message_row
from timeline.grouping import BROAD_PREFIX, FindingFacts, Group, Lesson, OpenIncident, group_findings
from timeline.noise import low_signal
from timeline.quieting import held_back

log = logging.getLogger(__name__)

OPEN_FOR_GROUPING = (IncidentStatus.NEW, IncidentStatus.TRIAGED, IncidentStatus.CONTAINED)
OPEN_FOR_CONVERSATIONS = (*OPEN_FOR_GROUPING, IncidentStatus.RESOLVED)
RECURRENCE_LOOKBACK = timedelta(days=90)
MAX_LINKED_CONVERSATIONS = 200
# A file or app name that more than this many different messages mention in an incident's window
# is everyday chatter, not a sign that a message is about the incident.
CHATTER_TEXTS = 5
_PG_BUILD_LOCK = 0x7467_7469_6D65  # "tgtime"
MAX_GROUPING_ROUNDS = 3


def build_incidents(
    db: Database, settings: Any = None, *, now: datetime | None = None, notify: bool = True
) -> list[int]:
    """Group, assemble and link; returns the ids of incidents created or changed by this build."""
    config = TimelineConfig.from_settings(settings)
    with db.session() as session:
        if db.dialect == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_BUILD_LOCK})
        ctx = BuildContext(config, IdentityIndex.load(session), now or utcnow())
        changed = IncidentBuild(session, ctx).run()
    if notify and changed:
        from timeline.notify import NotificationError, deliver_notifications

        try:
            deliver_notifications(db, settings)
        except NotificationError as exc:
            log.warning("incident notifications not delivered: %s", exc)
    return changed


class IncidentBuild:
    """One build over one session; `run` does the three steps and returns the changed ids.

    The findings to group are read once (Core rows, see `FINDING_COLUMNS`); a later grouping
    round takes those still in no incident from memory. Incidents are IncidentStates, read once
    and written back in bulk after each step; the findings of an incident made in this round are
    the grouping's, not read back."""

    def __init__(self, session: Session, ctx: BuildContext) -> None:
        self.session = session
        self.ctx = ctx
        self.created: list[int] = []
        self._mentions: dict[tuple[str, datetime, datetime], int] = {}
        self._window_texts: dict[tuple[datetime, datetime], list[tuple[str, str]]] = {}
        self._states: dict[int, IncidentState] = {}
        self._remaining: list[Any] | None = None
        # findings (rows) of the incidents this round created, while nothing else joined them
        self._known: dict[int, list[Any]] = {}
        self._last_round: _Round | None = None
        self._carried: dict[int, FindingFacts] = {}
        # the open incidents of the first round's read (since when, by id), kept up to date
        self._open_cache: tuple[datetime, dict[int, OpenIncident]] | None = None
        # incident id -> its findings' tenant, when not the default (`core.findings.tenant_of`)
        self._tenants: dict[int, str] = {}

    def run(self) -> list[int]:
        touched = self.group()
        stale = self._stale_incident_ids()
        self._refresh(sorted(set(touched) | stale), touched)
        # A finding that cannot open an incident (informational, posture) may belong to one this
        # very pass created, once its window is known; grouping again until nothing moves makes
        # one build equal to any number of builds (the next scheduled pass changes nothing).
        for _ in range(MAX_GROUPING_ROUNDS if touched else 0):
            more = self.group()
            if not more:
                break
            self._refresh(more, more)
            touched = sorted(set(touched) | set(more))
        self._note_recurrences(self._incidents(sorted(set(self.created))))
        linked = self.link_conversations()
        return sorted(set(touched) | stale | linked)

    def _refresh(self, ids: Iterable[int], rebuild: Iterable[int]) -> None:
        incidents = self._incidents(sorted(set(ids)))  # in id order, as the rows were read
        refresh_incidents(self.session, incidents, self.ctx, rebuild=rebuild, known=self._known)
        self._known = {}
        write_incidents(self.session, incidents)

    # ------------------------------------------------------------------ step 1: grouping

    def group(self) -> list[int]:
        if self._remaining is None:
            self._remaining = self._candidate_findings()
            self.ctx.candidates = self._remaining
        candidates = self._remaining
        if not candidates:
            return []
        earliest_seen = min(row.first_seen for row in candidates)
        if not self.ctx.learned:
            # later rounds group a subset of these findings: what is common among the findings
            # recent to the earliest of them was learned already
            learn_common_keys(self.session, self.ctx, since=earliest_seen, known=candidates)
        check_keys(
            self.session,
            (k for row in candidates for k in self.ctx.keys_of(row.id, row.entities).keys),
            self.ctx,
        )
        earliest = min(row.first_seen for row in candidates) - self.ctx.config.group_window
        lessons = self._lessons()
        open_incidents = self._open_incidents(since=earliest, with_rules=bool(lessons))
        # Mass changes and drifts inside declared changes only matter for what could open one.
        openers = [r for r in candidates if not low_signal(r.kind, r.severity)]
        held = held_back(self.session, self.ctx, openers, (k for i in open_incidents for k in i.keys))
        facts, ignored = self._round_facts(candidates, held, open_incidents)
        plan = group_findings(facts, _reachable(open_incidents, facts), self.ctx.config.group_window, lessons)
        self._note_round(plan, facts, ignored, open_incidents, held)
        for group in plan.groups:
            _explain_ignored(group, ignored)
        fresh = [g for g in plan.groups if g.incident_id is None]
        audit: list[AuditEntry] = []  # one chain append for the pass's creations and joins
        created = self._create_all(fresh, audit)
        rows = {row.id: row for row in candidates}
        for group, incident_id in zip(fresh, created, strict=True):
            group.incident_id = incident_id
            if not group.absorbed_incident_ids:
                self._known[incident_id] = [rows[f] for f in sorted(group.finding_ids)]
        fresh_ids = {id(g) for g in fresh}
        joined = [g for g in plan.groups if id(g) not in fresh_ids]
        incidents = self._incidents(sorted({g.incident_id or 0 for g in joined}))
        by_id = {incident.id: incident for incident in incidents}
        for group in joined:
            incident = by_id[group.incident_id or 0]
            append_reasons(incident, group.reasons)
            if group.finding_ids:
                audit.append(
                    AuditEntry(
                        SYSTEM_ACTOR,
                        AuditAction.INCIDENT_FINDINGS_ADDED,
                        "incident",
                        group.incident_id or 0,
                        {
                            "finding_ids": group.finding_ids,
                            "reasons": [r["text"] for r in group.reasons[-20:]],
                        },
                        at=self.ctx.now,
                    )
                )
        write_incidents(self.session, incidents)
        record_many(self.session, audit)
        assigned = [(g.incident_id or 0, f) for g in plan.groups for f in g.finding_ids]
        self._assign(assigned)
        done = {f for _, f in assigned}
        self._remaining = [row for row in candidates if row.id not in done]
        merges: list[AuditEntry] = []
        for group in plan.groups:
            for absorbed in group.absorbed_incident_ids:
                merges.extend(self._absorb(group.incident_id or 0, absorbed, group))
        record_many(self.session, merges)
        return [g.incident_id or 0 for g in plan.groups]

    def _round_facts(
        self, rows: Sequence[Any], held: dict[int, dict[str, Any]], open_incidents: Sequence[OpenIncident]
    ) -> tuple[list[FindingFacts], dict[int, dict[str, str]]]:
        """The facts of the findings this round could assign: all of them in the first round; in a
        later one only those the last round's changes reach (see `_Round`), which are the only ones
        whose outcome can differ from last time (no incident or finding they could meet changed)."""
        last = self._last_round
        if last is None:
            return self._facts(rows, held)
        newly_common = set(self.ctx.common) - last.common
        redo = [
            row
            for row in rows
            if held.get(row.id) != last.held.get(row.id)
            or (newly_common and any(k in newly_common for k in self.ctx.keys_of(row.id, row.entities).keys))
        ]
        fresh, ignored = self._facts(redo, held)
        facts = {f.id: f for f in fresh}
        facts.update({row.id: last.facts[row.id] for row in rows if row.id not in facts})
        ignored.update({i: last.ignored[i] for i in facts if i not in ignored and i in last.ignored})
        picked = last.reached(facts, open_incidents, set(facts) - set(last.facts) | {f.id for f in fresh})
        self._carried = {i: f for i, f in facts.items() if i not in picked}
        return [facts[row.id] for row in rows if row.id in picked], {
            i: note for i, note in ignored.items() if i in facts
        }

    def _note_round(
        self,
        plan: Any,
        facts: Sequence[FindingFacts],
        ignored: dict[int, dict[str, str]],
        open_incidents: Sequence[OpenIncident],
        held: dict[int, dict[str, Any]],
    ) -> None:
        """What the next round needs to tell which findings this round's changes can reach."""
        assigned = {f for g in plan.groups for f in g.finding_ids}
        kept = dict(self._carried)
        kept.update({f.id: f for f in facts if f.id not in assigned})
        self._last_round = _Round(
            open={i.id: i for i in open_incidents},
            touched={g.incident_id for g in plan.groups if g.incident_id is not None}
            | {i for g in plan.groups for i in g.absorbed_incident_ids},
            assigned_keys={k for f in facts if f.id in assigned for k in _reach_keys(f)},
            facts=kept,
            ignored={i: note for i, note in ignored.items() if i in kept},
            held=dict(held),
            common=set(self.ctx.common),
        )
        self._carried = {}

    def _candidate_findings(self) -> list[Any]:
        return sorted(
            self.session.execute(
                select(*FINDING_COLUMNS).where(
                    col(Finding.incident_id).is_(None), col(Finding.status) == FindingStatus.OPEN
                )
            ).all(),
            key=lambda row: row.id,
        )

    def _facts(
        self, rows: Sequence[Any], held: dict[int, dict[str, Any]]
    ) -> tuple[list[FindingFacts], dict[int, dict[str, str]]]:
        facts: list[FindingFacts] = []
        ignored_by_finding: dict[int, dict[str, str]] = {}
        for row in rows:
            found = self.ctx.keys_of(row.id, row.entities)
            ignored = self.ctx.ignored_keys(found.keys)
            if found.broad:
                ignored = {**ignored, "broad": _broad_note(found.broad)}
            keys = tuple(k for k in found.keys if k not in ignored) if ignored else found.keys
            if ignored:
                ignored_by_finding[row.id] = ignored
            facts.append(
                FindingFacts(
                    id=row.id,
                    severity=row.severity,
                    first_seen=row.first_seen,
                    last_seen=row.last_seen,
                    keys=keys,
                    labels=found.labels,
                    can_open=not low_signal(row.kind, row.severity) and row.id not in held,
                    broad=found.broad,
                    rule=row.rule_id,
                    tenant=tenant_of(row.dedup_key),
                )
            )
        return facts, ignored_by_finding

    def _lessons(self) -> list[Lesson]:
        """What analysts' splits taught (see timeline.grouping.Lesson)."""
        return [
            Lesson(
                row.key,
                frozenset(row.rules_apart),
                frozenset(row.rules_kept),
                f"split from incident #{row.incident_id} into #{row.split_incident_id} by {row.created_by}"
                + (f" ({row.reason})" if row.reason else ""),
            )
            for row in self.session.execute(select(GroupingLesson).order_by(col(GroupingLesson.id))).scalars()
        ]

    def _open_incidents(self, *, since: datetime, with_rules: bool = False) -> list[OpenIncident]:
        """The open incidents last seen since `since`; read in the first round, in a later one the
        same read brought up to date from the incidents this build changed (all in `_states`)."""
        cache = self._open_cache
        if with_rules or cache is None or since < cache[0]:
            found = self._read_open_incidents(since=since, with_rules=with_rules)
            self._open_cache = None if with_rules else (since, {i.id: i for i in found})
            return found
        by_id = cache[1]
        for state in self._states.values():
            by_id.pop(state.id, None)
            if state.status in OPEN_FOR_GROUPING and state.merged_into_id is None:
                by_id[state.id] = _open_incident(state, tenant=self._tenants.get(state.id, ""))
        return [i for i in by_id.values() if i.last_seen >= since]

    def _read_open_incidents(self, *, since: datetime, with_rules: bool = False) -> list[OpenIncident]:
        rows = self.session.execute(
            select(
                col(Incident.id),
                col(Incident.keys),
                col(Incident.first_seen),
                col(Incident.last_seen),
                col(Incident.status),
                col(Incident.assignee),
                col(Incident.created_by),
            ).where(
                col(Incident.status).in_(OPEN_FOR_GROUPING),
                col(Incident.merged_into_id).is_(None),
                col(Incident.last_seen) >= since,
            )
        ).all()
        rules: dict[int, set[str]] = {}
        ids = [row.id for row in rows] if with_rules else []
        for start in range(0, len(ids), 1000):
            for incident_id, rule_id in self.session.execute(
                select(col(Finding.incident_id), col(Finding.rule_id))
                .where(col(Finding.incident_id).in_(ids[start : start + 1000]))
                .distinct()
            ).all():
                rules.setdefault(incident_id, set()).add(rule_id)
        self._read_tenants([row.id for row in rows])
        return [
            _open_incident(row, tuple(sorted(rules.get(row.id, ()))), self._tenants.get(row.id, ""))
            for row in rows
        ]

    def _read_tenants(self, incident_ids: Sequence[int]) -> None:
        """The tenant of each incident whose findings name one (the others are the default's)."""
        for start in range(0, len(incident_ids), 1000):
            for incident_id, key in self.session.execute(
                select(col(Finding.incident_id), func.max(col(Finding.dedup_key)))
                .where(
                    col(Finding.incident_id).in_(incident_ids[start : start + 1000]),
                    col(Finding.dedup_key).startswith(TENANT_PREFIX),
                )
                .group_by(col(Finding.incident_id))
            ).all():
                self._tenants[int(incident_id)] = tenant_of(key)

    def _create_all(self, groups: Sequence[Group], audit: list[AuditEntry]) -> list[int]:
        """Insert the new incidents in one statement, then their opening entries; their audit
        records are appended to `audit` (the caller appends them to the chain)."""
        if not groups:
            return []
        rows = []
        for group in groups:
            reasons = bounded_reasons(list(group.reasons))
            rows.append(
                {
                    **_NEW_INCIDENT_DEFAULTS,
                    "title": f"incident from finding #{group.finding_ids[0]}",
                    "first_seen": group.first_seen,
                    "last_seen": group.last_seen,
                    "created_at": self.ctx.now,
                    "updated_at": self.ctx.now,
                    "keys": list(group.keys),
                    "grouping": reasons,
                }
            )
        self.session.flush()
        connection = self.session.connection()
        ids = reserve_ids(connection, INCIDENT_TABLE, len(rows))
        states = []
        for row, incident_id in zip(rows, ids, strict=True):
            # what reading the row back would give (each its own JSON values), without the read
            values = {**row, "id": incident_id}
            values.update({name: kind() for name, kind in _NEW_INCIDENT_CONTAINERS})
            states.append(self._states.setdefault(incident_id, IncidentState(values)))
        # every column given: what the model's defaults would fill in is in _NEW_INCIDENT_DEFAULTS
        insert_many(connection, INCIDENT_TABLE, [s.stored_values() for s in states])
        entries = []
        for group, incident_id in zip(groups, ids, strict=True):
            if group.tenant:
                self._tenants[incident_id] = group.tenant
            first = group.reasons[0]["text"] if group.reasons else ""
            entries.append(
                entry_row(
                    incident_id,
                    TimelineEntryKind.STATUS,
                    self.ctx.now,
                    "tenantguard",
                    f"incident opened ({IncidentStatus.NEW}): {first}",
                    body={"to": IncidentStatus.NEW.value, "reason": first},
                    actor=SYSTEM_ACTOR.name,
                )
            )
            audit.append(
                AuditEntry(
                    SYSTEM_ACTOR,
                    AuditAction.INCIDENT_CREATED,
                    "incident",
                    incident_id,
                    {"finding_ids": group.finding_ids, "reasons": [r["text"] for r in group.reasons[:20]]},
                    at=self.ctx.now,
                )
            )
        insert_rows(self.session, entries)
        self.created.extend(ids)
        return ids

    def _assign(self, pairs: Sequence[tuple[int, int]]) -> None:
        """Point each finding at its incident, in one executemany."""
        if not pairs:
            return
        table: Any = Finding.__table__  # type: ignore[attr-defined]
        self.session.execute(
            update(table)
            .where(table.c.id == bindparam("finding"), table.c.incident_id.is_(None))
            .values(incident_id=bindparam("incident")),
            [{"finding": finding_id, "incident": incident_id} for incident_id, finding_id in pairs],
        )

    def _absorb(self, incident_id: int, absorbed_id: int, group: Group) -> list[AuditEntry]:
        """An untouched incident bridged by a new finding becomes part of `incident_id`; returns
        the merge's audit record for the caller's chain append."""
        found = self._incidents([absorbed_id])
        if not found:
            return []
        absorbed = found[0]
        move_incident_contents(self.session, absorbed_id, incident_id)
        absorbed.status = IncidentStatus.DUPLICATE.value
        absorbed.merged_into_id = incident_id
        absorbed.updated_at = self.ctx.now
        write_incidents(self.session, [absorbed])
        why = next(
            (r["text"] for r in group.reasons if r.get("decision") == "merged"), "bridged by a finding"
        )
        insert_rows(
            self.session,
            [
                entry_row(
                    target,
                    TimelineEntryKind.MERGE,
                    self.ctx.now,
                    "tenantguard",
                    title,
                    body={"reason": why},
                    actor=SYSTEM_ACTOR.name,
                )
                for target, title in (
                    (incident_id, f"incident #{absorbed_id} merged into this one: {why}"),
                    (absorbed_id, f"merged into incident #{incident_id}: {why}"),
                )
            ],
        )
        return [
            AuditEntry(
                SYSTEM_ACTOR,
                AuditAction.INCIDENT_MERGED,
                "incident",
                incident_id,
                {"merged": [absorbed_id], "reason": why, "automatic": True},
                at=self.ctx.now,
            )
        ]

    # ------------------------------------------------------------------ step 2: refresh

    def _stale_incident_ids(self) -> set[int]:
        """Open incidents one of whose findings a detector updated since the last build."""
        rows = self.session.execute(
            select(col(Incident.id), col(Incident.evidence_built_at), func.max(col(Finding.updated_at)))
            .join(Finding, col(Finding.incident_id) == col(Incident.id))
            .where(col(Incident.status).in_(OPEN_FOR_GROUPING), col(Incident.merged_into_id).is_(None))
            .group_by(col(Incident.id), col(Incident.evidence_built_at))
        ).all()
        stale = set()
        for incident_id, built_at, latest in rows:
            if built_at is None or (latest is not None and _as_aware(latest) > built_at):
                stale.add(incident_id)
        return stale

    def _incidents(self, ids: Iterable[int]) -> list[IncidentState]:
        """The incidents as IncidentStates, each read (and row-locked) once per build."""
        wanted = list(ids)
        missing = [i for i in wanted if i not in self._states]
        if missing:
            self.session.flush()  # what the ORM still holds (moved entries) before the read
            for state in load_incidents(self.session, missing):
                self._states[state.id] = state
        return [self._states[i] for i in wanted if i in self._states]

    def _note_recurrences(self, incidents: Sequence[IncidentState]) -> None:
        """A new incident of a type seen before about the same person/asset recurs the older one."""
        if not incidents:
            return
        types = sorted({i.incident_type for i in incidents})
        earlier: dict[str, list[Any]] = {}
        for start in range(0, len(types), 500):
            rows = self.session.execute(
                select(col(Incident.id), col(Incident.incident_type), col(Incident.keys))
                .where(
                    col(Incident.incident_type).in_(types[start : start + 500]),
                    col(Incident.created_at) >= self.ctx.now - RECURRENCE_LOOKBACK,
                    col(Incident.status).in_(
                        (IncidentStatus.RESOLVED, IncidentStatus.CLOSED, IncidentStatus.CONTAINED)
                    ),
                )
                .order_by(col(Incident.created_at).desc())
            ).all()
            for row in rows:
                earlier.setdefault(row.incident_type, []).append(row)
        for incident in incidents:
            mine = set(incident.keys or [])
            match = next(
                (
                    r
                    for r in earlier.get(incident.incident_type, [])
                    if r.id != incident.id and mine & set(r.keys or [])
                ),
                None,
            )
            if match is not None:
                incident.recurrence_of_id = match.id
        write_incidents(self.session, incidents)

    # ------------------------------------------------------------------ step 3: conversations

    def link_conversations(self) -> set[int]:
        high_water = self.session.execute(select(func.max(col(Message.id)))).scalar() or 0
        # only the incidents with messages they have not been matched against yet are read
        wanted = sorted(
            self.session.execute(
                select(col(Incident.id)).where(
                    col(Incident.status).in_(OPEN_FOR_CONVERSATIONS),
                    col(Incident.merged_into_id).is_(None),
                    col(Incident.finding_count) > 0,
                    col(Incident.messages_scanned_id) < high_water,
                )
            ).scalars()
        )
        if not wanted:
            return set()
        pending: list[Incident] = []
        for start in range(0, len(wanted), 1000):
            query = select(Incident).where(col(Incident.id).in_(wanted[start : start + 1000]))
            pending.extend(self.session.execute(query.with_for_update()).scalars())
        messages = self._messages_for(pending, high_water)
        about = self._findings_about(pending)
        terms = [
            incident_terms(
                i.id or 0,
                window_of(i, self.ctx.config),
                i.entities or {},
                i.keys or [],
                self.ctx.identities,
                i.linked_conversations or [],
                last_seen=i.last_seen,
                about=[i.title, *about.get(i.id or 0, ())],
            )
            for i in pending
        ]
        terms = [self._without_chatter(t) for t in terms]
        linker = ConversationLinker(terms, self.ctx.identities, self._security_history(messages, terms))
        scanned_from = {i.id: i.messages_scanned_id for i in pending}
        matches = [m for m in linker.link(messages) if m.message_id > scanned_from[m.incident_id]]
        changed = self._store_matches(pending, matches, {m.id: m for m in messages})
        for incident in pending:
            incident.messages_scanned_id = high_water
            self.session.add(incident)
        return changed

    def _findings_about(self, incidents: Sequence[Incident]) -> dict[int, list[str]]:
        """Each incident's findings as words: their titles and rule ids (`IncidentTerms.about`)."""
        about: dict[int, list[str]] = {}
        ids = [i.id for i in incidents if i.id is not None]
        for start in range(0, len(ids), 1000):
            rows = self.session.execute(
                select(col(Finding.incident_id), col(Finding.title), col(Finding.rule_id)).where(
                    col(Finding.incident_id).in_(ids[start : start + 1000])
                )
            )
            for incident_id, title, rule_id in rows:
                about.setdefault(incident_id, []).extend((title, rule_id.replace("_", " ")))
        return about

    def _security_history(
        self, messages: Sequence[MessageFacts], terms: Sequence[IncidentTerms]
    ) -> dict[str, list[datetime]]:
        """When the authors of security talk in this batch wrote about security before."""
        authors = sorted(
            {m.author for m in messages if m.author and talks_security(f"{m.subject or ''} {m.text}")}
        )
        if not authors:
            return {}
        start = min(t.window_start for t in terms) - ROUTINE_LOOKBACK
        end = max(t.window_end for t in terms)
        history: dict[str, list[datetime]] = {}
        for begin in range(0, len(authors), 500):
            rows = self.session.execute(
                select(
                    col(Message.author),
                    col(Message.sent_at),
                    col(Message.subject),
                    col(Message.text_redacted),
                ).where(
                    col(Message.author).in_(authors[begin : begin + 500]),
                    col(Message.sent_at).between(start, end),
                )
            ).all()
            for author, sent_at, subject, text_redacted in rows:
                if talks_security(f"{subject or ''} {text_redacted}"):
                    history.setdefault(author, []).append(sent_at)
        return history

    def _without_chatter(self, terms: IncidentTerms) -> IncidentTerms:
        """Drop file and app names that everyday chat mentions anyway ("Budget forecast")."""
        names = [t for t, what in terms.strong.items() if what.startswith(("file ", "app "))]
        common = {
            t
            for t in names
            if self._distinct_mentions(t, terms.window_start, terms.window_end) > CHATTER_TEXTS
        }
        if not common:
            return terms
        return replace(terms, strong={t: w for t, w in terms.strong.items() if t not in common})

    def _distinct_mentions(self, term: str, start: datetime, end: datetime) -> int:
        """How many different texts mention `term` in the window (copies of one mail count once).

        Message texts are encrypted at rest (core.crypto), so SQL cannot search them: the window's
        texts are read (and decrypted) once and matched here, case-insensitively."""
        key = (term, start, end)
        if key not in self._mentions:
            if (start, end) not in self._window_texts:
                rows = self.session.execute(
                    select(col(Message.text_redacted), col(Message.subject)).where(
                        col(Message.sent_at).between(start, end)
                    )
                ).all()
                self._window_texts[(start, end)] = [
                    (f"{text or ''} {subject or ''}".lower(), (text or "")[:200]) for text, subject in rows
                ]
            needle = term.lower()
            self._mentions[key] = len(
                {prefix for haystack, prefix in self._window_texts[(start, end)] if needle in haystack}
            )
        return self._mentions[key]

    def _messages_for(self, incidents: Sequence[Incident], high_water: int) -> list[MessageFacts]:
        lowest = min(i.messages_scanned_id for i in incidents)
        windows = [window_of(i, self.ctx.config) for i in incidents]
        start, end = min(w[0] for w in windows), max(w[1] for w in windows)
        columns = (
            col(Message.id),
            col(Message.provider),
            col(Message.stream),
            col(Message.provider_message_id),
            col(Message.channel),
            col(Message.thread_id),
            col(Message.author),
            col(Message.sent_at),
            col(Message.subject),
            col(Message.text_redacted),
            col(Message.meta),
            col(Message.redactions),
        )
        base = select(*columns).where(col(Message.id) > lowest, col(Message.id) <= high_water)
        rows = {
            r.id: r for r in self.session.execute(base.where(col(Message.sent_at).between(start, end))).all()
        }
        threads = sorted(
            {
                str(link["thread_id"])
                for i in incidents
                for link in (i.linked_conversations or [])
                if link.get("thread_id")
            }
        )
        for begin in range(0, len(threads), 1000):
            chunk = threads[begin : begin + 1000]
            query = base.where(col(Message.sent_at) >= start, col(Message.thread_id).in_(chunk))
            rows.update({r.id: r for r in self.session.execute(query).all()})
        self._redactions = {r.id: dict(r.redactions or {}) for r in rows.values()}
        return [
            MessageFacts(
                id=r.id,
                provider=r.provider,
                stream=r.stream,
                provider_message_id=r.provider_message_id,
                channel=r.channel,
                thread_id=r.thread_id,
                author=r.author,
                sent_at=r.sent_at,
                subject=r.subject,
                text=r.text_redacted or "",
                recipients=_recipients(r.meta or {}),
                attachments=tuple(str(f) for f in (r.meta or {}).get("files") or [] if f),
                channel_name=str((r.meta or {}).get("channel_name") or "") or None,
            )
            for r in sorted(rows.values(), key=lambda r: (r.sent_at, r.id))
        ]

    def _store_matches(
        self, incidents: Sequence[Incident], matches: Sequence[Any], messages: dict[int, MessageFacts]
    ) -> set[int]:
        if not matches:
            return set()
        by_id = {i.id: i for i in incidents}
        existing: set[tuple[int, str]] = {
            (row[0], row[1])
            for row in self.session.execute(
                select(col(TimelineEntry.incident_id), col(TimelineEntry.dedup_key)).where(
                    col(TimelineEntry.incident_id).in_(list(by_id)),
                    col(TimelineEntry.kind) == TimelineEntryKind.MESSAGE,
                )
            )
        }
        rows = []
        added: dict[int, list[int]] = {}
        for match in matches:
            key = (match.incident_id, f"message:{match.message_id}")
            if key in existing:
                continue
            existing.add(key)
            message = messages[match.message_id]
            rows.append(
                message_row(
                    match.incident_id,
                    message,
                    match,
                    self._redactions.get(message.id, {}),
                    author_name=self.ctx.identities.name_of(message.author),
                    channel_name=message.channel_name,
                )
            )
            added.setdefault(match.incident_id, []).append(message.id)
            incident = by_id[match.incident_id]
            link = message.thread_key or message.own_key
            links = list(incident.linked_conversations or [])
            if len(links) < MAX_LINKED_CONVERSATIONS and not any(
                (known.get("provider"), known.get("channel") or "", known.get("thread_id")) == link
                for known in links
            ):
                links.append(
                    {
                        "provider": link[0],
                        "channel": link[1],
                        "thread_id": link[2],
                        "via": f"message #{message.id}",
                    }
                )
                incident.linked_conversations = links
        insert_rows(self.session, rows)
        for incident_id, message_ids in added.items():
            incident = by_id[incident_id]
            incident.message_count = (incident.message_count or 0) + len(message_ids)
            incident.updated_at = self.ctx.now
            self.session.add(incident)
        record_many(
            self.session,
            [
                AuditEntry(
                    SYSTEM_ACTOR,
                    AuditAction.INCIDENT_CONVERSATIONS_LINKED,
                    "incident",
                    incident_id,
                    {"message_ids": message_ids},
                    at=self.ctx.now,
                )
                for incident_id, message_ids in added.items()
            ],
        )
        return set(added)


def move_incident_contents(session: Session, source_id: int, target_id: int) -> None:
    """Findings and message entries of `source_id` now belong to `target_id` (a merge)."""
    session.execute(
        update(Finding).where(col(Finding.incident_id) == source_id).values(incident_id=target_id)
    )
    target_keys = set(
        session.execute(
            select(col(TimelineEntry.dedup_key)).where(
                col(TimelineEntry.incident_id) == target_id, col(TimelineEntry.dedup_key).is_not(None)
            )
        ).scalars()
    )
    for entry in session.execute(
        select(TimelineEntry).where(
            col(TimelineEntry.incident_id) == source_id,
            col(TimelineEntry.kind).in_((TimelineEntryKind.MESSAGE, TimelineEntryKind.NOTE)),
        )
    ).scalars():
        if entry.dedup_key and entry.dedup_key in target_keys:
            continue
        entry.incident_id = target_id
        entry.body = {**(entry.body or {}), "moved_from": source_id}
        session.add(entry)
    session.flush()
    session.execute(
        delete(TimelineEntry).where(
            col(TimelineEntry.incident_id) == source_id,
            col(TimelineEntry.kind).in_((TimelineEntryKind.FINDING, TimelineEntryKind.EVIDENCE)),
        )
    )


_NEW_INCIDENT_DEFAULTS: dict[str, Any] = {
    "incident_type": "",
    "status": IncidentStatus.NEW.value,
    "priority": "P4",
    "priority_factors": {},
    "severity": Severity.MEDIUM.value,
    "summary": "",
    "entities": {},
    "root_cause": "",
    "lessons": "",
    "impact": "",
    "linked_conversations": [],
    "notifications": {},
    "created_by": SYSTEM_ACTOR.name,
    "finding_count": 0,
    "evidence_count": 0,
    "message_count": 0,
    "messages_scanned_id": 0,
}


_NEW_INCIDENT_CONTAINERS = [
    (name, type(value)) for name, value in _NEW_INCIDENT_DEFAULTS.items() if isinstance(value, dict | list)
]


def _open_incident(row: Any, rules: tuple[str, ...] = (), tenant: str = "") -> OpenIncident:
    """An open incident (a row or an IncidentState) as the grouping sees it."""
    return OpenIncident(
        id=row.id,
        keys=tuple(row.keys or ()),
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        auto_mergeable=row.status == IncidentStatus.NEW
        and not row.assignee
        and row.created_by == SYSTEM_ACTOR.name,
        rules=rules,
        tenant=tenant,
    )


@dataclass
class _Round:
    """One grouping round, as the next round needs it.

    A finding left over (it could not open an incident and joined none) is grouped again only
    when something it could meet changed: an incident sharing one of its keys (or broad set
    members) was joined, created, merged or refreshed, a finding assigned in the round named one
    of its keys, or its own facts changed (a key found common since, a mass change no longer
    holding it back); or transitively, through a finding that is grouped again. The others would
    see what they saw last round and stay in no incident: they are left out, with the same plan."""

    open: dict[int, OpenIncident]
    touched: set[int]
    assigned_keys: set[str]
    facts: dict[int, FindingFacts]
    ignored: dict[int, dict[str, str]]
    held: dict[int, dict[str, Any]]
    common: set[str]

    def reached(
        self, facts: dict[int, FindingFacts], open_incidents: Sequence[OpenIncident], changed: set[int]
    ) -> set[int]:
        """The ids among `facts` that this round must group again."""
        now = {i.id: i for i in open_incidents}
        seeds = set(self.assigned_keys)
        for incident_id in self.open.keys() | now.keys():
            before, after = self.open.get(incident_id), now.get(incident_id)
            if incident_id in self.touched or before != after:
                seeds.update(before.keys if before else ())
                seeds.update(after.keys if after else ())
        by_key: dict[str, list[int]] = {}
        for fact in facts.values():
            for key in _reach_keys(fact):
                by_key.setdefault(key, []).append(fact.id)
        picked: set[int] = set()
        todo = [f for f in changed if f in facts]
        for key in seeds:
            todo.extend(by_key.get(key, ()))
        seen_keys = set(seeds)
        while todo:
            finding_id = todo.pop()
            if finding_id in picked:
                continue
            picked.add(finding_id)
            for key in _reach_keys(facts[finding_id]):
                if key not in seen_keys:
                    seen_keys.add(key)
                    todo.extend(by_key.get(key, ()))
        return picked


def _reach_keys(fact: FindingFacts) -> Iterable[str]:
    """The keys by which a finding meets incidents and other findings (its broad set as incidents
    keep it)."""
    yield from fact.keys
    for key in fact.broad:
        yield f"{BROAD_PREFIX}{key}"


def _reachable(incidents: Sequence[OpenIncident], facts: Sequence[FindingFacts]) -> list[OpenIncident]:
    """The open incidents a finding can join: those sharing a key or a broad set member with one
    of `facts` (the others are never a candidate; left out, the grouping is the same, cheaper)."""
    keys = {k for f in facts for k in f.keys}
    broad = {f"{BROAD_PREFIX}{k}" for f in facts for k in f.broad}
    return [i for i in incidents if any(k in keys or k in broad for k in i.keys)]


def _broad_note(broad: Sequence[str]) -> str:
    counts: dict[str, int] = {}
    for key in broad:
        word = {"file": "files"}.get(key.partition(":")[0], "people")
        counts[word] = counts.get(word, 0) + 1
    named = " and ".join(f"{n} {word}" for word, n in sorted(counts.items()))
    return f"it names {named}, too many to group by"


def _explain_ignored(group: Group, ignored: dict[int, dict[str, str]]) -> None:
    for reason in group.reasons:
        skipped = ignored.get(reason.get("finding_id", -1))
        if skipped and "ignored_keys" not in reason:
            reason["ignored_keys"] = sorted(skipped)
            reason["text"] += "; ignored " + "; ".join(skipped.values())


def _recipients(meta: dict[str, Any]) -> tuple[str, ...]:
    """Addresses from a message's To/Cc, whatever shape the provider gave them in."""
    found: list[str] = []
    for name in ("to", "cc", "recipients", "toRecipients", "ccRecipients"):
        values = meta.get(name) or []
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, dict):
                value = (
                    value.get("address")
                    or value.get("email")
                    or (value.get("emailAddress") or {}).get("address")
                )
            if isinstance(value, str) and value:
                found.extend(address for _, address in getaddresses([value]) if "@" in address)
    return tuple(found)


def _as_aware(value: datetime) -> datetime:
    from core.clock import as_utc

    return as_utc(value)
