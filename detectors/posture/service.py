"""Posture over stored snapshots: evaluate every check, keep score history, report drift.

:func:`evaluate` reads the newest snapshot of every configuration object per connection, runs
the checks, stores one :class:`PostureResult` per check and :class:`PostureScore` rows per
category (and "overall"), opens a ``posture`` finding for each failing check (resolving it when
the check passes again), and turns changes away from the baseline into ``drift`` findings that
name the old value, the new value, when, and — from the admin audit events — who changed it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from core.audit import Actor, AuditAction, record
from core.clock import utcnow
from core.db import Database
from core.findings import FindingDraft, resolve_findings, store_finding
from core.models import ConfigSnapshot, FindingKind, PostureResult, PostureScore
from core.paths import get_path
from core.settings import Settings
from core.snapshots import current_objects
from detectors.cursor import GapCursor
from detectors.posture.attribution import attribute_change
from detectors.posture.checks import PostureCheck, Scope, load_checks
from detectors.posture.evaluation import (
    CheckOutcome,
    CheckStatus,
    SnapshotObject,
    evaluate_check,
    object_passes,
)

DRIFT_CURSOR = "posture.drift"
DRIFT_READER = GapCursor(DRIFT_CURSOR, ConfigSnapshot)
OVERALL = "overall"
ACTOR = Actor.system("posture")
MAX_DIFFS = 20
_PERSON_FIELDS = ("userPrincipalName", "primaryEmail", "mail", "profile.email", "mailbox", "userKey", "email")


@dataclass(frozen=True)
class ScoreLine:
    connection_id: int | None
    provider: str
    category: str
    score: float
    passed: int
    failed: int


@dataclass(frozen=True)
class PostureReport:
    run_id: str
    evaluated_at: datetime
    results: int
    failing: int
    scores: tuple[ScoreLine, ...]
    posture_findings: int
    drift_findings: int
    resolved: int
    errors: tuple[str, ...] = field(default_factory=tuple)


# ---------------------------------------------------------------- scoring


def score_outcomes(
    checks: Mapping[str, PostureCheck], outcomes: Sequence[CheckOutcome]
) -> dict[str, tuple[float, int, int, float, float]]:
    """Per category and overall: (score 0-100, passed, failed, weight passed, weight total)."""
    sums: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0, 0.0])
    for outcome in outcomes:
        if outcome.status not in (CheckStatus.PASS, CheckStatus.FAIL):
            continue
        check = checks[outcome.check_id]
        for bucket in (check.category.value, OVERALL):
            line = sums[bucket]
            line[3] += check.weight
            if outcome.status is CheckStatus.PASS:
                line[0] += 1
                line[2] += check.weight
            else:
                line[1] += 1
    return {
        category: (round(100.0 * wp / wt, 1) if wt else 100.0, int(p), int(f), wp, wt)
        for category, (p, f, wp, wt) in sums.items()
    }


# ---------------------------------------------------------------- findings


def _people(objects: Iterable[SnapshotObject]) -> list[str]:
    people: list[str] = []
    for item in objects:
        for path in _PERSON_FIELDS:
            value = get_path(item.data, path)
            if isinstance(value, str) and "@" in value:
                if value.lower() not in people:
                    people.append(value.lower())
                break
    return people[:50]


def posture_draft(
    check: PostureCheck,
    outcome: CheckOutcome,
    connection_id: int | None,
    objects: Sequence[SnapshotObject],
    now: datetime,
) -> FindingDraft:
    failing_ids = set(outcome.failing)
    failing_objects = [o for o in objects if o.object_id in failing_ids]
    if check.scope is Scope.TENANT or check.object_id is not None:
        what = "the tenant configuration does not meet it"
    else:
        what = f"{outcome.objects_failing} of {outcome.objects_total} {check.object_type} objects fail it"
    description = f"{check.title}: {what}. Condition: `{check.condition_text}`."
    if check.rationale:
        description += f" Why it matters: {check.rationale}"
    return FindingDraft(
        rule_id=check.id,
        kind=FindingKind.POSTURE,
        severity=check.severity.value,
        title=f"Posture: {check.title} — not met",
        description=description,
        dedup_key=f"posture:{check.id}:{connection_id}",
        first_seen=now,
        last_seen=now,
        provider=check.provider.value,
        entities={"people": _people(failing_objects), "accounts": list(outcome.failing[:50])},
        mitre=check.mitre,
        context={
            "check_id": check.id,
            "category": check.category.value,
            "connection_id": connection_id,
            "objects_total": outcome.objects_total,
            "objects_failing": outcome.objects_failing,
            "failing_object_ids": list(outcome.failing[:50]),
            "references": list(check.references),
            "baseline": check.baseline,
            "remediation": {"action": check.remediation.action, "params": check.remediation.params}
            if check.remediation
            else None,
        },
        runbook=_runbook(check),
    )


def _runbook(check: PostureCheck) -> str:
    steps = [
        f"1. Confirm the current value of {', '.join(check.paths[:3]) or check.object_type} in the admin console."
    ]
    if check.remediation:
        steps.append(f"2. Restore it with the `{check.remediation.action}` remediation (needs approval).")
    else:
        steps.append("2. Change the setting back to the expected value by hand.")
    steps.append(
        "3. If the change was intended, document the exception and suppress this check for the tenant."
    )
    return "\n".join(steps)


# ---------------------------------------------------------------- drift


def diff_values(old: Any, new: Any, prefix: str = "", limit: int = MAX_DIFFS) -> list[dict[str, Any]]:
    """Dotted paths whose values differ between two snapshots (recursing into objects only)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        changes: list[dict[str, Any]] = []
        for key in sorted(set(old) | set(new), key=str):
            if key in ("@odata.context", "etag", "lastModifiedDateTime", "modifiedDateTime"):
                continue
            path = f"{prefix}.{key}" if prefix else str(key)
            changes.extend(diff_values(old.get(key), new.get(key), path, limit - len(changes)))
            if len(changes) >= limit:
                break
        return changes
    if old != new:
        return [{"path": prefix, "old": old, "new": new}]
    return []


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return bool(a == b)


