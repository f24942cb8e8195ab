"""Rule files -> a RulePack. Every refusal names the file, the line and the reason; one bad rule
never stops the others from loading.

A rule file holds one or more YAML documents (`---`): Sigma rules, and Sigma correlation rules
that reference rules by `name` (or `id`) from any file of the pack. Besides the Sigma fields a
document may carry `tenantguard:` (alert settings) and `tests:` (its test events); both are
described in detectors/sigma/README.md.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sigma.conditions import ConditionOR, SigmaCondition
from sigma.correlations import (
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
    SigmaExtendedCorrelationCondition,
)
from sigma.exceptions import (
    SigmaConditionError,
    SigmaCorrelationConditionError,
    SigmaCorrelationRuleError,
    SigmaCorrelationTypeError,
    SigmaDateError,
    SigmaDescriptionError,
    SigmaDetectionError,
    SigmaError,
    SigmaIdentifierError,
    SigmaLevelError,
    SigmaLogsourceError,
    SigmaStatusError,
    SigmaTimespanError,
    SigmaTitleError,
)
from sigma.modifiers import SigmaBase64Modifier, SigmaBase64OffsetModifier, modifier_mapping
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import SigmaCasedString, SigmaExpansion, SigmaString

from core import durations, loading
from core.entities import EntityKind
from detectors.sigma.compiler import (
    CompileError,
    FieldPath,
    Node,
    compile_re2,
    from_sigma,
    predicate,
    simplify,
)
from detectors.sigma.definitions import (
    DEFAULT_DEDUP_PERIOD,
    SEVERITIES,
    AlertSpec,
    CompiledCorrelation,
    CompiledRule,
    CorrelationType,
    RulePack,
    RuleSource,
    RuleTest,
    TestEvent,
)
from detectors.sigma.errors import RuleProblem
from detectors.sigma.logsource import LogsourceError, resolve_streams
from detectors.sigma.pipelines import apply_community_pipeline, apply_placeholders
from detectors.sigma.shapes import unknown_fields

# The rules' control mappings live beside them (read by compliance/, not a rule file).
CONTROL_MAPPINGS_FILE = "controls.yml"
# Values of the `%name%` placeholders that `|expand` rules use (configuration, not a rule file).
PLACEHOLDERS_FILE = "placeholders.yml"
_PLACEHOLDER = re.compile(r"%(\w+)%")
MAX_PLACEHOLDER_VALUES = 10_000
MAX_RULE_FILE_BYTES = 2 << 20
TENANTGUARD_KEYS = {
    "title",
    "severity",
    "confidence",
    "dedup",
    "dedup_period",
    "threshold",
    "unique",
    "context",
    "entities",
    "runbook",
    "signal",
}
TEST_KEYS = {"name", "match", "event", "events", "count", "title", "logsource"}
STATUS_CONFIDENCE = {"stable": 0.9, "test": 0.8, "experimental": 0.7}


# -- YAML with line numbers (core.loading: bounded, unique keys, timestamps as text) -------------

RULE_LIMITS = loading.Limits(max_bytes=MAX_RULE_FILE_BYTES)


def _read_yaml(path: str, raw: bytes) -> tuple[list[Any], loading.Loaded | None, RuleProblem | None]:
    try:
        loaded = loading.load_yaml(raw, source=path, limits=RULE_LIMITS)
    except loading.LoadError as exc:
        return [], None, RuleProblem(path, exc.line, None, exc.reason)
    return loaded.documents, loaded, None


# -- values ---------------------------------------------------------------------------------------


def parse_duration(value: Any) -> float:
    """`60m`, `1h`, `30s`, `1d` (any :mod:`core.durations` form), or a bare number of minutes -> seconds."""
    try:
        return durations.parse_duration(value, bare="m", positive=isinstance(value, str)).total_seconds()
    except durations.DurationError:
        raise ValueError(f"{value!r} is not a duration; write e.g. 15m, 1h, 1d") from None


def _field_list(value: Any, what: str) -> tuple[FieldPath, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() for i in items):
        raise ValueError(f"{what} must be a field name or a list of field names")
    return tuple(FieldPath.of(i) for i in items)


def _mitre(tags: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    techniques, tactics = [], []
    for tag in tags:
        namespace, _, name = tag.partition(".")
        if namespace.lower() != "attack" or not name:
            continue
        if re.fullmatch(r"[tT]\d{4}(\.\d{3})?", name):
            techniques.append(name.upper())
        elif not re.fullmatch(r"[gGsS]\d{4}", name):
            tactics.append(name.lower().replace("-", "_"))
    return tuple(techniques), tuple(tactics)


# -- the loader ------------------------------------------------------------------------------------


class _FileLoader:
    """Loads one file's documents; problems are collected, never raised."""

    def __init__(
        self, path: str, lines: loading.Loaded, placeholders: dict[str, tuple[str, ...]] | None = None
    ) -> None:
        self.path = path
        self.lines = lines
        self.problems: list[RuleProblem] = []
        self.lint: list[RuleProblem] = []
        self.placeholders = placeholders or {}
        self.expands = False  # the document being checked uses `|expand`

    def problem(self, line: int | None, rule: str | None, reason: str) -> None:
        self.problems.append(RuleProblem(self.path, line, rule, reason))

    # detection values are checked here, before pySigma, so that errors carry the line
    def check_detection(self, doc: dict[str, Any], rule: str | None) -> bool:
        detection = doc.get("detection")
        if not isinstance(detection, dict):
            self.problem(
                self.lines.key(doc, "detection"),
                rule,
                "`detection` must be a mapping of selections and a condition",
            )
            return False
        ok = True
        for name, selection in detection.items():
            if not isinstance(name, str):
                self.problem(
                    self.lines.key(detection, name),
                    rule,
                    f"selection name {name!r} is not text: YAML reads off/on/yes/no/true/false/null as values; "
                    "rename the selection (e.g. `filter_off`)",
                )
                ok = False
                continue
            if name == "condition":
                continue
            ok &= self._check_selection(selection, self.lines.key(detection, name), rule)
        if ok and "condition" in detection:  # a mis-read selection name is the problem to report first
            ok = self._check_condition(detection["condition"], self.lines.key(detection, "condition"), rule)
        return ok

    def _check_condition(self, condition: Any, line: int | None, rule: str | None) -> bool:
        if isinstance(condition, str) or (
            isinstance(condition, list) and condition and all(isinstance(c, str) for c in condition)
        ):
            return True
        self.problem(
            line,
            rule,
            f"`condition` must be text (or a list of texts) such as `selection and not filter`, not {condition!r}",
        )
        return False

    def _check_selection(self, selection: Any, line: int | None, rule: str | None) -> bool:
        ok = True
        if isinstance(selection, dict):
            for key, value in selection.items():
                ok &= self._check_item(key, value, self.lines.key(selection, key, line), rule)
        elif isinstance(selection, list):
            for item in selection:
                if isinstance(item, dict | list):
                    ok &= self._check_selection(item, self.lines.of(item, line), rule)
        return ok

    def _check_item(self, key: Any, value: Any, line: int | None, rule: str | None) -> bool:
        if not isinstance(key, str):
            self.problem(
                line,
                rule,
                f"field name {key!r} is not text: quote it (YAML reads off/on/yes/no/true/false/null and numbers as values)",
            )
            return False
        field, *modifiers = key.split("|")
        unknown = [m for m in modifiers if m not in modifier_mapping]
        if unknown:
            self.problem(
                line,
                rule,
                f"unknown modifier {unknown[0]!r} in {key!r}; known modifiers: {', '.join(sorted(modifier_mapping))}",
            )
            return False
        values = value if isinstance(value, list) else [value]
        if "re" in modifiers:
            for v in values:
                try:
                    compile_re2(
                        str(v),
                        ignore_case=bool({"i", "ignorecase"} & set(modifiers)),
                        multiline=bool({"m", "multiline"} & set(modifiers)),
                        dotall=bool({"s", "dotall"} & set(modifiers)),
                    )
                except CompileError as exc:
                    self.problem(line, rule, f"{key}: {exc}")
                    return False
        if "cidr" in modifiers:
            for v in values:
                try:
                    ipaddress.ip_network(str(v), strict=False)
                except ValueError:
                    self.problem(line, rule, f"{key}: {v!r} is not an IP network (write e.g. 10.0.0.0/8)")
                    return False
        if {"gt", "gte", "lt", "lte"} & set(modifiers):
            for v in values:
                if isinstance(v, bool) or not isinstance(v, int | float):
                    self.problem(
                        line, rule, f"{key}: {v!r} is not a number; comparison modifiers need numbers"
                    )
                    return False
        if "expand" in modifiers:
            names = [n for v in values if isinstance(v, str) for n in _PLACEHOLDER.findall(v)]
            if not names:
                self.problem(line, rule, f"{key}: `expand` needs a %placeholder% in the value")
                return False
            missing = sorted({n for n in names if n not in self.placeholders})
            if missing:
                self.problem(
                    line,
                    rule,
                    f"{key}: no values for placeholder(s) {', '.join('%' + n + '%' for n in missing)}; "
                    f"list them in {PLACEHOLDERS_FILE} beside the rules (name: [value, ...])",
                )
                return False
            self.expands = True
        return True

    def sigma_problem(self, doc: dict[str, Any], rule: str | None, exc: Exception) -> None:
        section = {
            SigmaLogsourceError: "logsource",
            SigmaConditionError: "detection",
            SigmaDetectionError: "detection",
            SigmaIdentifierError: "id",
            SigmaLevelError: "level",
            SigmaStatusError: "status",
            SigmaTitleError: "title",
            SigmaDateError: "date",
            SigmaDescriptionError: "description",
            SigmaTimespanError: "correlation",
            SigmaCorrelationTypeError: "correlation",
            SigmaCorrelationRuleError: "correlation",
            SigmaCorrelationConditionError: "correlation",
        }
        key = next((k for cls, k in section.items() if isinstance(exc, cls)), None)
        line = self.lines.key(doc, key) if key else self.lines.of(doc)
        if isinstance(exc, SigmaConditionError):
            line = self.lines.key(doc.get("detection"), "condition", line)
        message = str(exc).split(" in /", 1)[0]
        self.problem(line, rule, f"{type(exc).__name__}: {message}")

    def alert_spec(
        self, doc: dict[str, Any], rule: str | None, level: str, status: str | None, tags: tuple[str, ...]
    ) -> AlertSpec | None:
        block = doc.get("tenantguard") or {}
        line = self.lines.key(doc, "tenantguard")
        if not isinstance(block, dict):
            self.problem(line, rule, "`tenantguard:` must be a mapping (see detectors/sigma/README.md)")
            return None
        unknown = set(block) - TENANTGUARD_KEYS
        if unknown:
            key = sorted(unknown, key=str)[0]
            self.problem(
                self.lines.key(block, key, line),
                rule,
                f"unknown tenantguard key {key!r}; known: {', '.join(sorted(TENANTGUARD_KEYS))}",
            )
            return None
        try:
            severity = str(block.get("severity", level)).lower()
            if severity not in SEVERITIES:
                raise ValueError(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
            confidence = float(block.get("confidence", STATUS_CONFIDENCE.get(status or "", 0.8)))
            if not 0.0 <= confidence <= 1.0:
                raise ValueError("confidence must be between 0 and 1")
            threshold = block.get("threshold", 1)
            if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
                raise ValueError("threshold must be a whole number ≥ 1")
            dedup = None if "dedup" not in block else _field_list(block["dedup"], "dedup")
            unique_fields = _field_list(block.get("unique"), "unique")
            if len(unique_fields) > 1:
                raise ValueError("unique takes one field")
            entities_raw = block.get("entities") or {}
            if not isinstance(entities_raw, dict) or set(entities_raw) - set(EntityKind):
                raise ValueError(f"entities must map some of {', '.join(EntityKind)} to field names")
            entities = {kind: _field_list(paths, f"entities.{kind}") for kind, paths in entities_raw.items()}
            runbook = block.get("runbook", "")
            if not isinstance(runbook, str):
                raise ValueError("runbook must be text")
            title = block.get("title", doc.get("title", ""))
            if not isinstance(title, str):
                raise ValueError("title must be text")
            techniques, tactics = _mitre(tags)
            references = doc.get("references") or []
            return AlertSpec(
                severity=severity,
                confidence=confidence,
                title_template=title,
                dedup_fields=dedup,
                dedup_period=parse_duration(block.get("dedup_period", DEFAULT_DEDUP_PERIOD / 60)),
                threshold=threshold,
                unique=unique_fields[0] if unique_fields else None,
                context_fields=_field_list(block.get("context"), "context"),
                entities=entities,
                runbook=runbook.strip(),
                mitre=techniques,
                tactics=tactics,
                references=tuple(str(r) for r in references) if isinstance(references, list) else (),
                signal_only=bool(block.get("signal", False)),
            )
        except (ValueError, TypeError) as exc:
            self.problem(line, rule, f"tenantguard: {exc}")
            return None

    def tests(self, doc: dict[str, Any], rule: str | None) -> tuple[RuleTest, ...] | None:
        raw = doc.get("tests")
        if raw is None:
            return ()
        line = self.lines.key(doc, "tests")
        if not isinstance(raw, list):
            self.problem(line, rule, "`tests:` must be a list of test cases")
            return None
        out = []
        for index, case in enumerate(raw, 1):
            case_line = self.lines.of(case, line)
            if not isinstance(case, dict):
                self.problem(
                    case_line, rule, f"test #{index} must be a mapping with name, match and event(s)"
                )
                return None
            unknown = set(case) - TEST_KEYS
            if unknown:
                key = sorted(unknown, key=str)[0]
                self.problem(
                    self.lines.key(case, key, case_line),
                    rule,
                    f"test #{index}: unknown key {key!r}; known: {', '.join(sorted(TEST_KEYS))}",
                )
                return None
            name = case.get("name") or f"test #{index}"
            if not isinstance(case.get("match"), bool):
                self.problem(case_line, rule, f"test {name!r}: `match: true|false` is required")
                return None
            if ("event" in case) == ("events" in case):
                self.problem(case_line, rule, f"test {name!r}: give exactly one of `event:` or `events:`")
                return None
            items = [case["event"]] if "event" in case else case["events"]
            if not isinstance(items, list) or not items:
                self.problem(case_line, rule, f"test {name!r}: `events:` must be a non-empty list")
                return None
            try:
                default = _test_logsource(case.get("logsource"))
                events = tuple(e for item in items for e in _test_events(item, default))
            except (ValueError, LogsourceError) as exc:
                self.problem(case_line, rule, f"test {name!r}: {exc}")
                return None
            count = case.get("count")
            if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
                self.problem(case_line, rule, f"test {name!r}: count must be a whole number")
                return None
            title = case.get("title")
            out.append(
                RuleTest(
                    str(name),
                    case["match"],
                    events,
                    count,
                    str(title) if title is not None else None,
                    case_line,
                )
            )
        return tuple(out)

    def lint_tests(self, tests: tuple[RuleTest, ...], line: int | None, rule: str) -> None:
        if not any(t.expect_match for t in tests) or not any(not t.expect_match for t in tests):
            self.lint.append(
                RuleProblem(
                    self.path,
                    line,
                    rule,
                    "needs at least one positive (match: true) and one negative (match: false) test",
                )
            )


def _test_logsource(raw: Any) -> tuple[str, str] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ValueError("logsource must be a mapping with product and service")
    provider, streams = resolve_streams(raw.get("product"), raw.get("service"))
    if len(streams) != 1:
        raise ValueError("a test event's logsource needs a service")
    return provider, streams[0]


def _substitute(value: Any, index: int) -> Any:
    if isinstance(value, str):
        return value.replace("{i}", str(index))
    if isinstance(value, dict):
        return {k: _substitute(v, index) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, index) for v in value]
    return value


