"""Suppressions: silence one rule for events whose fields have given values, until an expiry.

`match` maps field paths (dotted, case-insensitive, as in rules) to a value or a list of values;
comparison is case-insensitive and `*` / `?` are wildcards. Every field must match. For a
correlation the fields are looked up in its group-by values first, then in the event that
completed it. An empty `match` silences the whole rule.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import re2

from detectors.sigma.compiler import RE2_OPTIONS, FieldPath
from detectors.sigma.events import EventView, stringform


@dataclass(frozen=True)
class SuppressionSpec:
    id: int | str
    rule_id: str
    match: Mapping[str, Any] = field(default_factory=dict)
    expires_at: datetime | None = None
    reason: str = ""


class SuppressionError(ValueError):
    """A suppression's `match` cannot be used; says which field and why."""


def _value_test(expected: Any) -> Any:
    values = expected if isinstance(expected, list) else [expected]
    exact: set[str] = set()
    patterns = []
    for value in values:
        form = stringform(value)
        if form is None:
            raise SuppressionError(f"suppression value {value!r} must be text, a number or true/false")
        if "*" in form or "?" in form:
            regex = "".join(".*" if c == "*" else "." if c == "?" else re2.escape(c) for c in form)
            patterns.append(re2.compile(f"(?s){regex}", RE2_OPTIONS))
        else:
            exact.add(form)

    def test(forms: Iterable[str]) -> bool:
        return any(form in exact or any(p.fullmatch(form) is not None for p in patterns) for form in forms)

    return test


@dataclass
class _Compiled:
    spec: SuppressionSpec
    tests: list[tuple[FieldPath, Any]]


class Suppressor:
    """Suppressions indexed by rule; counts what each one silenced since the last `take_counts`."""

    def __init__(self, specs: Iterable[SuppressionSpec] = ()) -> None:
        self.by_rule: dict[str, list[_Compiled]] = {}
        self.counts: Counter[int | str] = Counter()
        for spec in specs:
            tests = [(FieldPath.of(str(name)), _value_test(value)) for name, value in spec.match.items()]
            self.by_rule.setdefault(spec.rule_id, []).append(_Compiled(spec, tests))

    def __bool__(self) -> bool:
        return bool(self.by_rule)

    def check(
        self,
        rule_keys: Iterable[str | None],
        view: EventView,
        now: datetime,
        group: Mapping[str, str] | None = None,
        *,
        count: bool = True,
    ) -> SuppressionSpec | None:
        lowered_group = {k.lower(): v.lower() for k, v in (group or {}).items()}
        for key in rule_keys:
            for compiled in self.by_rule.get(key or "", ()):
                spec = compiled.spec
                if spec.expires_at is not None and spec.expires_at <= now:
                    continue
                if all(self._field_ok(path, test, view, lowered_group) for path, test in compiled.tests):
                    if count:
                        self.counts[spec.id] += 1
                    return spec
        return None

    @staticmethod
    def _field_ok(path: FieldPath, test: Any, view: EventView, group: Mapping[str, str]) -> bool:
        if path.dotted in group:
            return bool(test((group[path.dotted],)))
        return bool(test(view.forms(path.dotted, path.segments)))

    def take_counts(self) -> Counter[int | str]:
        counts, self.counts = self.counts, Counter()
        return counts
