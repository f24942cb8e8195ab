"""Writing findings from posture, drift, anomaly and identity analysis: one draft type, one upsert.

A draft is keyed by its dedup key: while an open finding with that key was last seen within the
dedup period, a new draft updates it (last_seen, count, evidence, context) instead of adding a
row, so a setting that stays wrong, or a burst of spray attempts, is one finding.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from core.clock import utcnow
from core.models import Finding, FindingStatus

MAX_EVIDENCE = 500


@dataclass(frozen=True)
class FindingDraft:
    """A finding before it is stored; `dedup_key` decides whether it merges into an open one."""

    rule_id: str
    kind: str
    severity: str
    title: str
    description: str
    dedup_key: str
    first_seen: datetime
    last_seen: datetime
    provider: str | None = None
    confidence: float = 1.0
    entities: dict[str, list[str]] = field(default_factory=dict)
    evidence_event_ids: tuple[int, ...] = ()
    mitre: tuple[str, ...] = ()
    context: dict[str, Any] = field(default_factory=dict)
    runbook: str = ""


def _merge_entities(old: dict[str, list[str]], new: dict[str, list[str]]) -> dict[str, list[str]]:
    merged = {key: list(values) for key, values in old.items()}
    for key, values in new.items():
        bucket = merged.setdefault(key, [])
        bucket.extend(value for value in values if value not in bucket)
    return merged


def upsert_finding(
    session: Session,
    draft: FindingDraft,
    *,
    dedup_period: timedelta | None = timedelta(hours=24),
    count_repeats: bool = True,
) -> tuple[Finding, bool]:
    """Store `draft`, merging it into an open finding with the same dedup key; returns (row, created)."""
    query = select(Finding).where(Finding.dedup_key == draft.dedup_key, Finding.status == FindingStatus.OPEN)
    if dedup_period is not None:
        query = query.where(col(Finding.last_seen) >= draft.first_seen - dedup_period)
    existing = session.exec(query.order_by(col(Finding.last_seen).desc()).limit(1)).first()
    if existing is not None:
        existing.last_seen = max(existing.last_seen, draft.last_seen)
        existing.first_seen = min(existing.first_seen, draft.first_seen)
        if count_repeats:
            existing.count += 1
        evidence = list(existing.evidence_event_ids)
        evidence.extend(e for e in draft.evidence_event_ids if e not in evidence)
        existing.evidence_event_ids = evidence[:MAX_EVIDENCE]
        existing.entities = _merge_entities(existing.entities, draft.entities)
        existing.context = {**existing.context, **draft.context}
        existing.severity = draft.severity
        existing.confidence = max(existing.confidence, draft.confidence)
        existing.title = draft.title
        existing.description = draft.description
        existing.updated_at = utcnow()
        session.add(existing)
        return existing, False
    finding = Finding(
        rule_id=draft.rule_id,
        kind=draft.kind,
        severity=draft.severity,
        confidence=draft.confidence,
        title=draft.title[:500],
        description=draft.description,
        provider=draft.provider,
        entities=draft.entities,
        evidence_event_ids=list(draft.evidence_event_ids)[:MAX_EVIDENCE],
        first_seen=draft.first_seen,
        last_seen=draft.last_seen,
        dedup_key=draft.dedup_key[:500],
        mitre=list(draft.mitre),
        context=draft.context,
        runbook=draft.runbook,
    )
    session.add(finding)
    return finding, True


def resolve_findings(session: Session, dedup_keys: Iterable[str], *, reason: str) -> int:
    """Mark open findings with these keys resolved (the setting is back to its expected value)."""
    keys = list(dedup_keys)
    if not keys:
        return 0
    resolved = 0
    for start in range(0, len(keys), 500):
        rows = session.exec(
            select(Finding).where(
                col(Finding.dedup_key).in_(keys[start : start + 500]), Finding.status == FindingStatus.OPEN
            )
        ).all()
        for finding in rows:
            finding.status = FindingStatus.RESOLVED
            finding.context = {
                **finding.context,
                "resolved_reason": reason,
                "resolved_at": utcnow().isoformat(),
            }
            finding.updated_at = utcnow()
            session.add(finding)
            resolved += 1
    return resolved