def _test_events(item: Any, default: tuple[str, str] | None) -> list[TestEvent]:
    """One test event, or `{event, logsource?, repeat?, every?}`: `repeat: N` makes N copies,
    `{i}` in strings becomes 1..N, and copy i happens (i-1) x `every` after the event's time."""
    repeat, every = 1, 0.0
    if isinstance(item, dict) and "event" in item and set(item) <= {"event", "logsource", "repeat", "every"}:
        where = _test_logsource(item.get("logsource")) or default
        repeat = item.get("repeat", 1)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= 10_000:
            raise ValueError("repeat must be a whole number from 1 to 10000")
        every = parse_duration(item["every"]) if "every" in item else 0.0
        item = item["event"]
    else:
        where = default
    if not isinstance(item, dict):
        raise ValueError("every test event must be a mapping (the event's JSON as YAML)")
    provider, stream = where if where else ("", "")
    if repeat == 1:
        return [TestEvent(provider, stream, item)]
    return [TestEvent(provider, stream, _substitute(item, i), (i - 1) * every) for i in range(1, repeat + 1)]


def _rule_id(doc: dict[str, Any]) -> str | None:
    name = doc.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    ident = doc.get("id")
    return str(ident) if ident else None


def _mark_base64_cased(rule: SigmaRule) -> None:
    """Base64 text is case-significant; Sigma's case-insensitive default would match garbage."""

    def visit(item: SigmaDetection | SigmaDetectionItem) -> None:
        if isinstance(item, SigmaDetection):
            for child in item.detection_items:
                visit(child)
            return
        if any(m in (SigmaBase64Modifier, SigmaBase64OffsetModifier) for m in item.modifiers):
            item.value = [_cased(v) for v in item.value]

    def _cased(value: Any) -> Any:
        if isinstance(value, SigmaExpansion):
            return SigmaExpansion([_cased(v) for v in value.values])
        if isinstance(value, SigmaString) and not isinstance(value, SigmaCasedString):
            return SigmaCasedString.from_sigma_string(value)
        return value

    for detection in rule.detection.detections.values():
        visit(detection)


