"""The typed lines of an incident's timeline, and how each kind is built from the record behind it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session

from core.bulk import insert_many
from core.clock import utcnow
from core.models.enums import TimelineEntryKind
from core.models.finding import Finding
from core.models.incident import TimelineEntry
from timeline.conversations import ConversationMatch, MessageFacts
from timeline.evidence import EvidenceEntry

EXCERPT_CHARS = 1000
HIDDEN_EXCERPT = "[conversation excerpt hidden: your role may not view conversations]"


EntryRow = dict[str, Any]


def entry_row(
    incident_id: int, kind: TimelineEntryKind, at: datetime, source: str, title: str, **fields: Any
) -> EntryRow:
    """A TimelineEntry as a plain row for bulk inserts (building thousands of models is slow)."""
    return {
        "incident_id": incident_id,
        "kind": kind.value,
        "at": at,
        "source": source[:100],
        "title": title[:1000],
        "body": fields.get("body", {}),
        "ref_type": fields.get("ref_type"),
        "ref_id": fields.get("ref_id"),
        "count": fields.get("count", 1),
        "actor": (fields.get("actor") or None) and str(fields["actor"])[:200],
        "dedup_key": fields.get("dedup_key"),
        "created_at": fields.get("created_at") or utcnow(),
    }


def insert_rows(session: Session, rows: Sequence[EntryRow]) -> None:
    """Insert many entries (`entry_row`s) in one executemany, after what the session holds."""
    if rows:
        session.flush()
        insert_many(session.connection(), TimelineEntry.__table__, rows)  # type: ignore[attr-defined]


def finding_fields(
    finding: Finding, reason: str | None = None, previous_body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The columns of a finding's entry that follow the finding (it may be updated by its detector)."""
    body = {
        "finding_id": finding.id,
        "rule_id": finding.rule_id,
        "kind": finding.kind,
        "severity": finding.severity,
        "confidence": finding.confidence,
        "count": finding.count,
        "last_seen": finding.last_seen.isoformat(),
        "mitre": list(finding.mitre or []),
        "evidence_events": len(finding.evidence_event_ids or []),
    }
    grouping = reason or (previous_body or {}).get("grouping")
    if grouping:
        body["grouping"] = grouping
    return {
        "at": finding.first_seen,
        "source": f"{finding.provider or 'tenant'}/{finding.kind}"[:100],
        "title": f"[{finding.severity}] {finding.title}"[:1000],
        "count": finding.count,
        "ref_type": "finding",
        "ref_id": str(finding.id),
        "body": body,
    }


def finding_row(incident_id: int, finding: Finding, reason: str | None = None) -> EntryRow:
    fields = finding_fields(finding, reason)
    return entry_row(
        incident_id,
        TimelineEntryKind.FINDING,
        fields.pop("at"),
        fields.pop("source"),
        fields.pop("title"),
        dedup_key=f"finding:{finding.id}",
        **fields,
    )


def evidence_row(incident_id: int, evidence: EvidenceEntry, finding_ids: list[int]) -> EntryRow:
    return entry_row(
        incident_id,
        TimelineEntryKind.EVIDENCE,
        evidence.first_at,
        f"{evidence.provider}/{evidence.stream}",
        evidence.title,
        body={**evidence.body(), "finding_ids": finding_ids[:20]},
        ref_type="event",
        ref_id=str(evidence.sample_ids[0]) if evidence.sample_ids else None,
        count=evidence.count,
        actor=evidence.fixed.get("actor"),
    )


def message_row(
    incident_id: int,
    message: MessageFacts,
    match: ConversationMatch,
    redactions: dict[str, int],
    *,
    author_name: str | None = None,
    channel_name: str | None = None,
) -> EntryRow:
    """A linked message's entry; the title names the author and channel in words when known
    (``author_name``, ``channel_name``), never by a raw Slack/Teams id alone."""
    where = channel_name or message.channel or message.stream
    if channel_name and message.channel and channel_name != message.channel:
        where = f"#{channel_name.lstrip('#')}"
    who = author_name or message.author or "someone"
    # The title carries no message text, so a role that may not read conversations still gets it.
    return entry_row(
        incident_id,
        TimelineEntryKind.MESSAGE,
        message.sent_at,
        f"{message.provider}/{message.stream}",
        f"message from {who} in {where}",
        body={
            "message_id": message.id,
            "channel": message.channel,
            "thread_id": message.thread_id,
            "author": message.author,
            "author_name": who,
            "channel_name": where,
            "subject": message.subject,
            "excerpt": message.text[:EXCERPT_CHARS],
            "redactions": redactions,
            "score": match.score,
            "reasons": match.reasons,
        },
        ref_type="message",
        ref_id=str(message.id),
        actor=message.author,
        dedup_key=f"message:{message.id}",
    )


def simple_entry(
    incident_id: int,
    kind: TimelineEntryKind,
    title: str,
    *,
    actor: str,
    at: datetime,
    body: dict[str, Any] | None = None,
    ref: tuple[str, str] | None = None,
) -> TimelineEntry:
    """Status changes, assignments, notes, priority changes, merges, splits, links."""
    return TimelineEntry(
        incident_id=incident_id,
        at=at,
        kind=kind,
        source="tenantguard",
        title=title[:1000],
        body=body or {},
        ref_type=ref[0] if ref else None,
        ref_id=ref[1] if ref else None,
        actor=actor[:200],
    )


def hide_excerpt(entry_body: dict[str, Any]) -> dict[str, Any]:
    """A message entry's body for a caller whose role may not read conversations."""
    hidden = {k: v for k, v in entry_body.items() if k not in ("excerpt", "subject", "reasons")}
    hidden["excerpt"] = HIDDEN_EXCERPT
    return hidden
