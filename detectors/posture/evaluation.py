"""Pure evaluation of posture checks over snapshot data, and the checks' own test snapshots.

Nothing here touches the database: :func:`evaluate_check` takes the snapshot data of one
connection, grouped by object type, and says pass / fail / not applicable with the failing
object ids. The stored-data side lives in :mod:`detectors.posture.service`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.paths import get_path
from core.snapshots import SnapshotObject
from detectors.posture.checks import PostureCheck, Scope, load_checks
from detectors.posture.errors import CheckError

MAX_LISTED_FAILURES = 200


class CheckStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True)
class CheckOutcome:
    check_id: str
    status: CheckStatus
    objects_total: int = 0
    objects_failing: int = 0
    failing: tuple[str, ...] = ()
    error: str | None = None


def object_passes(check: PostureCheck, data: Mapping[str, Any]) -> bool | None:
    """For an `each` check: True/False for an applicable object, None when the check does not apply."""
    if check.applies_to is not None and not check.applies_to(data):
        return None
    return bool(check.condition(data))


def evaluate_check(check: PostureCheck, objects: Mapping[str, Sequence[SnapshotObject]]) -> CheckOutcome:
    """Run one check over one connection's latest snapshots (grouped by object type)."""
    try:
        if check.scope is Scope.TENANT:
            return _evaluate_tenant(check, objects)
        return _evaluate_each(check, objects.get(check.object_type, ()))
    except Exception as exc:  # noqa: BLE001 - one odd snapshot must not stop the other checks
        return CheckOutcome(check.id, CheckStatus.ERROR, error=f"{type(exc).__name__}: {exc}")


def _evaluate_each(check: PostureCheck, objects: Sequence[SnapshotObject]) -> CheckOutcome:
    total = 0
    failing: list[str] = []
    for item in objects:
        if check.object_id is not None and item.object_id != check.object_id:
            continue
        verdict = object_passes(check, item.data)
        if verdict is None:
            continue
        total += 1
        if not verdict:
            failing.append(item.object_id)
    if total == 0:
        return CheckOutcome(check.id, CheckStatus.NOT_APPLICABLE)
    status = CheckStatus.FAIL if failing else CheckStatus.PASS
    return CheckOutcome(check.id, status, total, len(failing), tuple(failing[:MAX_LISTED_FAILURES]))


def _evaluate_tenant(check: PostureCheck, objects: Mapping[str, Sequence[SnapshotObject]]) -> CheckOutcome:
    scope: dict[str, list[Mapping[str, Any]]] = {}
    total = 0
    for object_type in check.object_types:
        items = [
            item.data
            for item in objects.get(object_type, ())
            if check.object_id is None
            or object_type != check.object_type
            or item.object_id == check.object_id
        ]
        scope[object_type] = items
        total += len(items)
    if total == 0:
        return CheckOutcome(check.id, CheckStatus.NOT_APPLICABLE)
    passed = bool(check.condition(scope))
    return CheckOutcome(check.id, CheckStatus.PASS if passed else CheckStatus.FAIL, total, 0 if passed else 1)


@dataclass(frozen=True)
class CheckTestResult:
    check_id: str
    test: str
    expected: str
    actual: str
    source: str
    line: int
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.expected == self.actual


def run_tests_of(check: PostureCheck) -> list[CheckTestResult]:
    results = []
    for test in check.tests:
        objects = {
            object_type: [
                SnapshotObject(str(data.get("id", index)), data) for index, data in enumerate(items)
            ]
            for object_type, items in test.snapshots.items()
        }
        if check.object_id is not None and check.scope is Scope.EACH:
            objects = {
                object_type: [SnapshotObject(check.object_id, o.data) for o in items]
                for object_type, items in objects.items()
            }
        outcome = evaluate_check(check, objects)
        actual = outcome.status.value
        message = ""
        if outcome.status is CheckStatus.NOT_APPLICABLE:
            message = "the check did not apply to any snapshot object (applies_to/object filtered all out)"
        elif outcome.status is CheckStatus.ERROR:
            message = outcome.error or ""
        elif actual != test.expect.value:
            values = {path: _describe_values(path, test.snapshots) for path in check.paths[:6]}
            message = f"condition `{check.condition_text}` gave {actual}; values seen: {values}"
        results.append(
            CheckTestResult(check.id, test.name, test.expect.value, actual, check.source, test.line, message)
        )
    return results


def _describe_values(path: str, snapshots: Mapping[str, list[dict[str, Any]]]) -> Any:
    values = [get_path(data, path) for items in snapshots.values() for data in items]
    return values[0] if len(values) == 1 else values[:5]


def run_check_tests(path: Path | str | None = None) -> list[CheckTestResult]:
    """Run every posture check's test snapshots under `path` (default: the shipped checks).

    A file that does not load yields one failed result naming the file and line, so a broken
    check never hides behind an exception and the others still run.
    """
    from detectors.posture.checks import DEFAULT_RULES_DIR, iter_check_files, parse_file

    root = Path(path) if path is not None else DEFAULT_RULES_DIR
    results: list[CheckTestResult] = []
    files = [root] if root.is_file() else list(iter_check_files(root))
    for file in files:
        try:
            checks = parse_file(file)
        except CheckError as exc:
            results.append(CheckTestResult("<invalid>", "load", "valid", "invalid", str(file), 0, str(exc)))
            continue
        for check in checks:
            results.extend(run_tests_of(check))
    return results


__all__ = [
    "CheckOutcome",
    "CheckStatus",
    "CheckTestResult",
    "SnapshotObject",
    "evaluate_check",
    "load_checks",
    "run_check_tests",
]