def _condition_node(rule: SigmaRule) -> Node:
    parsed = [condition.parsed for condition in rule.detection.parsed_condition]
    if len(parsed) == 1:
        return simplify(from_sigma(parsed[0]))
    return simplify(from_sigma(ConditionOR(parsed)))


def _detection_nodes(rule: SigmaRule) -> dict[str, Node]:
    out = {}
    for name in rule.detection.detections:
        try:
            out[name] = simplify(from_sigma(SigmaCondition(name, rule.detection).parse()))
        except (SigmaError, CompileError):
            continue
    return out


def _level(doc_level: Any) -> str:
    return str(doc_level).lower() if doc_level else "medium"


def load_rule_doc(loader: _FileLoader, doc: dict[str, Any]) -> CompiledRule | None:
    rule_name = _rule_id(doc)
    doc_line = loader.lines.of(doc)
    if rule_name is None:
        loader.problem(doc_line, doc.get("title"), "a rule needs an `id` (UUID) or a `name`")
        return None
    logsource = doc.get("logsource")
    if not isinstance(logsource, dict):
        loader.problem(
            loader.lines.key(doc, "logsource", doc_line),
            rule_name,
            "`logsource:` with product and service is required",
        )
        return None
    try:
        provider, streams = resolve_streams(logsource.get("product"), logsource.get("service"))
    except LogsourceError as exc:
        loader.problem(loader.lines.key(doc, "logsource", doc_line), rule_name, str(exc))
        return None
    loader.expands = False
    if not loader.check_detection(doc, rule_name):
        return None
    try:
        sigma = SigmaRule.from_dict(doc)
    except SigmaError as exc:
        loader.sigma_problem(doc, rule_name, exc)
        return None
    except Exception as exc:  # pySigma can raise plain errors on odd shapes; still name the rule
        loader.problem(doc_line, rule_name, f"cannot parse rule: {type(exc).__name__}: {exc}")
        return None
    try:
        if loader.expands:
            apply_placeholders(sigma, loader.placeholders)
        apply_community_pipeline(sigma)
        _mark_base64_cased(sigma)
        node = _condition_node(sigma)
        matches = predicate(node)
    except SigmaError as exc:
        loader.sigma_problem(doc, rule_name, exc)
        return None
    except CompileError as exc:
        loader.problem(loader.lines.key(doc, "detection", doc_line), rule_name, str(exc))
        return None
    tags = tuple(str(t) for t in sigma.tags)
    level = _level(sigma.level.name if sigma.level else None)
    status = sigma.status.name.lower() if sigma.status else None
    alert = loader.alert_spec(doc, rule_name, level, status, tags)
    tests = loader.tests(doc, rule_name)
    if alert is None or tests is None:
        return None
    tests = tuple(
        dataclasses.replace(
            t,
            events=tuple(
                e if e.provider else TestEvent(provider, streams[0], e.data, e.offset) for e in t.events
            ),
        )
        for t in tests
    )
    loader.lint_tests(tests, loader.lines.key(doc, "tests", doc_line), rule_name)
    conditions = doc["detection"].get("condition")
    return CompiledRule(
        rule_id=rule_name,
        uuid=str(sigma.id) if sigma.id else None,
        name=sigma.name,
        title=sigma.title,
        description=(sigma.description or "").strip(),
        level=level,
        status=status,
        tags=tags,
        provider=provider,
        streams=streams,
        node=node,
        matches=matches,
        detections=_detection_nodes(sigma),
        condition_text=" or ".join(conditions) if isinstance(conditions, list) else str(conditions),
        alert=alert,
        source=RuleSource(loader.path, doc_line),
        tests=tests,
        sigma=sigma,
        unknown_fields=tuple(unknown_fields(node, provider, streams)),
    )


