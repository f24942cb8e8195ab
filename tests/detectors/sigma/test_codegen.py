"""Rule conditions compiled to generated Python: same answers as the closure tree, no rule text as code."""

from __future__ import annotations

import itertools
import json

from detectors.pipeline import default_rules_path
from detectors.sigma.codegen import generated_predicate, generated_source
from detectors.sigma.compiler import And, FieldPath, Leaf, LeafKind, Node, Or, predicate
from detectors.sigma.events import EventRecord, EventView
from detectors.sigma.loader import load_pack
from tests.detectors.sigma.conftest import matches, rule_yaml


def test_every_shipped_rule_answers_like_the_closure_tree_on_every_test_event() -> None:
    # given the shipped pack and every test event of every rule (positive and negative)
    pack = load_pack([default_rules_path()])
    events = [
        EventRecord(n, e.provider, e.stream, 0.0, dict(e.data))
        for n, e in enumerate(
            e for item in [*pack.rules, *pack.correlations] for t in item.tests for e in t.events
        )
    ]
    assert len(pack.rules) >= 60 and len(events) >= 200
    # when each rule's generated function and its closure tree see each event of its provider
    compared = agreed = positives = 0
    compiled = [(rule, generated_predicate(rule.node), predicate(rule.node)) for rule in pack.rules]
    for (rule, generated_fn, closure_fn), record in itertools.product(compiled, events):
        if record.provider != rule.provider:
            continue
        generated = generated_fn(EventView(record))
        closure = closure_fn(EventView(record))
        compared += 1
        agreed += generated == closure
        positives += generated
    # then they always agree (and the comparison covered matches, not only misses)
    assert agreed == compared and positives >= len(pack.rules)


def test_rule_values_that_look_like_code_stay_data(make_pack) -> None:
    # given a rule whose field name and values are Python code and quotes
    hostile = "__import__('os').system('exit 3') or \"'"
    pack = make_pack(
        rule_yaml(
            f"""
            selection:
              userPrincipalName: {json.dumps(hostile)}
              appDisplayName|contains: "') or True or ('"
            condition: selection
            """
        )
    )
    assert not pack.problems, pack.problems
    source, constants = generated_source(pack.rules[0].node)
    # then none of it is in the generated source; the values are only compared as data
    assert "import" not in source and "system" not in source and "True" not in source
    assert hostile.lower() in {v for c in constants.values() if isinstance(c, str) for v in [c]} | {
        v for c in constants.values() if isinstance(c, frozenset) for v in c
    }
    assert matches(pack, {"userPrincipalName": hostile, "appDisplayName": "x') or True or ('y"})
    assert not matches(pack, {"userPrincipalName": "alice", "appDisplayName": "') or True or ('"})


def test_a_condition_too_deep_to_generate_falls_back_to_the_closure_tree() -> None:
    # given a condition nested 400 levels deep (past the Python parser's nesting limit)
    def leaf(value: str, field: str = "level") -> Leaf:
        return Leaf(LeafKind.EQUALS, FieldPath.of(field), (frozenset({value}),), f"{field} = {value}")

    node: Node = leaf("bottom")
    for depth in range(400):
        node = And((leaf("x", "tier"), node)) if depth % 2 else Or((leaf(f"l{depth}"), node))
    # when compiled, it still answers (through the closure tree)
    check = generated_predicate(node)
    assert check.__name__ != "rule_condition"
    assert check(EventView(EventRecord(1, "m365", "signins", 0.0, {"tier": "x", "level": "l398"})))
    assert not check(EventView(EventRecord(2, "m365", "signins", 0.0, {"tier": "x", "level": "l1"})))
