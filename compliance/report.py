"""Framework reports: per control, the checks and rules mapped to it, their result, evidence and history.

:func:`build_report` evaluates the mapped posture checks on the configuration snapshots as they were
at `at` (default now) — so a report "as of" a past date is reproduced from stored snapshots, not from
what was computed then — and adds, per check, the evidence (snapshot time and the values the check
reads), the drift findings up to `at`, and the exceptions (risk acceptance) in force at `at`.
A control fails when one of its checks fails on a tenant without an exception in force.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlmodel import Session, col, select

from compliance.errors import ComplianceError
from compliance.exceptions import exceptions_for, in_force, snapshot, state_of
from compliance.frameworks import PROVIDERS, Framework, load_catalogue
from compliance.mappings import ItemKind, MappingSet, shipped_mappings
from core.clock import as_utc, isoformat, utcnow
from core.models import Connection, Finding, FindingKind
from core.paths import get_path
from core.snapshots import SnapshotObject, current_objects
from detectors.posture.checks import PostureCheck, Scope
from detectors.posture.evaluation import CheckStatus, evaluate_check, object_passes
from detectors.posture.service import shipped_checks

MAX_EVIDENCE_OBJECTS = 10
MAX_DRIFT = 10
DETECTION_WINDOW = timedelta(days=30)


class ControlStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    EXCEPTED = "excepted"  # fails only where an exception is in force
    NOT_ASSESSED = "not_assessed"  # no mapped check could be evaluated (no snapshots, or only detections)


@dataclass(frozen=True)
class Evidence:
    object_type: str
    object_id: str
    snapshot_id: int | None
    collected_at: str | None
    passes: bool | None
    values: dict[str, Any]


@dataclass(frozen=True)
class CheckResult:
    """One posture check on one tenant, as of the report's time."""

    check_id: str
    title: str
    severity: str
    connection_id: int | None
    connection: str
    status: str
    objects_total: int
    objects_failing: int
    failing_object_ids: list[str]
    evidence: list[Evidence]
    drift: list[dict[str, Any]]
    exceptions: list[dict[str, Any]]
    excepted: bool


@dataclass(frozen=True)
class RuleActivity:
    """A detection rule mapped to the control: its findings in the window before the report's time."""

    rule_id: str
    findings: int
    open_findings: int
    last_seen: str | None


@dataclass(frozen=True)
class ControlReport:
    control_id: str
    title: str
    status: ControlStatus
    checks: list[CheckResult]
    rules: list[RuleActivity]


@dataclass(frozen=True)
class FrameworkReport:
    framework: str
    name: str
    version: str
    source: str
    at: str
    generated_at: str
    tenants: list[dict[str, Any]]
    summary: dict[str, int]
    controls: list[ControlReport] = field(default_factory=list)
    not_applicable: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _connections(session: Session, framework: Framework, tenant: int | None) -> list[Connection]:
    providers = PROVIDERS[framework]
    query = select(Connection).order_by(col(Connection.id))
    if tenant is not None:
        query = query.where(Connection.id == tenant)
    rows = session.exec(query).all()
    return [c for c in rows if providers is None or c.provider in providers]


# `p.conditions.users.includeUsers` in a tenant-wide condition: an attribute read on each object.
_ATTRIBUTE = re.compile(r"(?<![\w.'\"])[A-Za-z_]\w*\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)")


def _evidence_paths(check: PostureCheck) -> list[str]:
    """The values the check reads on each object: its paths, and for a tenant-wide check the
    attributes its condition reads on the objects it iterates over."""
    paths = [p for p in check.paths if p not in check.object_types]
    if check.scope is Scope.TENANT:
        paths.extend(m for m in _ATTRIBUTE.findall(check.condition_text) if m not in paths)
    return list(dict.fromkeys(paths))