_SUPPORTED_CORRELATIONS = {
    SigmaCorrelationType.EVENT_COUNT: CorrelationType.EVENT_COUNT,
    SigmaCorrelationType.VALUE_COUNT: CorrelationType.VALUE_COUNT,
    SigmaCorrelationType.TEMPORAL: CorrelationType.TEMPORAL,
    SigmaCorrelationType.TEMPORAL_ORDERED: CorrelationType.TEMPORAL_ORDERED,
}


def load_correlation_doc(loader: _FileLoader, doc: dict[str, Any]) -> CompiledCorrelation | None:
    rule_name = _rule_id(doc)
    doc_line = loader.lines.of(doc)
    corr_line = loader.lines.key(doc, "correlation", doc_line)
    if rule_name is None:
        loader.problem(doc_line, doc.get("title"), "a correlation rule needs an `id` (UUID) or a `name`")
        return None
    try:
        sigma = SigmaCorrelationRule.from_dict(doc)
    except SigmaError as exc:
        loader.sigma_problem(doc, rule_name, exc)
        return None
    except Exception as exc:
        loader.problem(corr_line, rule_name, f"cannot parse correlation: {type(exc).__name__}: {exc}")
        return None
    kind = _SUPPORTED_CORRELATIONS.get(sigma.type)
    if kind is None:
        loader.problem(
            corr_line,
            rule_name,
            f"correlation type {sigma.type.name.lower()} is not supported; use event_count, value_count, temporal or temporal_ordered",
        )
        return None
    op, count, value_field = "gte", len(sigma.rules or []), None
    condition = sigma.condition
    if isinstance(condition, SigmaExtendedCorrelationCondition):
        loader.problem(
            corr_line,
            rule_name,
            "extended (boolean) correlation conditions are not supported; list the rules and use gte",
        )
        return None
    if condition is not None:
        op = condition.op.name.lower()
        count = int(condition.count)
        if op not in ("gte", "gt"):
            loader.problem(
                loader.lines.key(doc.get("correlation"), "condition", corr_line),
                rule_name,
                f"correlation condition {op} is not supported; use gte or gt (a finding fires when the count is reached)",
            )
            return None
        if condition.op is SigmaCorrelationConditionOperator.GT:
            op, count = "gte", count + 1
        if kind is CorrelationType.VALUE_COUNT:
            if not isinstance(condition.fieldref, str):
                loader.problem(corr_line, rule_name, "value_count needs `condition.field` naming one field")
                return None
            value_field = FieldPath.of(condition.fieldref)
    aliases = {
        alias.alias: {ref.reference: FieldPath.of(field) for ref, field in alias.mapping.items()}
        for alias in sigma.aliases
    }
    tags = tuple(str(t) for t in sigma.tags)
    level = _level(sigma.level.name if sigma.level else None)
    status = sigma.status.name.lower() if sigma.status else None
    alert = loader.alert_spec(doc, rule_name, level, status, tags)
    tests = loader.tests(doc, rule_name)
    if alert is None or tests is None:
        return None
    loader.lint_tests(tests, loader.lines.key(doc, "tests", doc_line), rule_name)
    return CompiledCorrelation(
        rule_id=rule_name,
        uuid=str(sigma.id) if sigma.id else None,
        name=sigma.name,
        title=sigma.title,
        description=(sigma.description or "").strip(),
        level=level,
        status=status,
        tags=tags,
        type=kind,
        member_refs=tuple(ref.reference for ref in sigma.rules or []),
        group_by=tuple(sigma.group_by or ()),
        aliases=aliases,
        timespan=float(sigma.timespan.seconds),
        op=op,
        count=max(count, 1),
        value_field=value_field,
        generate=bool(sigma.generate),
        alert=alert,
        source=RuleSource(loader.path, doc_line),
        tests=tests,
        sigma=sigma,
    )


