"""The typed lines of an incident's timeline, and how each kind is built from the record behind it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from core.models.finding import Finding
from core.models.incident import TimelineEntry
from timeline.conversations import ConversationMatch, MessageFacts
from timeline.evidence import EvidenceEntry

EXCERPT_CHARS = 1000
HIDDEN_EXCERPT = "[conversation excerpt hidden: your role may not view conversations]"


class EntryKind(StrEnum):
    EVIDENCE = "evidence"
    FINDING = "finding"
    MESSAGE = "message"
    STATUS = "status"
    ASSIGNMENT = "assignment"
    NOTE = "note"
    PRIORITY = "priority"
    MERGE = "merge"
    SPLIT = "split"
    LINK = "link"
    REMEDIATION = "remediation"
    POSTMORTEM = "postmortem"


def finding_entry(incident_id: int, finding: Finding, reason: str | None = None) -> TimelineEntry:
    entry = TimelineEntry(incident_id=incident_id, kind=EntryKind.FINDING, dedup_key=f"finding:{finding.id}")
    update_finding_entry(entry, finding, reason)
    return entry


def update_finding_entry(entry: TimelineEntry, finding: Finding, reason: str | None = None) -> None:
    entry.at = finding.first_seen
    entry.source = f"{finding.provider or 'tenant'}/{finding.kind}"
    entry.title = f"[{finding.severity}] {finding.title}"[:1000]
    entry.count = finding.count
    entry.ref_type = "finding"
    entry.ref_id = str(finding.id)
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
    previous = dict(entry.body or {})
    if reason or previous.get("grouping"):
        body["grouping"] = reason or previous.get("grouping")
    entry.body = body


def evidence_entry(incident_id: int, evidence: EvidenceEntry, finding_ids: list[int]) -> TimelineEntry:
    return TimelineEntry(
        incident_id=incident_id,
        at=evidence.first_at,
        kind=EntryKind.EVIDENCE,
        source=f"{evidence.provider}/{evidence.stream}",
        title=evidence.title[:1000],
        body={**evidence.body(), "finding_ids": finding_ids[:20]},
        ref_type="event",
        ref_id=str(evidence.sample_ids[0]) if evidence.sample_ids else None,
        count=evidence.count,
        actor=(evidence.fixed.get("actor") or None) and str(evidence.fixed.get("actor"))[:200],
    )


def message_entry(
    incident_id: int, message: MessageFacts, match: ConversationMatch, redactions: dict[str, int]
) -> TimelineEntry:
    where = message.channel or message.stream
    excerpt = message.text[:EXCERPT_CHARS]
    # The title carries no message text, so a role that may not read conversations still gets it.
    return TimelineEntry(
        incident_id=incident_id,
        at=message.sent_at,
        kind=EntryKind.MESSAGE,
        source=f"{message.provider}/{message.stream}",
        title=f"message from {message.author or 'someone'} in {where}"[:1000],
        body={
            "message_id": message.id,
            "channel": message.channel,
            "thread_id": message.thread_id,
            "author": message.author,
            "subject": message.subject,
            "excerpt": excerpt,
            "redactions": redactions,
            "score": match.score,
            "reasons": match.reasons,
        },
        ref_type="message",
        ref_id=str(message.id),
        actor=(message.author or None) and message.author[:200],
        dedup_key=f"message:{message.id}",
    )


def simple_entry(
    incident_id: int,
    kind: EntryKind,
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