def _evidence(
    check: PostureCheck, objects: dict[str, list[SnapshotObject]], failing: set[str]
) -> list[Evidence]:
    """The objects the check read, failing ones first, with the values of the paths it reads."""
    items: list[tuple[str, SnapshotObject]] = []
    types = check.object_types or (check.object_type,)
    for object_type in types:
        for item in objects.get(object_type, ()):
            if (
                check.object_id is not None
                and object_type == check.object_type
                and item.object_id != check.object_id
            ):
                continue
            items.append((object_type, item))
    items.sort(key=lambda pair: (pair[1].object_id not in failing, pair[0], pair[1].object_id))
    out = []
    for object_type, item in items[:MAX_EVIDENCE_OBJECTS]:
        values = {path: get_path(item.data, path) for path in _evidence_paths(check)}
        if check.scope is Scope.TENANT:  # attributes of the other object types it reads are not this one's
            values = {path: value for path, value in values.items() if value is not None}
        if "displayName" in item.data:
            values = {"displayName": item.data["displayName"], **values}
        passes = (
            object_passes(check, item.data)
            if check.scope is Scope.EACH and object_type == check.object_type
            else None
        )
        out.append(
            Evidence(
                object_type=object_type,
                object_id=item.object_id,
                snapshot_id=item.snapshot_id,
                collected_at=isoformat(item.collected_at) if item.collected_at else None,
                passes=passes,
                values=values,
            )
        )
    return out


def _drift(session: Session, check_id: str, connection_id: int | None, at: datetime) -> list[dict[str, Any]]:
    """The check's drift findings on this tenant up to `at`, newest first (their dedup key names both)."""
    rows = session.exec(
        select(Finding)
        .where(
            Finding.kind == FindingKind.DRIFT.value,
            col(Finding.dedup_key).startswith(f"drift:{check_id}:{connection_id}:", autoescape=True),
            col(Finding.first_seen) <= at,
        )
        .order_by(col(Finding.first_seen).desc(), col(Finding.id).desc())
        .limit(MAX_DRIFT)
    ).all()
    return [
        {
            "finding_id": row.id,
            "at": isoformat(row.first_seen),
            "title": row.title,
            "changed_by": row.context.get("changed_by"),
            "changes": row.context.get("changes", [])[:5],
        }
        for row in rows
    ]


def _rule_activity(session: Session, rule_ids: list[str], at: datetime) -> dict[str, RuleActivity]:
    if not rule_ids:
        return {}
    rows = session.exec(
        select(Finding.rule_id, Finding.status, Finding.last_seen).where(
            col(Finding.rule_id).in_(rule_ids),
            col(Finding.first_seen) <= at,
            col(Finding.last_seen) >= at - DETECTION_WINDOW,
        )
    ).all()
    counts: dict[str, list[Any]] = defaultdict(lambda: [0, 0, None])
    for rule_id, status, last_seen in rows:
        line = counts[rule_id]
        line[0] += 1
        line[1] += status == "open"
        line[2] = max(line[2], as_utc(last_seen)) if line[2] else as_utc(last_seen)
    return {
        rule_id: RuleActivity(rule_id, n, o, isoformat(last) if last else None)
        for rule_id, (n, o, last) in counts.items()
    }