def load_file(path: Path, pack: RulePack, lint: list[RuleProblem]) -> None:
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        pack.problems.append(RuleProblem(name, None, None, f"cannot read: {exc.strerror or exc}"))
        return
    docs, lines, problem = _read_yaml(name, raw)
    if problem is not None or lines is None:
        pack.problems.append(problem or RuleProblem(name, None, None, "unreadable"))
        return
    loader = _FileLoader(name, lines, pack.placeholders)
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict):
            loader.problem(None, None, "each YAML document must be a mapping (a Sigma rule)")
            continue
        if "action" in doc or "filter" in doc:
            loader.problem(
                lines.of(doc),
                _rule_id(doc),
                "Sigma collection actions and filters are not supported; write each rule out in full",
            )
            continue
        try:
            if "correlation" in doc:
                correlation = load_correlation_doc(loader, doc)
                if correlation is not None:
                    pack.correlations.append(correlation)
            else:
                rule = load_rule_doc(loader, doc)
                if rule is not None:
                    pack.rules.append(rule)
        except RecursionError:
            loader.problem(lines.of(doc), _rule_id(doc), "rule is nested too deeply to compile")
        except Exception as exc:  # a bug must not take the rest of the pack down; say where
            loader.problem(
                lines.of(doc), _rule_id(doc), f"internal error while loading: {type(exc).__name__}: {exc}"
            )
    pack.problems.extend(loader.problems)
    lint.extend(loader.lint)
    pack.files.append(name)


