"""What analysts do to an incident: move it through its lifecycle, assign, note, merge, split, link.

new → triaged → contained → resolved → closed, plus false_positive and duplicate; a resolved,
closed, false-positive or duplicate incident can be reopened (back to triaged). Every operation
writes a timeline entry and an audit record in the same transaction as the change, timestamps it
(the MTT* metrics are computed from those timestamps), and takes the incident's row lock first.
Free text (notes, root cause, lessons) goes through redaction like any conversation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session, col

from core.audit import Actor, AuditAction, record
from core.clock import utcnow
from core.db import Database
from core.errors import IncidentNotFoundError
from core.models.enums import IncidentStatus, TimelineEntryKind
from core.models.finding import Finding
from core.models.incident import Incident
from core.models.noise import GroupingLesson
from core.redaction import redact, redact_typed
from timeline.assembly import BuildContext, append_reasons, refresh_incidents
from timeline.build import move_incident_contents
from timeline.config import TimelineConfig
from timeline.entities import IdentityIndex
from timeline.entries import simple_entry
from timeline.errors import InvalidTransitionError, MergeError, TimelineError

S = IncidentStatus
ALLOWED: dict[IncidentStatus, frozenset[IncidentStatus]] = {
    S.NEW: frozenset({S.TRIAGED, S.CONTAINED, S.RESOLVED, S.FALSE_POSITIVE, S.DUPLICATE}),
    S.TRIAGED: frozenset({S.CONTAINED, S.RESOLVED, S.FALSE_POSITIVE, S.DUPLICATE}),
    S.CONTAINED: frozenset({S.RESOLVED, S.TRIAGED, S.FALSE_POSITIVE}),
    S.RESOLVED: frozenset({S.CLOSED, S.TRIAGED}),
    S.FALSE_POSITIVE: frozenset({S.CLOSED, S.TRIAGED}),
    S.DUPLICATE: frozenset({S.TRIAGED}),
    S.CLOSED: frozenset({S.TRIAGED}),
}
TERMINAL = frozenset({S.CLOSED, S.FALSE_POSITIVE, S.DUPLICATE})
MAX_TEXT = 20_000


def _locked(session: Session, incident_id: int) -> Incident:
    incident = session.get(Incident, incident_id, with_for_update=True)
    if incident is None:
        raise IncidentNotFoundError(
            f"incident {incident_id} does not exist; list incidents with `tenantguard incidents list`"
        )
    return incident


def state_of(incident: Incident) -> dict[str, Any]:
    """What an incident's audit records keep as its state before and after a change."""
    return {
        "status": incident.status,
        "assignee": incident.assignee,
        "priority": incident.priority,
        "merged_into_id": incident.merged_into_id,
    }


def _parse_status(value: str) -> IncidentStatus:
    try:
        return IncidentStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in IncidentStatus)
        raise InvalidTransitionError(f"unknown status {value!r}; use one of: {allowed}") from None


def _clean_text(text: str, what: str) -> tuple[str, dict[str, int]]:
    if not text or not text.strip():
        raise TimelineError(f"{what} is empty; write what happened")
    if len(text) > MAX_TEXT:
        raise TimelineError(f"{what} is {len(text)} characters; keep it under {MAX_TEXT}")
    cleaned = redact(text.strip())
    return cleaned.text, cleaned.counts


def _stamp(incident: Incident, to: IncidentStatus, at: datetime) -> None:
    """Set the lifecycle timestamps the metrics read (first time only, except on reopen)."""
    if incident.acknowledged_at is None:
        incident.acknowledged_at = at
    if to is S.TRIAGED and incident.status in (S.RESOLVED, S.CLOSED, S.FALSE_POSITIVE, S.DUPLICATE):
        incident.resolved_at = None  # reopened: it was not resolved after all
        incident.closed_at = None
        incident.merged_into_id = None
    if incident.triaged_at is None:
        incident.triaged_at = at
    if to is S.CONTAINED and incident.contained_at is None:
        incident.contained_at = at
    if to is S.RESOLVED:
        incident.contained_at = incident.contained_at or at
        incident.resolved_at = at
    if to in (S.CLOSED, S.FALSE_POSITIVE):
        incident.closed_at = at
        if to is S.FALSE_POSITIVE:
            incident.resolved_at = incident.resolved_at or at


