"""The one finding store: every detector (Sigma rules, correlations, anomaly, posture, drift,
identity) hands a `FindingDraft` to :func:`store_finding`, which inserts it or merges it into the
finding it continues, and writes the audit record in the caller's transaction.

One dedup rule (:func:`continued_finding`): a draft continues the newest finding with the same
rule and dedup key when
- the draft belongs to an alert window (`window_start`, Sigma and anomaly alerts): the finding of
  that same window, whatever its status (an alert that grows after triage is still that alert);
- otherwise (posture, drift, identity): an open one last seen within `dedup_period` (None: any
  time), so a setting that stays wrong is one finding until it is resolved.

Tenants: the dedup key of a detection finding (Sigma rules, correlations, anomaly) names its
tenant (:func:`tenant_key`, applied by the detection stage, `detectors.pipeline.by_tenant`), so two
tenants' findings with the same key (one IP spraying both) are two findings. The default tenant's
key is the key itself, exactly as stored before tenants: a single-tenant deployment keeps its keys,
and an upgraded one continues its open findings instead of opening them again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import func, literal
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from core.audit import Actor, AuditAction, AuditEntry, record_many
from core.audit import record as audit_record
from core.clock import as_utc, utcnow
from core.models import Finding, FindingStatus, Severity
from core.models.event import Event

# Stored evidence per finding (event ids); detectors may keep fewer, never more.
MAX_EVIDENCE = 200
MAX_TITLE = 500
MAX_DEDUP_KEY = 500
DEFAULT_DEDUP_PERIOD = timedelta(hours=24)
TENANT_PREFIX = "tenant:"


def tenant_key(tenant: str, dedup_key: str) -> str:
    """The dedup key of `dedup_key` in `tenant` (an organisation; ``""`` the default tenant, whose
    key is unchanged). The tenant comes first, so cutting a long key to MAX_DEDUP_KEY keeps it."""
    return f"{TENANT_PREFIX}{tenant}|{dedup_key}" if tenant else dedup_key


def tenant_of(dedup_key: str | None) -> str:
    """The tenant a stored dedup key names (``""``: the default tenant); see :func:`tenant_key`."""
    if not dedup_key or not dedup_key.startswith(TENANT_PREFIX):
        return ""
    return dedup_key[len(TENANT_PREFIX) :].partition("|")[0]


@dataclass(frozen=True)
class FindingDraft:
    """A finding as a detector concluded it, before it is stored.

    `count` is the occurrences this draft stands for: for a windowed alert the total so far in
    its window, otherwise one more observation. Evidence ids that are not stored event ids (an
    exploded record's ``"12#3"``) are not kept.
    """

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
    evidence_event_ids: tuple[int | str, ...] = ()
    count: int = 1
    window_start: float | None = None
    mitre: tuple[str, ...] = ()
    context: dict[str, Any] = field(default_factory=dict)
    runbook: str = ""


class StoredFinding(NamedTuple):
    finding: Finding
    created: bool


def continued_finding(
    session: Session, draft: FindingDraft, *, dedup_period: timedelta | None = DEFAULT_DEDUP_PERIOD
) -> Finding | None:
    """The stored finding `draft` continues, if any (the module docstring has the rule)."""
    query = select(Finding).where(
        Finding.dedup_key == draft.dedup_key[:MAX_DEDUP_KEY], Finding.rule_id == draft.rule_id
    )
    if draft.window_start is not None:
        existing = session.exec(query.order_by(col(Finding.first_seen).desc()).limit(1)).first()
        if existing is not None and (existing.context or {}).get("window_start") == draft.window_start:
            return existing
        return None
    query = query.where(Finding.status == FindingStatus.OPEN)
    if dedup_period is not None:
        query = query.where(col(Finding.last_seen) >= draft.first_seen - dedup_period)
    return session.exec(query.order_by(col(Finding.last_seen).desc()).limit(1)).first()


def store_finding(
    session: Session,
    draft: FindingDraft,
    *,
    actor: Actor,
    dedup_period: timedelta | None = DEFAULT_DEDUP_PERIOD,
    count_repeats: bool = True,
) -> StoredFinding:
    """Insert `draft` or merge it into the finding it continues; audit either in this transaction.

    `count_repeats=False` keeps `count` for unwindowed findings that are re-asserted on every
    evaluation (a failing posture check, a high-risk person) rather than seen again.
    """
    existing = continued_finding(session, draft, dedup_period=dedup_period)
    if existing is None:
        return StoredFinding(_create(session, draft, actor), True)
    _merge(session, existing, draft, actor, count_repeats)
    return StoredFinding(existing, False)


def store_findings(
    session: Session,
    drafts: Iterable[FindingDraft],
    *,
    actor: Actor,
    dedup_period: timedelta | None = DEFAULT_DEDUP_PERIOD,
    count_repeats: bool = True,
) -> list[StoredFinding]:
    """:func:`store_finding` for each draft in order — the same findings and the same audit
    records — in bulk: the findings the drafts may continue are read in one query, new ones are
    inserted in one flush, and the audit records are one chain append (`record_many`)."""
    drafts = list(drafts)
    if not drafts:
        return []
    candidates = _Candidates(session, drafts)
    stored: list[StoredFinding] = []
    changes: list[tuple[AuditAction, Finding, dict[str, Any]]] = []
    for draft in drafts:
        existing = candidates.continued(draft, dedup_period)
        if existing is None:
            finding = _new_finding(draft)
            session.add(finding)
            candidates.add(finding)
            changes.append((AuditAction.FINDING_CREATED, finding, _created_details(finding)))
            stored.append(StoredFinding(finding, True))
            continue
        first_seen = as_utc(existing.first_seen)
        details = _merge_fields(existing, draft, count_repeats)
        if as_utc(existing.first_seen) < first_seen:
            candidates.stale(existing)  # another stored finding may now be the newest of its key
        if details is not None:
            changes.append((AuditAction.FINDING_UPDATED, existing, details))
        stored.append(StoredFinding(existing, False))
    session.flush()
    record_many(
        session,
        (
            AuditEntry(actor, action, "finding", finding.id, details)  # type: ignore[arg-type]
            for action, finding, details in changes
        ),
    )
    return stored


_Key = tuple[str, str]


class _Candidates:
    """Per (rule, dedup key): the stored findings `continued_finding` can return — the newest by
    `first_seen` (alert windows) and the newest open one by `last_seen` — plus those created since."""

    def __init__(self, session: Session, drafts: Sequence[FindingDraft]) -> None:
        self.session = session
        self.by_key: dict[_Key, list[Finding]] = {}
        self._load({(d.rule_id, d.dedup_key[:MAX_DEDUP_KEY]) for d in drafts})
        self._stale: set[_Key] = set()

    def _load(self, keys: set[_Key]) -> None:
        for key in keys:
            self.by_key[key] = []
        ordered = sorted(keys)
        table = Finding.__table__  # type: ignore[attr-defined]
        for start in range(0, len(ordered), 500):
            chunk = ordered[start : start + 500]
            partition = (table.c.rule_id, table.c.dedup_key)
            ranked = (
                sa_select(
                    table.c.id,
                    func.row_number()
                    .over(partition_by=partition, order_by=table.c.first_seen.desc())
                    .label("by_first"),
                    func.row_number()
                    .over(
                        partition_by=(*partition, table.c.status == FindingStatus.OPEN),
                        order_by=table.c.last_seen.desc(),
                    )
                    .label("by_last"),
                    (table.c.status == FindingStatus.OPEN).label("open"),
                )
                .where(
                    table.c.dedup_key.in_({k for _, k in chunk}),
                    table.c.rule_id.in_({r for r, _ in chunk}),
                )
                .subquery()
            )
            ids = sa_select(ranked.c.id).where(
                (ranked.c.by_first == 1) | ((ranked.c.by_last == 1) & (ranked.c.open == literal(True)))
            )
            rows = self.session.exec(select(Finding).where(col(Finding.id).in_(ids))).all()
            for finding in rows:
                bucket = self.by_key.get((finding.rule_id, finding.dedup_key))
                if bucket is not None:
                    bucket.append(finding)

    def add(self, finding: Finding) -> None:
        self.by_key.setdefault((finding.rule_id, finding.dedup_key), []).append(finding)

    def stale(self, finding: Finding) -> None:
        self._stale.add((finding.rule_id, finding.dedup_key))

    def continued(self, draft: FindingDraft, dedup_period: timedelta | None) -> Finding | None:
        key = (draft.rule_id, draft.dedup_key[:MAX_DEDUP_KEY])
        if key in self._stale:  # re-read from the database, which sees this batch once flushed
            self._stale.discard(key)
            self.session.flush()
            self._load({key})
        bucket = self.by_key.get(key, [])
        if draft.window_start is not None:
            if not bucket:
                return None
            newest = max(bucket, key=lambda f: as_utc(f.first_seen))
            if (newest.context or {}).get("window_start") == draft.window_start:
                return newest
            return None
        open_ = [f for f in bucket if f.status == FindingStatus.OPEN]
        if not open_:
            return None
        newest = max(open_, key=lambda f: as_utc(f.last_seen))
        if dedup_period is not None and as_utc(newest.last_seen) < as_utc(draft.first_seen) - dedup_period:
            return None
        return newest


def _event_ids(ids: Iterable[int | str]) -> list[int]:
    return [e for e in ids if isinstance(e, int) and not isinstance(e, bool)]


def _create(session: Session, draft: FindingDraft, actor: Actor) -> Finding:
    finding = _new_finding(draft)
    session.add(finding)
    session.flush()
    assert finding.id is not None
    audit_record(
        session,
        actor=actor,
        action=AuditAction.FINDING_CREATED,
        object_type="finding",
        object_id=finding.id,
        details=_created_details(finding),
    )
    return finding


def _created_details(finding: Finding) -> dict[str, Any]:
    return {"rule_id": finding.rule_id, "severity": finding.severity, "kind": finding.kind}


def _new_finding(draft: FindingDraft) -> Finding:
    context = dict(draft.context)
    if draft.window_start is not None:
        context["window_start"] = draft.window_start
    return Finding(
        rule_id=draft.rule_id,
        kind=draft.kind,
        severity=draft.severity,
        confidence=draft.confidence,
        title=draft.title[:MAX_TITLE],
        description=draft.description,
        provider=draft.provider,
        status=FindingStatus.OPEN,
        entities={kind: list(values) for kind, values in draft.entities.items()},
        evidence_event_ids=_event_ids(draft.evidence_event_ids)[:MAX_EVIDENCE],
        first_seen=draft.first_seen,
        last_seen=draft.last_seen,
        count=max(1, draft.count),
        dedup_key=draft.dedup_key[:MAX_DEDUP_KEY],
        mitre=list(draft.mitre),
        context=context,
        runbook=draft.runbook,
    )


def _merge_entities(old: dict[str, list[str]], new: dict[str, list[str]]) -> dict[str, list[str]]:
    merged = {kind: list(values) for kind, values in (old or {}).items()}
    for kind, values in new.items():
        bucket = merged.setdefault(kind, [])
        bucket.extend(value for value in values if value not in bucket)
    return merged


def _rank(severity: str) -> int:
    try:
        return Severity(severity).rank
    except ValueError:
        return -1


def _merge(
    session: Session, existing: Finding, draft: FindingDraft, actor: Actor, count_repeats: bool
) -> None:
    details = _merge_fields(existing, draft, count_repeats)
    session.add(existing)
    if details is not None:
        assert existing.id is not None
        audit_record(
            session,
            actor=actor,
            action=AuditAction.FINDING_UPDATED,
            object_type="finding",
            object_id=existing.id,
            details=details,
        )


def _merge_fields(existing: Finding, draft: FindingDraft, count_repeats: bool) -> dict[str, Any] | None:
    """Fold `draft` into `existing`; the audit details when that changed something worth a record."""
    before = (existing.severity, existing.count, existing.title, len(existing.evidence_event_ids or []))
    evidence = list(existing.evidence_event_ids or [])
    evidence.extend(e for e in _event_ids(draft.evidence_event_ids) if e not in evidence)
    existing.evidence_event_ids = evidence[:MAX_EVIDENCE]
    newer = as_utc(draft.last_seen) >= as_utc(existing.last_seen)
    if newer:  # the newer draft describes the finding as it is now ("1,200 files", not "400")
        existing.title = draft.title[:MAX_TITLE]
        existing.description = draft.description
    if draft.window_start is not None:
        # inside one alert window severity only rises; the window's count is the draft's total
        if _rank(draft.severity) > _rank(existing.severity):
            existing.severity = draft.severity
        existing.count = max(existing.count, draft.count)
    else:
        if newer:
            existing.severity = draft.severity
        if count_repeats:
            existing.count += max(1, draft.count)
    existing.confidence = max(existing.confidence, draft.confidence)
    existing.first_seen = min(as_utc(existing.first_seen), as_utc(draft.first_seen))
    existing.last_seen = max(as_utc(existing.last_seen), as_utc(draft.last_seen))
    existing.entities = _merge_entities(existing.entities, draft.entities)
    existing.context = {**(existing.context or {}), **draft.context}
    existing.updated_at = utcnow()
    after = (existing.severity, existing.count, existing.title, len(existing.evidence_event_ids))
    if after == before:  # a re-observation that only moves last_seen is not a change worth a record
        return None
    return {
        "rule_id": existing.rule_id,
        "severity": existing.severity,
        "count": existing.count,
        "evidence": len(existing.evidence_event_ids),
    }


def resolve_findings(session: Session, dedup_keys: Iterable[str], *, reason: str, actor: Actor) -> int:
    """Mark open findings with these keys resolved (e.g. the setting is back to its expected value)."""
    keys = list(dedup_keys)
    resolved = 0
    for start in range(0, len(keys), 500):
        rows = session.exec(
            select(Finding).where(
                col(Finding.dedup_key).in_(keys[start : start + 500]), Finding.status == FindingStatus.OPEN
            )
        ).all()
        for finding in rows:
            now = utcnow()
            finding.status = FindingStatus.RESOLVED
            finding.context = {**finding.context, "resolved_reason": reason, "resolved_at": now.isoformat()}
            finding.updated_at = now
            session.add(finding)
            assert finding.id is not None
            audit_record(
                session,
                actor=actor,
                action=AuditAction.FINDING_RESOLVED,
                object_type="finding",
                object_id=finding.id,
                details={"rule_id": finding.rule_id, "reason": reason},
            )
            resolved += 1
    return resolved


def finding_connections(
    session: Session, evidence: Iterable[tuple[int, Sequence[int | str] | None]]
) -> dict[int, int]:
    """finding id -> the connection that collected its first evidence event (absent: none).

    Findings carry no connection of their own; a finding's tenant is where its evidence came from.
    `evidence` is (finding id, evidence event ids) pairs. Used by the digests (one per tenant) and by
    on-call routing (routes by tenant)."""
    first = {int(finding_id): int(ids[0]) for finding_id, ids in evidence if ids}
    event_ids = sorted(set(first.values()))
    connection_of: dict[int, int] = {}
    for start in range(0, len(event_ids), 1000):
        connection_of.update(
            (int(event_id), int(connection_id))
            for event_id, connection_id in session.execute(
                sa_select(col(Event.id), col(Event.connection_id)).where(
                    col(Event.id).in_(event_ids[start : start + 1000]), col(Event.connection_id).is_not(None)
                )
            ).all()
        )
    return {f: connection_of[e] for f, e in first.items() if e in connection_of}