def rule_files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.suffix in (".yml", ".yaml")
                    and p.is_file()
                    and p.name not in (CONTROL_MAPPINGS_FILE, PLACEHOLDERS_FILE)
                )
            )
        else:
            files.append(path)
    return files


def read_placeholders(path: Path) -> tuple[dict[str, tuple[str, ...]], list[RuleProblem]]:
    """A placeholders file: a mapping of placeholder name -> a value or a list of values."""
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return {}, [RuleProblem(name, None, None, f"cannot read: {exc.strerror or exc}")]
    docs, lines, problem = _read_yaml(name, raw)
    if problem is not None or lines is None:
        return {}, [problem or RuleProblem(name, None, None, "unreadable")]
    doc: Any = next((d for d in docs if d is not None), {})
    if not isinstance(doc, dict):
        return {}, [RuleProblem(name, None, None, "placeholders must be a mapping of name: [values]")]
    values: dict[str, tuple[str, ...]] = {}
    problems: list[RuleProblem] = []
    for key, value in doc.items():
        entries = value if isinstance(value, list) else [value]
        line = lines.key(doc, key, None)
        if not isinstance(key, str) or not re.fullmatch(r"\w+", key):
            problems.append(
                RuleProblem(name, line, None, f"{key!r} is not a placeholder name (letters, digits, _)")
            )
        elif not entries or len(entries) > MAX_PLACEHOLDER_VALUES:
            problems.append(
                RuleProblem(name, line, None, f"{key}: 1 to {MAX_PLACEHOLDER_VALUES} values are needed")
            )
        elif not all(isinstance(e, str | int | float) and not isinstance(e, bool) for e in entries):
            problems.append(RuleProblem(name, line, None, f"{key}: values must be strings or numbers"))
        else:
            values[key] = tuple(str(e) for e in entries)
    return values, problems