def transition(
    db: Database,
    incident_id: int,
    to: str,
    *,
    actor: Actor,
    note: str | None = None,
    duplicate_of: int | None = None,
    at: datetime | None = None,
) -> Incident:
    """Move an incident to status `to`; raises InvalidTransitionError when the lifecycle forbids it."""
    with db.session() as session:
        return transition_in(
            session, incident_id, to, actor=actor, note=note, duplicate_of=duplicate_of, at=at
        )


def transition_in(
    session: Session,
    incident_id: int,
    to: str,
    *,
    actor: Actor,
    note: str | None = None,
    duplicate_of: int | None = None,
    at: datetime | None = None,
) -> Incident:
    """`transition` in the caller's transaction (its audit record and timeline entry too)."""
    target = _parse_status(to)
    when = at or utcnow()
    incident = _locked(session, incident_id)
    before = state_of(incident)
    current = IncidentStatus(incident.status)
    if target not in ALLOWED[current]:
        allowed = ", ".join(sorted(s.value for s in ALLOWED[current])) or "nothing"
        raise InvalidTransitionError(
            f"incident {incident_id} is {current.value}: it can move to {allowed}, not {target.value}"
        )
    if target is S.DUPLICATE:
        if duplicate_of is None or duplicate_of == incident_id:
            raise InvalidTransitionError(
                f"marking incident {incident_id} a duplicate needs the incident it duplicates "
                "(--of ID), or merge the two instead"
            )
        if session.get(Incident, duplicate_of) is None:
            raise IncidentNotFoundError(f"incident {duplicate_of} (the original) does not exist")
        incident.merged_into_id = duplicate_of
    text, counts = _clean_text(note, "the note") if note else ("", {})
    _stamp(incident, target, when)
    incident.status = target
    incident.updated_at = when
    session.add(incident)
    body: dict[str, Any] = {"from": current.value, "to": target.value}
    if text:
        body["note"] = text
        body["redactions"] = counts
    if duplicate_of is not None:
        body["duplicate_of"] = duplicate_of
    session.add(
        simple_entry(
            incident_id,
            TimelineEntryKind.STATUS,
            f"status {current.value} → {target.value}",
            actor=actor.name,
            at=when,
            body=body,
        )
    )
    record(
        session,
        actor=actor,
        action=AuditAction.INCIDENT_TRANSITIONED,
        object_type="incident",
        object_id=incident_id,
        details={k: v for k, v in body.items() if k != "note"} | {"has_note": bool(text)},
        before=before,
        after=state_of(incident),
        at=when,
    )
    return incident


def assign(
    db: Database, incident_id: int, assignee: str | None, *, actor: Actor, at: datetime | None = None
) -> Incident:
    """Give the incident to `assignee` (None: unassign). Assigning acknowledges it."""
    when = at or utcnow()
    with db.session() as session:
        incident = _locked(session, incident_id)
        before = state_of(incident)
        previous = incident.assignee
        incident.assignee = redact_typed(assignee.strip()[:200]) if assignee else None
        if incident.assignee and incident.acknowledged_at is None:
            incident.acknowledged_at = when
        incident.updated_at = when
        session.add(incident)
        title = f"assigned to {incident.assignee}" if incident.assignee else "unassigned"
        body = {"from": previous, "to": incident.assignee}
        session.add(
            simple_entry(
                incident_id, TimelineEntryKind.ASSIGNMENT, title, actor=actor.name, at=when, body=body
            )
        )
        record(
            session,
            actor=actor,
            action=AuditAction.INCIDENT_ASSIGNED,
            object_type="incident",
            object_id=incident_id,
            details=body,
            before=before,
            after=state_of(incident),
            at=when,
        )
        return incident


