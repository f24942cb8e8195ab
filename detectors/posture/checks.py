"""Posture checks as data: the YAML format, its validation and the loader.

One file holds one check (or several YAML documents). A check names the configuration object
type it reads, a condition that is true when the tenant is in the expected state, the expected
baseline values used for drift, the automatable remediation, public benchmark references and
its own passing and failing test snapshots. Invalid files are refused with file, line and field.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from core.models.enums import Provider, Severity
from detectors.posture.errors import CheckError, ExpressionError
from detectors.posture.expression import Compiled, compile_expression, referenced_paths

DEFAULT_RULES_DIR = Path(__file__).resolve().parents[2] / "rules" / "posture"
# The checks' control mappings live beside them (read by compliance/, not a check file).
CONTROL_MAPPINGS_FILE = "controls.yml"

OBJECT_TYPES = frozenset(
    {
        "user",
        "group",
        "role_assignment",
        "ca_policy",
        "security_defaults",
        "oauth_grant",
        "service_principal",
        "file_permission",
        "inbox_rule",
        "auth_method_registration",
        "tenant_settings",
        "token",
        "app",
    }
)
# Object types whose changes are configuration drift (a user or a file changing is not drift).
SETTING_TYPES = frozenset({"ca_policy", "security_defaults", "tenant_settings"})

SEVERITY_WEIGHT = {
    Severity.CRITICAL: 10.0,
    Severity.HIGH: 6.0,
    Severity.MEDIUM: 3.0,
    Severity.LOW: 1.0,
    Severity.INFORMATIONAL: 0.5,
}


class Scope(StrEnum):
    """`each`: the condition holds for every applicable object; `tenant`: once over all of them."""

    EACH = "each"
    TENANT = "tenant"


class Category(StrEnum):
    AUTHENTICATION = "authentication"
    PRIVILEGED_ACCESS = "privileged_access"
    APPLICATIONS = "applications"
    DATA_SHARING = "data_sharing"
    EXTERNAL_ACCESS = "external_access"
    LOGGING = "logging"
    EMAIL = "email"
    SESSIONS = "sessions"


class Expectation(StrEnum):
    PASS = "pass"
    FAIL = "fail"


@dataclass(frozen=True)
class CheckTest:
    name: str
    expect: Expectation
    snapshots: dict[str, list[dict[str, Any]]]
    line: int


@dataclass(frozen=True)
class Remediation:
    action: str
    params: dict[str, Any]


@dataclass(frozen=True)
class PostureCheck:
    id: str
    provider: Provider
    title: str
    severity: Severity
    category: Category
    object_type: str
    scope: Scope
    condition_text: str
    condition: Compiled = field(repr=False, compare=False)
    applies_to_text: str | None = None
    applies_to: Compiled | None = field(default=None, repr=False, compare=False)
    object_id: str | None = None
    object_types: tuple[str, ...] = ()
    baseline: dict[str, Any] = field(default_factory=dict)
    remediation: Remediation | None = None
    references: tuple[str, ...] = ()
    rationale: str = ""
    mitre: tuple[str, ...] = ()
    drift: bool = False
    tests: tuple[CheckTest, ...] = ()
    source: str = ""
    line: int = 1

    @property
    def weight(self) -> float:
        return SEVERITY_WEIGHT[self.severity]

    @property
    def paths(self) -> list[str]:
        """Data paths the check reads: what a drift report compares between two snapshots."""
        seen = list(self.baseline)
        for text in (self.condition_text, self.applies_to_text):
            if text:
                seen.extend(path for path in referenced_paths(text) if path not in seen)
        return seen


_REQUIRED = ("id", "provider", "title", "severity", "category", "object", "condition", "tests")
_KNOWN = set(_REQUIRED) | {
    "scope",
    "applies_to",
    "object_id",
    "objects",
    "baseline",
    "remediation",
    "references",
    "rationale",
    "mitre",
    "drift",
    "description",
}


def _key_lines(node: yaml.Node) -> dict[str, int]:
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {key.value: key.start_mark.line + 1 for key, _ in node.value if isinstance(key, yaml.ScalarNode)}


def _choice(enum: type[StrEnum], value: Any, where: str) -> Any:
    try:
        return enum(str(value).lower())
    except ValueError:
        allowed = ", ".join(member.value for member in enum)  # type: ignore[attr-defined]
        raise CheckError(f"{where}: {value!r} is not one of {allowed}") from None


def _parse_tests(raw: Any, where: str, line: int, scope: Scope, object_type: str) -> tuple[CheckTest, ...]:
    if not isinstance(raw, list) or not raw:
        raise CheckError(f"{where}: 'tests' must list at least one passing and one failing snapshot")
    tests = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise CheckError(f"{where}: tests[{index}] must be a mapping with name, expect and snapshot(s)")
        expect = _choice(Expectation, item.get("expect"), f"{where}: tests[{index}].expect")
        if "snapshots" in item:
            snapshots = item["snapshots"]
            if not isinstance(snapshots, dict) or not all(isinstance(v, list) for v in snapshots.values()):
                raise CheckError(f"{where}: tests[{index}].snapshots must map object types to lists")
        elif "snapshot" in item and isinstance(item["snapshot"], dict):
            snapshots = {object_type: [item["snapshot"]]}
        else:
            raise CheckError(f"{where}: tests[{index}] needs 'snapshot' (one object) or 'snapshots'")
        tests.append(CheckTest(str(item.get("name", f"test {index + 1}")), expect, snapshots, line))
    expectations = {test.expect for test in tests}
    if expectations != {Expectation.PASS, Expectation.FAIL}:
        raise CheckError(f"{where}: tests need at least one 'expect: pass' and one 'expect: fail' snapshot")
    return tuple(tests)


def parse_check(
    raw: Any, *, source: str = "<string>", line: int = 1, lines: dict[str, int] | None = None
) -> PostureCheck:
    """Validate one check document and compile its expressions."""
    lines = lines or {}
    where = f"{source}:{line}"
    if not isinstance(raw, dict):
        raise CheckError(f"{where}: a posture check must be a YAML mapping")
    missing = [name for name in _REQUIRED if name not in raw]
    if missing:
        raise CheckError(f"{where}: check {raw.get('id', '?')!r} is missing {', '.join(missing)}")
    unknown = sorted(set(raw) - _KNOWN)
    if unknown:
        at = lines.get(unknown[0], line)
        raise CheckError(
            f"{source}:{at}: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(_KNOWN))})"
        )

    def field_at(name: str) -> str:
        return f"{source}:{lines.get(name, line)} ({name})"

    object_type = str(raw["object"])
    if object_type not in OBJECT_TYPES:
        raise CheckError(
            f"{field_at('object')}: {object_type!r} is not a snapshot object type ({', '.join(sorted(OBJECT_TYPES))})"
        )
    scope = _choice(Scope, raw.get("scope", "each"), field_at("scope"))
    object_types = tuple(str(t) for t in raw.get("objects", [object_type]))
    for extra in object_types:
        if extra not in OBJECT_TYPES:
            raise CheckError(f"{field_at('objects')}: {extra!r} is not a snapshot object type")
    compiled = {}
    for name in ("condition", "applies_to"):
        if raw.get(name) is None:
            continue
        try:
            compiled[name] = compile_expression(str(raw[name]))
        except ExpressionError as exc:
            raise CheckError(f"{field_at(name)}: {exc}") from None
    remediation = raw.get("remediation")
    if remediation is not None and not (isinstance(remediation, dict) and "action" in remediation):
        raise CheckError(f"{field_at('remediation')}: remediation needs an 'action' (and optional 'params')")
    baseline = raw.get("baseline") or {}
    if not isinstance(baseline, dict):
        raise CheckError(f"{field_at('baseline')}: baseline must map setting paths to expected values")
    return PostureCheck(
        id=str(raw["id"]),
        provider=_choice(Provider, raw["provider"], field_at("provider")),
        title=str(raw["title"]),
        severity=_choice(Severity, raw["severity"], field_at("severity")),
        category=_choice(Category, raw["category"], field_at("category")),
        object_type=object_type,
        scope=scope,
        condition_text=str(raw["condition"]),
        condition=compiled["condition"],
        applies_to_text=str(raw["applies_to"]) if raw.get("applies_to") else None,
        applies_to=compiled.get("applies_to"),
        object_id=str(raw["object_id"]) if raw.get("object_id") is not None else None,
        object_types=object_types if scope is Scope.TENANT else (object_type,),
        baseline={str(k): v for k, v in baseline.items()},
        remediation=Remediation(str(remediation["action"]), dict(remediation.get("params") or {}))
        if remediation
        else None,
        references=tuple(str(r) for r in raw.get("references") or ()),
        rationale=str(raw.get("rationale") or raw.get("description") or ""),
        mitre=tuple(str(m) for m in raw.get("mitre") or ()),
        drift=bool(raw.get("drift", object_type in SETTING_TYPES)),
        tests=_parse_tests(raw["tests"], field_at("tests"), lines.get("tests", line), scope, object_type),
        source=source,
        line=line,
    )


def parse_file(path: Path) -> list[PostureCheck]:
    """Every check in one YAML file (one per document)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CheckError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}" if mark else ""
        raise CheckError(f"{path}{at}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    checks = []
    for node, document in zip(nodes, documents, strict=True):
        if document is None:
            continue
        line = node.start_mark.line + 1 if node is not None else 1
        checks.append(parse_check(document, source=str(path), line=line, lines=_key_lines(node)))
    return checks


def iter_check_files(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    yield from sorted(
        p
        for p in path.rglob("*")
        if p.suffix in (".yml", ".yaml") and p.is_file() and p.name != CONTROL_MAPPINGS_FILE
    )


def load_checks(path: Path | str | None = None) -> list[PostureCheck]:
    """All checks under `path` (default: the shipped rules/posture); duplicate ids are refused."""
    root = Path(path) if path is not None else DEFAULT_RULES_DIR
    if not root.exists():
        raise CheckError(f"{root} does not exist; point at a posture check file or folder")
    checks: list[PostureCheck] = []
    seen: dict[str, str] = {}
    for file in iter_check_files(root):
        for check in parse_file(file):
            if check.id in seen:
                raise CheckError(
                    f"{check.source}:{check.line}: duplicate check id {check.id!r} (also in {seen[check.id]})"
                )
            seen[check.id] = f"{check.source}:{check.line}"
            checks.append(check)
    return checks