def build_report(
    session: Session,
    framework: Framework,
    *,
    tenant: int | None = None,
    at: datetime | None = None,
    mappings: MappingSet | None = None,
) -> FrameworkReport:
    """The framework's controls with their mapped checks evaluated on the snapshots as of `at`."""
    now = utcnow()
    at = as_utc(at) if at else now
    mappings = mappings or shipped_mappings()
    catalogue = load_catalogue(framework)
    checks = {c.id: c for c in shipped_checks()}
    by_control = mappings.items_by_control(framework)
    mapped_check_ids = {
        m.item_id
        for ms in by_control.values()
        for m in ms
        if m.kind is ItemKind.POSTURE_CHECK and m.item_id in checks
    }
    connections = _connections(session, framework, tenant)
    object_types = {
        t for cid in mapped_check_ids for t in checks[cid].object_types or (checks[cid].object_type,)
    }
    results: dict[str, list[CheckResult]] = defaultdict(list)
    for connection in connections:
        grouped = current_objects(session, object_types, connection_id=connection.id, as_of=at)
        objects = grouped.get((connection.id, connection.provider), {})
        exceptions = exceptions_for(session, check_ids=mapped_check_ids, connection_id=connection.id)
        for check_id in sorted(mapped_check_ids):
            check = checks[check_id]
            if check.provider.value != connection.provider:
                continue
            outcome = evaluate_check(check, objects)
            mine = [e for e in exceptions if e.check_id == check_id]
            excepted = outcome.status is CheckStatus.FAIL and any(in_force(e, at) for e in mine)
            results[check_id].append(
                CheckResult(
                    check_id=check_id,
                    title=check.title,
                    severity=check.severity.value,
                    connection_id=connection.id,
                    connection=connection.name,
                    status=outcome.status.value,
                    objects_total=outcome.objects_total,
                    objects_failing=outcome.objects_failing,
                    failing_object_ids=list(outcome.failing[:50]),
                    evidence=_evidence(check, dict(objects), set(outcome.failing)),
                    drift=_drift(session, check_id, connection.id, at),
                    exceptions=[{**snapshot(e), "state": state_of(e, at)} for e in mine],
                    excepted=excepted,
                )
            )
    rule_ids = sorted(
        {m.item_id for ms in by_control.values() for m in ms if m.kind is ItemKind.DETECTION_RULE}
    )
    activity = _rule_activity(session, rule_ids, at)
    controls = []
    for control in catalogue.controls:
        mapped = by_control.get(control.id, [])
        if not mapped:
            continue
        check_results = [
            r for m in mapped if m.kind is ItemKind.POSTURE_CHECK for r in results.get(m.item_id, [])
        ]
        rules = [
            activity.get(m.item_id, RuleActivity(m.item_id, 0, 0, None))
            for m in mapped
            if m.kind is ItemKind.DETECTION_RULE
        ]
        controls.append(
            ControlReport(control.id, control.title, _control_status(check_results), check_results, rules)
        )
    summary: dict[str, int] = {status.value: 0 for status in ControlStatus}
    for control_report in controls:
        summary[control_report.status.value] += 1
    summary["controls_in_catalogue"] = len(catalogue.controls)
    summary["controls_mapped"] = len(controls)
    return FrameworkReport(
        framework=framework.value,
        name=catalogue.name,
        version=catalogue.version,
        source=catalogue.source,
        at=isoformat(at),
        generated_at=isoformat(now),
        tenants=[
            {"id": c.id, "name": c.name, "provider": c.provider, "tenant": c.tenant} for c in connections
        ],
        summary=summary,
        controls=controls,
        not_applicable={
            kind.value: why for (kind, fw), why in mappings.not_applicable.items() if fw is framework
        },
    )


def _control_status(results: list[CheckResult]) -> ControlStatus:
    assessed = [r for r in results if r.status in (CheckStatus.PASS.value, CheckStatus.FAIL.value)]
    if not assessed:
        return ControlStatus.NOT_ASSESSED
    failing = [r for r in assessed if r.status == CheckStatus.FAIL.value]
    if not failing:
        return ControlStatus.PASS
    if all(r.excepted for r in failing):
        return ControlStatus.EXCEPTED
    return ControlStatus.FAIL


def resolve_tenant(session: Session, value: str | int | None) -> int | None:
    """A connection id, or a connection's name (what `--tenant` accepts)."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    numeric = text.isascii() and text.isdigit() and len(text) <= 18  # not '¹' (isdigit), not past 64 bits
    row = session.get(Connection, int(text)) if numeric else None
    if row is None:
        row = session.exec(select(Connection).where(Connection.name == text)).first()
    if row is None or row.id is None:
        names = ", ".join(c.name for c in session.exec(select(Connection).order_by(col(Connection.id))).all())
        raise ComplianceError(
            f"no tenant (connection) {text!r}: use an id or one of: {names or 'none connected'}"
        )
    return row.id