def add_note(db: Database, incident_id: int, text: str, *, actor: Actor, at: datetime | None = None) -> int:
    """Add an analyst's note (redacted like a message); returns the timeline entry id."""
    when = at or utcnow()
    cleaned, counts = _clean_text(text, "the note")
    with db.session() as session:
        incident = _locked(session, incident_id)
        incident.updated_at = when
        session.add(incident)
        entry = simple_entry(
            incident_id,
            TimelineEntryKind.NOTE,
            f"note by {actor}",
            actor=actor.name,
            at=when,
            body={"text": cleaned, "redactions": counts},
        )
        session.add(entry)
        session.flush()
        record(
            session,
            actor=actor,
            action=AuditAction.INCIDENT_NOTE_ADDED,
            object_type="incident",
            object_id=incident_id,
            details={"entry_id": entry.id, "chars": len(cleaned), "redactions": counts},
            at=when,
        )
        return entry.id or 0


def set_postmortem(
    db: Database,
    incident_id: int,
    *,
    actor: Actor,
    root_cause: str | None = None,
    lessons: str | None = None,
    impact: str | None = None,
    at: datetime | None = None,
) -> Incident:
    """Record the report's human fields (root cause, lessons, impact)."""
    when = at or utcnow()
    fields = {"root_cause": root_cause, "lessons": lessons, "impact": impact}
    given = {
        name: _clean_text(value, name.replace("_", " "))[0]
        for name, value in fields.items()
        if value is not None
    }
    if not given:
        raise TimelineError("nothing to record: give root cause, lessons or impact")
    with db.session() as session:
        incident = _locked(session, incident_id)
        before = {name: getattr(incident, name) for name in given}
        for name, value in given.items():
            setattr(incident, name, value)
        incident.updated_at = when
        session.add(incident)
        title = "postmortem updated: " + ", ".join(n.replace("_", " ") for n in given)
        session.add(
            simple_entry(
                incident_id,
                TimelineEntryKind.POSTMORTEM,
                title,
                actor=actor.name,
                at=when,
                body={"fields": sorted(given)},
            )
        )
        record(
            session,
            actor=actor,
            action=AuditAction.INCIDENT_POSTMORTEM_UPDATED,
            object_type="incident",
            object_id=incident_id,
            details={"fields": sorted(given)},
            before=before,
            after=given,
            at=when,
        )
        return incident


def link_conversation(
    db: Database,
    incident_id: int,
    *,
    provider: str,
    channel: str,
    thread_id: str | None = None,
    actor: Actor,
    at: datetime | None = None,
) -> Incident:
    """Link a channel (or one thread of it): its messages join the incident at the next build."""
    when = at or utcnow()
    if not channel.strip():
        raise TimelineError("link needs a channel (and optionally a thread id)")
    channel = redact_typed(channel)
    thread_id = redact_typed(thread_id) if thread_id else thread_id
    with db.session() as session:
        incident = _locked(session, incident_id)
        before = list(incident.linked_conversations or [])
        link = {"provider": provider, "channel": channel.strip(), "thread_id": thread_id, "via": actor.name}
        links = [
            known
            for known in incident.linked_conversations or []
            if (known.get("provider"), known.get("channel"), known.get("thread_id"))
            != (provider, link["channel"], thread_id)
        ]
        incident.linked_conversations = [*links, link]
        incident.messages_scanned_id = 0
        incident.updated_at = when
        session.add(incident)
        where = f"{provider} {channel}" + (f" thread {thread_id}" if thread_id else "")
        session.add(
            simple_entry(
                incident_id,
                TimelineEntryKind.LINK,
                f"linked conversation {where}",
                actor=actor.name,
                at=when,
                body=link,
            )
        )
        record(
            session,
            actor=actor,
            action=AuditAction.INCIDENT_CONVERSATION_LINKED,
            object_type="incident",
            object_id=incident_id,
            details=link,
            before={"linked_conversations": before},
            after={"linked_conversations": incident.linked_conversations},
            at=when,
        )
        return incident