def _previous_snapshot(session: Session, snapshot: ConfigSnapshot) -> ConfigSnapshot | None:
    return session.exec(
        select(ConfigSnapshot)
        .where(
            ConfigSnapshot.connection_id == snapshot.connection_id,
            ConfigSnapshot.object_type == snapshot.object_type,
            ConfigSnapshot.object_id == snapshot.object_id,
            col(ConfigSnapshot.id) < snapshot.id,
        )
        .order_by(col(ConfigSnapshot.id).desc())
        .limit(1)
    ).first()


def _format_value(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f"'{value}'"
    return text if len(text) <= 120 else text[:117] + "..."


def drift_draft(
    session: Session,
    check: PostureCheck,
    *,
    provider: str,
    connection_id: int | None,
    object_type: str,
    object_id: str,
    changes: list[dict[str, Any]],
    since: datetime | None,
    until: datetime,
    snapshot_id: int | None,
) -> FindingDraft:
    """A drift finding: what moved (old -> new), when, who (joined with admin audit events)."""
    who = attribute_change(
        session,
        provider=provider,
        connection_id=connection_id,
        object_id=object_id,
        paths=[c["path"] for c in changes] + check.paths,
        since=since,
        until=until,
    )
    moved = "; ".join(
        f"{c['path']}: {_format_value(c['old'])} → {_format_value(c['new'])}"
        + (f" (baseline {_format_value(check.baseline[c['path']])})" if c["path"] in check.baseline else "")
        for c in changes[:5]
    )
    when = who.occurred_at if who else until
    by = (
        f" by {who.actor} ({who.action})"
        if who and who.actor
        else " (no admin audit event found for the change yet)"
    )
    window = f"between {since.isoformat() if since else 'the first collection'} and {until.isoformat()}"
    description = (
        f"{object_type} '{object_id}' moved away from the baseline of check {check.id} ({check.title}): {moved}. "
        f"Changed {'at ' + when.isoformat() if who else window}{by}."
    )
    return FindingDraft(
        rule_id=check.id,
        kind=FindingKind.DRIFT,
        severity=check.severity.value,
        title=f"Drift: {check.title} — {object_type} '{object_id}' changed{by if who and who.actor else ''}",
        description=description,
        dedup_key=f"drift:{check.id}:{connection_id}:{object_id}:{snapshot_id}",
        first_seen=when,
        last_seen=until,
        provider=provider,
        entities={
            "people": [who.actor.lower()] if who and who.actor and "@" in who.actor else [],
            "accounts": [object_id],
        },
        evidence_event_ids=(who.event_id,) if who else (),
        mitre=check.mitre or ("T1562",),
        context={
            "check_id": check.id,
            "object_type": object_type,
            "object_id": object_id,
            "changes": changes[:MAX_DIFFS],
            "baseline": check.baseline,
            "changed_at": when.isoformat(),
            "changed_by": who.actor if who else None,
            "change_event": {
                "id": who.event_id,
                "provider_event_id": who.provider_event_id,
                "action": who.action,
            }
            if who
            else None,
            "window": {"since": since.isoformat() if since else None, "until": until.isoformat()},
            "snapshot_id": snapshot_id,
            "remediation": {"action": check.remediation.action, "params": check.remediation.params}
            if check.remediation
            else None,
        },
        runbook=_runbook(check),
    )


def _object_drift(
    check: PostureCheck, old: Mapping[str, Any], new: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Changes that move an object away from the check's baseline (or make it start failing)."""
    changes = []
    for path, expected in check.baseline.items():
        before, after = get_path(old, path), get_path(new, path)
        if not _same(before, after) and not _same(after, expected):
            changes.append({"path": path, "old": before, "new": after})
    if changes:
        return changes
    if object_passes(check, old) is True and object_passes(check, new) is False:
        watched = [
            c
            for c in diff_values(old, new)
            if any(c["path"].startswith(p) or p.startswith(c["path"]) for p in check.paths)
        ]
        return watched or diff_values(old, new)
    return []


def detect_snapshot_drift(
    session: Session, checks: Sequence[PostureCheck], *, limit: int = 20_000
) -> list[FindingDraft]:
    """Compare every snapshot stored since the last pass with the one before it, `limit` at a
    time, to the end: the checks' evaluation that follows (every current object) runs once for
    what is stored now, instead of once per `limit` snapshots of a backlog (168,000 snapshots of
    a 10,000-user tenant's first read took nine posture passes of ~8 s each)."""
    drift_checks: dict[tuple[str, str], list[PostureCheck]] = defaultdict(list)
    for check in checks:
        if check.drift and check.scope is Scope.EACH:
            drift_checks[(check.provider.value, check.object_type)].append(check)
    types = {object_type for _, object_type in drift_checks}
    drafts: list[FindingDraft] = []
    while True:
        read = DRIFT_READER.read(session, limit)  # every type, so skipped-over ids are true gaps
        drafts.extend(_drift_drafts(session, read, types, drift_checks))
        DRIFT_READER.advance(session, read)
        if len(read) < limit:
            return drafts


def _drift_drafts(
    session: Session,
    read: Sequence[ConfigSnapshot],
    types: set[str],
    drift_checks: Mapping[tuple[str, str], Sequence[PostureCheck]],
) -> list[FindingDraft]:
    drafts = []
    for snapshot in (s for s in read if s.object_type in types):
        applicable = [
            c
            for c in drift_checks.get((snapshot.provider, snapshot.object_type), ())
            if c.object_id is None or c.object_id == snapshot.object_id
        ]
        previous = _previous_snapshot(session, snapshot) if applicable and not snapshot.deleted else None
        for check in applicable:
            if previous is None:
                continue
            changes = _object_drift(check, previous.data, snapshot.data)
            if changes:
                drafts.append(
                    drift_draft(
                        session,
                        check,
                        provider=snapshot.provider,
                        connection_id=snapshot.connection_id,
                        object_type=snapshot.object_type,
                        object_id=snapshot.object_id,
                        changes=changes,
                        since=previous.collected_at,
                        until=snapshot.collected_at,
                        snapshot_id=snapshot.id,
                    )
                )
    return drafts


def snapshots_pending(db: Database) -> bool:
    """Whether snapshots were stored (or committed late) since the last `evaluate`."""
    with db.session(readonly=True) as session:
        return DRIFT_READER.pending(session)


def _tenant_drift(
    session: Session,
    check: PostureCheck,
    outcome: CheckOutcome,
    previous: PostureResult | None,
    *,
    provider: str,
    connection_id: int | None,
    now: datetime,
) -> FindingDraft | None:
    """A tenant-wide check that passed last run and fails now: the objects changed since then drifted."""
    if previous is None or previous.status != CheckStatus.PASS or outcome.status is not CheckStatus.FAIL:
        return None
    changed = session.exec(
        select(ConfigSnapshot)
        .where(
            ConfigSnapshot.connection_id == connection_id,
            col(ConfigSnapshot.object_type).in_(check.object_types),
            col(ConfigSnapshot.collected_at) > previous.evaluated_at,
        )
        .order_by(col(ConfigSnapshot.id).desc())
        .limit(20)
    ).all()
    changes: list[dict[str, Any]] = []
    object_id = changed[0].object_id if changed else check.object_type
    for snapshot in changed:
        before = _previous_snapshot(session, snapshot)
        if snapshot.deleted:
            changes.append(
                {"path": f"{snapshot.object_type}[{snapshot.object_id}]", "old": "present", "new": "deleted"}
            )
        elif before is None:
            changes.append(
                {"path": f"{snapshot.object_type}[{snapshot.object_id}]", "old": None, "new": "created"}
            )
        else:
            for change in diff_values(before.data, snapshot.data):
                changes.append(
                    {**change, "path": f"{snapshot.object_type}[{snapshot.object_id}].{change['path']}"}
                )
    if not changes:
        changes = [{"path": check.id, "old": "pass", "new": "fail"}]
    return drift_draft(
        session,
        check,
        provider=provider,
        connection_id=connection_id,
        object_type=changed[0].object_type if changed else check.object_type,
        object_id=object_id,
        changes=changes,
        since=previous.evaluated_at,
        until=changed[0].collected_at if changed else now,
        snapshot_id=changed[0].id if changed else None,
    )


# ---------------------------------------------------------------- the entry point


_CHECK_CACHE: dict[str, list[PostureCheck]] = {}


def shipped_checks() -> list[PostureCheck]:
    if "default" not in _CHECK_CACHE:
        _CHECK_CACHE["default"] = load_checks()
    return _CHECK_CACHE["default"]


def evaluate(
    db: Database,
    settings: Settings | None = None,
    *,
    checks: Sequence[PostureCheck] | None = None,
    now: datetime | None = None,
) -> PostureReport:
    """Evaluate every check on every connection's newest snapshots; store results, scores, findings."""
    checks = list(checks) if checks is not None else shipped_checks()
    by_id = {check.id: check for check in checks}
    now = now or utcnow()
    run_id = uuid.uuid4().hex
    scores: list[ScoreLine] = []
    errors: list[str] = []
    posture_count = drift_count = resolved = results = failing = 0
    with db.session() as session:
        grouped = current_objects(session, {t for c in checks for t in c.object_types})
        drafts: list[FindingDraft] = detect_snapshot_drift(session, checks)
        passing_keys: list[str] = []
        for (connection_id, provider), objects in sorted(
            grouped.items(), key=lambda item: (item[0][0] or 0, item[0][1])
        ):
            provider_checks = [c for c in checks if c.provider.value == provider]
            previous = _previous_results(session, connection_id, [c.id for c in provider_checks])
            outcomes = [evaluate_check(check, objects) for check in provider_checks]
            for check, outcome in zip(provider_checks, outcomes, strict=True):
                results += 1
                session.add(_result_row(run_id, now, connection_id, provider, check, outcome))
                if outcome.status is CheckStatus.ERROR:
                    errors.append(f"{check.id} on connection {connection_id}: {outcome.error}")
                if outcome.status is CheckStatus.FAIL:
                    failing += 1
                    drafts.append(
                        posture_draft(check, outcome, connection_id, objects.get(check.object_type, ()), now)
                    )
                    if check.drift and check.scope is Scope.TENANT:
                        drift = _tenant_drift(
                            session,
                            check,
                            outcome,
                            previous.get(check.id),
                            provider=provider,
                            connection_id=connection_id,
                            now=now,
                        )
                        if drift is not None:
                            drafts.append(drift)
                elif outcome.status is CheckStatus.PASS:
                    passing_keys.append(f"posture:{check.id}:{connection_id}")
            for category, (score, passed, failed, wp, wt) in sorted(score_outcomes(by_id, outcomes).items()):
                session.add(
                    PostureScore(
                        run_id=run_id,
                        evaluated_at=now,
                        connection_id=connection_id,
                        provider=provider,
                        category=category,
                        score=score,
                        checks_passed=passed,
                        checks_failed=failed,
                        weight_passed=wp,
                        weight_total=wt,
                    )
                )
                scores.append(ScoreLine(connection_id, provider, category, score, passed, failed))
        for draft in drafts:
            is_posture = draft.kind == FindingKind.POSTURE
            store_finding(session, draft, actor=ACTOR, dedup_period=None, count_repeats=not is_posture)
            posture_count += is_posture
            drift_count += not is_posture
        resolved = resolve_findings(session, passing_keys, reason="the check passes again", actor=ACTOR)
        record(
            session,
            actor=ACTOR,
            action=AuditAction.POSTURE_EVALUATED,
            object_type="posture_run",
            object_id=run_id,
            details={
                "results": results,
                "failing": failing,
                "drift_findings": drift_count,
                "resolved": resolved,
            },
        )
    return PostureReport(
        run_id, now, results, failing, tuple(scores), posture_count, drift_count, resolved, tuple(errors)
    )


def _previous_results(
    session: Session, connection_id: int | None, check_ids: list[str]
) -> dict[str, PostureResult]:
    last_run = session.exec(
        select(PostureResult.run_id)
        .where(PostureResult.connection_id == connection_id)
        .order_by(col(PostureResult.evaluated_at).desc(), col(PostureResult.id).desc())
        .limit(1)
    ).first()
    if last_run is None:
        return {}
    rows = session.exec(
        select(PostureResult).where(
            PostureResult.run_id == last_run, PostureResult.connection_id == connection_id
        )
    ).all()
    return {row.check_id: row for row in rows if row.check_id in check_ids}


def _result_row(
    run_id: str,
    now: datetime,
    connection_id: int | None,
    provider: str,
    check: PostureCheck,
    outcome: CheckOutcome,
) -> PostureResult:
    return PostureResult(
        run_id=run_id,
        evaluated_at=now,
        connection_id=connection_id,
        provider=provider,
        check_id=check.id,
        category=check.category.value,
        severity=check.severity.value,
        status=outcome.status.value,
        objects_total=outcome.objects_total,
        objects_failing=outcome.objects_failing,
        failing_object_ids=list(outcome.failing[:50]),
        details={"error": outcome.error} if outcome.error else {},
    )


def score_history(
    db: Database, *, connection_id: int | None = None, category: str = OVERALL, limit: int = 30
) -> list[PostureScore]:
    """The newest `limit` scores for a connection and category, oldest first (for trends)."""
    with db.session(readonly=True) as session:
        query = select(PostureScore).where(PostureScore.category == category)
        if connection_id is not None:
            query = query.where(PostureScore.connection_id == connection_id)
        rows = session.exec(query.order_by(col(PostureScore.evaluated_at).desc()).limit(limit)).all()
    return list(reversed(rows))


def latest_scores(db: Database) -> list[PostureScore]:
    """Every score of each connection's newest run."""
    with db.session(readonly=True) as session:
        newest = (
            select(col(PostureScore.connection_id), func.max(PostureScore.evaluated_at).label("at"))
            .group_by(col(PostureScore.connection_id))
            .subquery()
        )
        rows = session.exec(
            select(PostureScore).join(
                newest,
                (col(PostureScore.connection_id) == newest.c.connection_id)
                & (col(PostureScore.evaluated_at) == newest.c.at),
            )
        ).all()
    return list(rows)