def load_pack(
    paths: Iterable[str | Path],
    *,
    lint: list[RuleProblem] | None = None,
    placeholders: dict[str, tuple[str, ...]] | None = None,
) -> RulePack:
    """Load every rule file under `paths`; refusals end up in `pack.problems`, never raised.

    `%placeholders%` of `|expand` rules take their values from `placeholders`, else from the
    placeholders.yml at the top of each directory in `paths`."""
    paths = list(paths)
    pack = RulePack()
    if placeholders is not None:
        pack.placeholders = dict(placeholders)
    else:
        for raw in paths:
            candidate = Path(raw) / PLACEHOLDERS_FILE
            if Path(raw).is_dir() and candidate.is_file():
                values, problems = read_placeholders(candidate)
                pack.placeholders.update(values)
                pack.problems.extend(problems)
    lint_out: list[RuleProblem] = [] if lint is None else lint
    for path in rule_files(paths):
        load_file(path, pack, lint_out)
    _drop_duplicates(pack)
    _resolve_correlations(pack)
    return pack


def _drop_duplicates(pack: RulePack) -> None:
    seen: dict[str, RuleSource] = {}
    kept_rules: list[CompiledRule] = []
    kept_corr: list[CompiledCorrelation] = []
    for item in pack.items():
        keys = {k for k in (item.rule_id, item.uuid, item.name) if k}
        clash = next((k for k in keys if k in seen), None)
        if clash is not None:
            pack.problems.append(
                RuleProblem(
                    item.source.path,
                    item.source.line,
                    item.rule_id,
                    f"duplicate rule id/name {clash!r} (first in {seen[clash]})",
                )
            )
            continue
        for k in keys:
            seen[k] = item.source
        if isinstance(item, CompiledRule):
            kept_rules.append(item)
        else:
            kept_corr.append(item)
    pack.rules, pack.correlations = kept_rules, kept_corr