def _context(session: Session, settings: Any, actor: Actor, when: datetime) -> BuildContext:
    return BuildContext(
        TimelineConfig.from_settings(settings), IdentityIndex.load(session), when, actor=actor
    )


def merge(
    db: Database,
    target_id: int,
    source_ids: Iterable[int],
    *,
    actor: Actor,
    reason: str = "",
    settings: Any = None,
    at: datetime | None = None,
) -> Incident:
    """Fold `source_ids` into `target_id`: their findings and messages move, they become duplicates."""
    reason = redact_typed(reason)
    sources = sorted(set(source_ids) - {target_id})
    if not sources:
        raise MergeError(f"nothing to merge into incident {target_id}: give other incident ids")
    when = at or utcnow()
    with db.session() as session:
        target = _locked(session, target_id)
        before = {str(target_id): state_of(target)}
        if target.status in TERMINAL:
            raise MergeError(
                f"incident {target_id} is {target.status}; reopen it or merge into another incident"
            )
        for source_id in sources:
            source = _locked(session, source_id)
            before[str(source_id)] = state_of(source)
            if source.status == S.DUPLICATE:
                raise MergeError(
                    f"incident {source_id} is already a duplicate of incident {source.merged_into_id}"
                )
            move_incident_contents(session, source_id, target_id)
            previous = source.status
            source.status = S.DUPLICATE
            source.merged_into_id = target_id
            source.closed_at = source.closed_at or when
            source.updated_at = when
            session.add(source)
            target.linked_conversations = _union_links(
                target.linked_conversations, source.linked_conversations
            )
            session.add(
                simple_entry(
                    source_id,
                    TimelineEntryKind.MERGE,
                    f"merged into incident #{target_id} by {actor}" + (f": {reason}" if reason else ""),
                    actor=actor.name,
                    at=when,
                    body={"into": target_id, "from_status": previous, "reason": reason},
                )
            )
        target.messages_scanned_id = 0
        append_reasons(
            target,
            [
                {
                    "decision": "merged",
                    "incidents": sources,
                    "by": actor.name,
                    "text": f"merged incidents {sources} by {actor}: {reason}",
                }
            ],
        )
        session.add(
            simple_entry(
                target_id,
                TimelineEntryKind.MERGE,
                f"incidents {', '.join(f'#{s}' for s in sources)} merged into this one by {actor}"
                + (f": {reason}" if reason else ""),
                actor=actor.name,
                at=when,
                body={"merged": sources, "reason": reason},
            )
        )
        refresh_incidents(session, [target], _context(session, settings, actor, when), rebuild=[target_id])
        record(
            session,
            actor=actor,
            action=AuditAction.INCIDENT_MERGED,
            object_type="incident",
            object_id=target_id,
            details={"merged": sources, "reason": reason, "automatic": False},
            before=before,
            after={key: state_of(session.get(Incident, int(key)) or target) for key in before},
            at=when,
        )
        return target


