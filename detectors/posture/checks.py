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
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from core import loading
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
        "policy",  # Okta's sign-on, MFA enrolment, password and access policies
    }
)
# Object types whose changes are configuration drift (a user or a file changing is not drift).
SETTING_TYPES = frozenset({"ca_policy", "security_defaults", "tenant_settings", "policy"})

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


_FILE = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


def _lower(value: Any) -> Any:
    return str(value).lower() if value is not None else value


def _text(value: Any) -> Any:
    """Scalars as text, as written (YAML 1.1 reads `off` as false: a test named off stays "False")."""
    if isinstance(value, list):
        return [str(v) if isinstance(v, bool | int | float) else v for v in value]
    return str(value) if isinstance(value, bool | int | float) else value


class TestEntry(BaseModel):
    """One test snapshot: `snapshot` (one object of the check's type) or `snapshots` (by type)."""

    model_config = _FILE

    name: str | None = None
    expect: Expectation
    snapshot: dict[str, Any] | None = None
    snapshots: dict[str, list[dict[str, Any]]] | None = None

    _expect = field_validator("expect", mode="before")(_lower)
    _name = field_validator("name", mode="before")(_text)

    @model_validator(mode="after")
    def _one(self) -> TestEntry:
        if self.snapshot is None and self.snapshots is None:
            raise ValueError("a test needs 'snapshot' (one object) or 'snapshots'")
        return self


class RemediationEntry(BaseModel):
    model_config = _FILE

    action: str = Field(description="A remediation catalogue action.")
    params: dict[str, Any] = Field(default_factory=dict)


def _expression(value: str | None) -> str | None:
    if value is not None:
        try:
            compile_expression(value)
        except ExpressionError as exc:
            raise ValueError(str(exc)) from None
    return value


def _object_type(value: str) -> str:
    if value not in OBJECT_TYPES:
        raise ValueError(f"{value!r} is not a snapshot object type ({', '.join(sorted(OBJECT_TYPES))})")
    return value


class CheckFile(BaseModel):
    """One posture check document (rules/posture/**/*.yml); `tenantguard schema posture-check`."""

    model_config = _FILE

    id: str = Field(min_length=1)
    provider: Provider
    title: str
    severity: Severity
    category: Category
    object: Annotated[str, AfterValidator(_object_type)] = Field(
        description="The snapshot object type it reads."
    )
    condition: Annotated[str, AfterValidator(_expression)] = Field(
        description="True when the tenant is in the expected state (posture expression)."
    )
    tests: list[TestEntry] = Field(description="At least one 'expect: pass' and one 'expect: fail' snapshot.")
    scope: Scope = Scope.EACH
    applies_to: Annotated[str | None, AfterValidator(_expression)] = None
    object_id: str | None = None
    objects: list[Annotated[str, AfterValidator(_object_type)]] | None = None
    baseline: dict[str, Any] | None = Field(
        default=None, description="Setting paths to expected values (drift)."
    )
    remediation: RemediationEntry | None = None
    references: list[str] | None = None
    rationale: str | None = None
    description: str | None = None
    mitre: list[str] | None = None
    drift: bool | None = None

    _enums = field_validator("provider", "severity", "category", "scope", mode="before")(_lower)
    _texts = field_validator(
        "id", "title", "object_id", "rationale", "description", "references", "mitre", "object", mode="before"
    )(_text)

    @field_validator("tests")
    @classmethod
    def _both(cls, tests: list[TestEntry]) -> list[TestEntry]:
        if not tests:
            raise ValueError("'tests' must list at least one passing and one failing snapshot")
        if {t.expect for t in tests} != {Expectation.PASS, Expectation.FAIL}:
            raise ValueError("tests need at least one 'expect: pass' and one 'expect: fail' snapshot")
        return tests


def _check(loaded: loading.Loaded, document: int) -> PostureCheck:
    raw = loaded.documents[document]
    line = loaded.of(raw, 1) or 1
    if not isinstance(raw, dict):
        raise CheckError(f"{loaded.source}:{line}: a posture check must be a YAML mapping")
    parsed = loading.validate(
        CheckFile, loaded, error=CheckError, document=document, template="{at} ({field}): {message}"
    )
    object_type = parsed.object
    tests_line = loaded.key(raw, "tests", line) or line
    return PostureCheck(
        id=parsed.id,
        provider=parsed.provider,
        title=parsed.title,
        severity=parsed.severity,
        category=parsed.category,
        object_type=object_type,
        scope=parsed.scope,
        condition_text=parsed.condition,
        condition=compile_expression(parsed.condition),
        applies_to_text=parsed.applies_to or None,
        applies_to=compile_expression(parsed.applies_to) if parsed.applies_to else None,
        object_id=parsed.object_id,
        object_types=tuple(parsed.objects or [object_type])
        if parsed.scope is Scope.TENANT
        else (object_type,),
        baseline={str(k): v for k, v in (parsed.baseline or {}).items()},
        remediation=Remediation(parsed.remediation.action, dict(parsed.remediation.params))
        if parsed.remediation
        else None,
        references=tuple(parsed.references or ()),
        rationale=parsed.rationale or parsed.description or "",
        mitre=tuple(parsed.mitre or ()),
        drift=parsed.drift if parsed.drift is not None else object_type in SETTING_TYPES,
        tests=tuple(
            CheckTest(
                test.name or f"test {index + 1}",
                test.expect,
                test.snapshots if test.snapshots is not None else {object_type: [test.snapshot or {}]},
                tests_line,
            )
            for index, test in enumerate(parsed.tests)
        ),
        source=loaded.source,
        line=line,
    )


def parse_file(path: Path) -> list[PostureCheck]:
    """Every check in one YAML file (one per document)."""
    try:
        loaded = loading.load_path(path, kind="yaml")
    except loading.LoadError as exc:
        raise CheckError(str(exc)) from None
    return [_check(loaded, index) for index, document in enumerate(loaded.documents) if document is not None]


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
