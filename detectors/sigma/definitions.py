"""What a loaded rule pack is made of: compiled rules, correlations, alert settings and rule tests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from detectors.sigma.compiler import FieldPath, Node, Predicate
from detectors.sigma.errors import RuleProblem

SEVERITIES = ("informational", "low", "medium", "high", "critical")
DEFAULT_DEDUP_PERIOD = 3600.0


@dataclass(frozen=True)
class RuleSource:
    path: str
    line: int | None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclass(frozen=True)
class AlertSpec:
    """How matches become findings (the `tenantguard:` block of a rule, with defaults)."""

    severity: str
    confidence: float
    title_template: str
    dedup_fields: tuple[FieldPath, ...] | None  # None: the stream's actor field
    dedup_period: float
    threshold: int
    unique: FieldPath | None
    context_fields: tuple[FieldPath, ...]
    entities: Mapping[str, tuple[FieldPath, ...]]
    runbook: str
    mitre: tuple[str, ...]
    tactics: tuple[str, ...]
    references: tuple[str, ...]
    signal_only: bool


@dataclass(frozen=True)
class TestEvent:
    provider: str
    stream: str
    data: Mapping[str, Any]
    offset: float = 0.0  # seconds added to the event's own time (from `repeat`/`every`)


@dataclass(frozen=True)
class RuleTest:
    """One test case shipped with a rule: events, and whether the rule must fire on them."""

    name: str
    expect_match: bool
    events: tuple[TestEvent, ...]
    expect_count: int | None = None
    expect_title: str | None = None
    line: int | None = None


class CorrelationType(StrEnum):
    EVENT_COUNT = "event_count"
    VALUE_COUNT = "value_count"
    TEMPORAL = "temporal"
    TEMPORAL_ORDERED = "temporal_ordered"


@dataclass(eq=False)
class CompiledRule:
    """A single-event Sigma rule: its predicate, where it applies, and how it alerts."""

    rule_id: str
    uuid: str | None
    name: str | None
    title: str
    description: str
    level: str
    status: str | None
    tags: tuple[str, ...]
    provider: str
    streams: tuple[str, ...]
    node: Node
    matches: Predicate
    detections: dict[str, Node]
    condition_text: str
    alert: AlertSpec
    source: RuleSource
    tests: tuple[RuleTest, ...] = ()
    sigma: Any = None  # the pySigma SigmaRule, for `rules convert`
    used_by: list[str] = field(default_factory=list)  # correlation ids referencing this rule
    # fields the condition reads that no stored event of its streams carries (detectors.sigma.shapes)
    unknown_fields: tuple[str, ...] = ()

    @property
    def emits(self) -> bool:
        return not self.alert.signal_only

    @property
    def can_fire(self) -> bool:
        """Every field the rule reads exists in the stored shape of its streams (after mapping)."""
        return not self.unknown_fields

    def __repr__(self) -> str:
        return f"CompiledRule({self.rule_id!r})"


@dataclass(eq=False)
class CompiledCorrelation:
    """A Sigma correlation over the matches of other rules, grouped and windowed in event time."""

    rule_id: str
    uuid: str | None
    name: str | None
    title: str
    description: str
    level: str
    status: str | None
    tags: tuple[str, ...]
    type: CorrelationType
    member_refs: tuple[str, ...]  # as written (name or id)
    members: tuple[str, ...] = ()  # resolved rule_ids (rules or correlations)
    group_by: tuple[str, ...] = ()
    aliases: Mapping[str, Mapping[str, FieldPath]] = field(default_factory=dict)  # alias -> rule_id -> path
    timespan: float = 60.0
    op: str = "gte"
    count: int = 1
    value_field: FieldPath | None = None
    generate: bool = False
    alert: AlertSpec | None = None
    source: RuleSource = RuleSource("", None)
    tests: tuple[RuleTest, ...] = ()
    provider: str | None = None
    sigma: Any = None
    used_by: list[str] = field(default_factory=list)  # correlations referencing this one

    @property
    def emits(self) -> bool:
        return self.alert is not None and not self.alert.signal_only

    def __repr__(self) -> str:
        return f"CompiledCorrelation({self.rule_id!r})"


@dataclass
class RulePack:
    """Every rule that loaded, and every problem with those that did not."""

    rules: list[CompiledRule] = field(default_factory=list)
    correlations: list[CompiledCorrelation] = field(default_factory=list)
    problems: list[RuleProblem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    # `%name%` -> values, for rules using the `expand` modifier (placeholders.yml beside the rules)
    placeholders: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def items(self) -> list[CompiledRule | CompiledCorrelation]:
        """Rules first, then correlations, in load order."""
        return [*self.rules, *self.correlations]

    def by_id(self) -> dict[str, CompiledRule | CompiledCorrelation]:
        out: dict[str, CompiledRule | CompiledCorrelation] = {}
        for item in self.items():
            out[item.rule_id] = item
            if item.uuid:
                out[item.uuid] = item
            if item.name:
                out[item.name] = item
        return out