def split(
    db: Database,
    incident_id: int,
    finding_ids: Sequence[int],
    *,
    actor: Actor,
    reason: str = "",
    settings: Any = None,
    at: datetime | None = None,
) -> Incident:
    """Move `finding_ids` out of `incident_id` into a new incident, which is returned."""
    reason = redact_typed(reason)
    wanted = sorted(set(finding_ids))
    if not wanted:
        raise MergeError("split needs the ids of the findings to move to the new incident")
    when = at or utcnow()
    with db.session() as session:
        original = _locked(session, incident_id)
        before = state_of(original)
        present = set(
            session.execute(select(col(Finding.id)).where(col(Finding.incident_id) == incident_id)).scalars()
        )
        missing = [f for f in wanted if f not in present]
        if missing:
            raise MergeError(
                f"findings {missing} are not in incident {incident_id}; see `tenantguard incidents show {incident_id}`"
            )
        if len(wanted) == len(present):
            raise MergeError(
                f"that would move every finding of incident {incident_id}; leave at least one behind"
            )
        created = Incident(
            title=f"split from incident #{incident_id}",
            severity=original.severity,
            first_seen=original.first_seen,
            last_seen=original.last_seen,
            created_at=when,
            updated_at=when,
            created_by=actor.name,
        )
        text = f"split from incident #{incident_id} by {actor}" + (f": {reason}" if reason else "")
        append_reasons(
            created,
            [
                {"decision": "split", "finding_id": f, "from": incident_id, "by": actor.name, "text": text}
                for f in wanted
            ],
        )
        session.add(created)
        session.flush()
        new_id = created.id or 0
        session.execute(update(Finding).where(col(Finding.id).in_(wanted)).values(incident_id=new_id))
        append_reasons(
            original,
            [
                {
                    "decision": "split",
                    "findings": wanted,
                    "to": new_id,
                    "by": actor.name,
                    "text": f"findings {wanted} split off to incident #{new_id} by {actor}: {reason}",
                }
            ],
        )
        original.messages_scanned_id = 0
        for target, title in (
            (
                incident_id,
                f"findings {', '.join(f'#{f}' for f in wanted)} split off to incident #{new_id} by {actor}",
            ),
            (new_id, text),
        ):
            session.add(
                simple_entry(
                    target,
                    TimelineEntryKind.SPLIT,
                    title,
                    actor=actor.name,
                    at=when,
                    body={"findings": wanted, "reason": reason},
                )
            )
        ctx = _context(session, settings, actor, when)
        lessons = _teach(session, ctx, incident_id, new_id, wanted, present, actor, reason, when)
        refresh_incidents(session, [original, created], ctx, rebuild=[incident_id, new_id])
        record(
            session,
            actor=actor,
            action=AuditAction.INCIDENT_SPLIT,
            object_type="incident",
            object_id=incident_id,
            details={
                "findings": wanted,
                "from": incident_id,
                "to": new_id,
                "reason": reason,
                "taught": lessons,
            },
            before={"incident": before, "finding_ids": wanted},
            after={
                "incident": state_of(original),
                "new_incident_id": new_id,
                "new_incident": state_of(created),
            },
            at=when,
        )
        return created


def _teach(
    session: Session,
    ctx: BuildContext,
    incident_id: int,
    new_id: int,
    moved: Sequence[int],
    present: set[int],
    actor: Actor,
    reason: str,
    when: datetime,
) -> list[dict[str, Any]]:
    """Remember, per key the split findings shared with those left behind, that findings of their
    rules are not grouped by it again (timeline.grouping.Lesson); returns what was learned."""
    rows = session.execute(
        select(col(Finding.id), col(Finding.rule_id), col(Finding.entities)).where(
            col(Finding.id).in_(sorted(present))
        )
    ).all()
    apart = [r for r in rows if r.id in set(moved)]
    kept = [r for r in rows if r.id not in set(moved)]

    def keys(side: Sequence[Any]) -> set[str]:
        return {k for r in side for k in ctx.keys_of(r.id, r.entities).keys}

    rules_apart = sorted({r.rule_id for r in apart})
    rules_kept = sorted({r.rule_id for r in kept})
    if set(rules_apart) & set(rules_kept):
        return []  # the same rule on both sides: no rule pair to keep apart
    learned = []
    for key in sorted(keys(apart) & keys(kept)):
        session.add(
            GroupingLesson(
                key=key,
                rules_apart=rules_apart,
                rules_kept=rules_kept,
                incident_id=incident_id,
                split_incident_id=new_id,
                created_by=actor.name,
                reason=reason[:500],
                created_at=when,
            )
        )
        learned.append({"key": key, "rules_apart": rules_apart, "rules_kept": rules_kept})
    return learned


def _union_links(
    mine: list[dict[str, Any]] | None, theirs: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    seen = set()
    result = []
    for link in [*(mine or []), *(theirs or [])]:
        key = (link.get("provider"), link.get("channel"), link.get("thread_id"))
        if key not in seen:
            seen.add(key)
            result.append(link)
    return result