def _resolve_correlations(pack: RulePack) -> None:
    """Bind member references across files; members of non-generating correlations become signals."""
    index = pack.by_id()
    resolved = []
    for corr in pack.correlations:
        missing = [ref for ref in corr.member_refs if ref not in index]
        if missing:
            pack.problems.append(
                RuleProblem(
                    corr.source.path,
                    corr.source.line,
                    corr.rule_id,
                    f"references unknown rule {missing[0]!r}; give the rule's name or id",
                )
            )
            continue
        corr.members = tuple(index[ref].rule_id for ref in corr.member_refs)
        corr.aliases = {
            alias: {index[ref].rule_id: path for ref, path in mapping.items() if ref in index}
            for alias, mapping in corr.aliases.items()
        }
        resolved.append(corr)
    resolved = _without_cycles(resolved, pack)
    pack.correlations = resolved
    for corr in resolved:
        first = _first_rule(corr, index)
        corr.provider = first.provider if first else None
        corr.tests = tuple(
            dataclasses.replace(t, events=tuple(_default_event_source(e, first) for e in t.events))
            for t in corr.tests
        )
        for member in corr.members:
            target = index[member]
            target.used_by.append(corr.rule_id)
            if not corr.generate and target.alert is not None and not target.alert.signal_only:
                target.alert = dataclasses.replace(target.alert, signal_only=True)


def _first_rule(
    corr: CompiledCorrelation, index: dict[str, CompiledRule | CompiledCorrelation], depth: int = 0
) -> CompiledRule | None:
    """The first single-event rule under a correlation (its logsource is the tests' default)."""
    for member in corr.members:
        target = index.get(member)
        if isinstance(target, CompiledRule):
            return target
        if isinstance(target, CompiledCorrelation) and depth < 10:
            found = _first_rule(target, index, depth + 1)
            if found is not None:
                return found
    return None


def _without_cycles(correlations: list[CompiledCorrelation], pack: RulePack) -> list[CompiledCorrelation]:
    """A correlation that (indirectly) references itself would feed itself forever: refuse it."""
    by_id = {c.rule_id: c for c in correlations}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for member in by_id[start].members if start in by_id else ():
            if member == target or (member not in seen and reaches(member, target, seen | {member})):
                return True
        return False

    kept = []
    for corr in correlations:
        if reaches(corr.rule_id, corr.rule_id, set()):
            pack.problems.append(
                RuleProblem(
                    corr.source.path,
                    corr.source.line,
                    corr.rule_id,
                    "correlation references itself (directly or through others)",
                )
            )
        else:
            kept.append(corr)
    return kept


def _default_event_source(event: TestEvent, first: CompiledRule | None) -> TestEvent:
    if event.provider or first is None:
        return event
    return TestEvent(first.provider, first.streams[0], event.data, event.offset)
