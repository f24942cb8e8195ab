"""Run the test events every rule ships with, and say plainly why a test failed.

A test passes when "the rule fires on these events" equals its `match:`. For a rule that alerts
that means at least one finding from a fresh engine holding just that rule (so dedup, threshold
and title are exercised too); for a signal-only rule (one that only feeds correlations) it means
the condition holds for at least one event; for a correlation, at least one finding of the
correlation from an engine holding it and its member rules. `count:` and `title:` are checked
when given.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from core.normalise import with_event_identity
from detectors.sigma.compiler import explain
from detectors.sigma.definitions import CompiledCorrelation, CompiledRule, RulePack, RuleTest
from detectors.sigma.engine import DetectionEngine
from detectors.sigma.errors import EventError
from detectors.sigma.events import EventRecord, EventView, check_depth, make_records

BASE_TIME = 1_700_000_000.0


@dataclass
class TestOutcome:
    rule_id: str
    test: str
    passed: bool
    where: str
    details: list[str] = field(default_factory=list)


def _records(test: RuleTest, rule_id: str) -> tuple[list[EventRecord], list[str]]:
    records: list[EventRecord] = []
    notes: list[str] = []
    for position, event in enumerate(test.events, 1):
        if not event.provider:
            notes.append(
                f"event {position}: no logsource; give the test (or the event) `logsource: {{product, service}}`"
            )
            continue
        check_depth(event.data, f"{rule_id} test {test.name!r} event {position}")
        # What the provider always sends and a test leaves out: its event id and time.
        data = with_event_identity(
            event.provider,
            event.stream,
            event.data,
            event_id=f"test-{position}",
            at=datetime.fromtimestamp(BASE_TIME + position, UTC),
        )
        for record in make_records(event.provider, event.stream, data, event_id=len(records) + 1):
            records.append(replace(record, id=len(records) + 1, ts=record.ts + event.offset))
    return records, notes


def _sub_pack(pack: RulePack, item: CompiledRule | CompiledCorrelation) -> RulePack:
    if isinstance(item, CompiledRule):
        return RulePack(rules=[item])
    wanted: set[str] = set()
    todo = [item.rule_id]
    correlations = {c.rule_id: c for c in pack.correlations}
    while todo:
        current = todo.pop()
        if current in wanted:
            continue
        wanted.add(current)
        if current in correlations:
            todo.extend(correlations[current].members)
    return RulePack(
        rules=[r for r in pack.rules if r.rule_id in wanted],
        correlations=[c for c in pack.correlations if c.rule_id in wanted],
    )


def run_test(pack: RulePack, item: CompiledRule | CompiledCorrelation, test: RuleTest) -> TestOutcome:
    where = f"{item.source.path}:{test.line}" if test.line else str(item.source)
    outcome = TestOutcome(item.rule_id, test.name, False, where)
    try:
        records, notes = _records(test, item.rule_id)
    except EventError as exc:
        outcome.details.append(str(exc))
        return outcome
    outcome.details.extend(notes)
    if notes:
        return outcome
    engine = DetectionEngine(_sub_pack(pack, item), clock=_fixed_now)
    signal_only = isinstance(item, CompiledRule) and not item.emits
    if signal_only:
        assert isinstance(item, CompiledRule)
        fired_count = sum(1 for r in records if _matches(item, r))
        titles: list[str] = []
    else:
        result = engine.process(records)
        mine = [f for f in result.findings if f.rule_id == item.rule_id]
        fired_count = len(mine)
        titles = [f.title for f in mine]
        outcome.details.extend(str(e) for e in result.errors)
    fired = fired_count > 0
    problems = []
    if fired != test.expect_match:
        problems.append(f"expected {'a finding' if test.expect_match else 'no finding'}, got {fired_count}")
    if test.expect_count is not None and fired_count != test.expect_count:
        problems.append(f"expected {test.expect_count} finding(s), got {fired_count}")
    if test.expect_title is not None and test.expect_title not in titles:
        problems.append(f"expected title {test.expect_title!r}, got {titles!r}")
    if not problems:
        outcome.passed = True
        return outcome
    outcome.details.extend(problems)
    outcome.details.extend(_why(pack, item, records))
    return outcome


def _fixed_now() -> datetime:  # suppressions are not part of rule tests; any fixed instant will do
    return datetime(2000, 1, 1, tzinfo=UTC)


def _matches(rule: CompiledRule, record: EventRecord) -> bool:
    return (
        record.provider == rule.provider and record.stream in rule.streams and rule.matches(EventView(record))
    )


def _why(pack: RulePack, item: CompiledRule | CompiledCorrelation, records: list[EventRecord]) -> list[str]:
    lines = []
    rules = [item] if isinstance(item, CompiledRule) else _sub_pack(pack, item).rules
    for record in records[:10]:
        view = EventView(record)
        for rule in rules:
            if record.provider != rule.provider or record.stream not in rule.streams:
                lines.append(
                    f"event {record.id} ({record.provider}/{record.stream}) is not in {rule.rule_id}'s logsource "
                    f"({rule.provider}/{','.join(rule.streams)})"
                )
                continue
            matched = rule.matches(view)
            lines.append(
                f"event {record.id} vs {rule.rule_id}: condition `{rule.condition_text}` is {matched}"
            )
            for name, node in rule.detections.items():
                lines.append(f"  {name}:")
                lines.extend("    " + line for line in explain(node, view)[:12])
    if isinstance(item, CompiledCorrelation):
        lines.append(
            f"correlation {item.type.value}: {item.op} {item.count} within {int(item.timespan)}s, group-by {list(item.group_by)}"
        )
        for record in records[:20]:
            lines.append(f"  event {record.id} at {record.time.isoformat()}")
    elif isinstance(item, CompiledRule) and item.alert.threshold > 1:
        lines.append(
            f"threshold {item.alert.threshold}"
            + (f" distinct {item.alert.unique.written}" if item.alert.unique else "")
        )
    return lines


def run_pack_tests(pack: RulePack, only: set[str] | None = None) -> list[TestOutcome]:
    outcomes = []
    for item in pack.items():
        if only and item.rule_id not in only:
            continue
        for test in item.tests:
            try:
                outcomes.append(run_test(pack, item, test))
            except Exception as exc:  # a broken test must be reported, not crash the run
                outcomes.append(
                    TestOutcome(
                        item.rule_id,
                        test.name,
                        False,
                        str(item.source),
                        [f"error: {type(exc).__name__}: {exc}"],
                    )
                )
    return outcomes
