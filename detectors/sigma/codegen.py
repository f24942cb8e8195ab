"""A rule's condition as one generated Python function instead of a tree of closures.

The closure tree (`compiler.predicate`) pays a Python call per node. Here each rule's whole
condition becomes one boolean expression in one function, compiled once with `compile()`:
AND/OR/NOT are Python's own short-circuit operators, exact matches are inlined as set tests,
and a field the condition reads several times is looked up once (a local bound on first use
with `:=`). Other leaves (regex, CIDR, keywords, ...) call the same closures as before.

Safety: the generated source contains only names we make up (`v`, `f0`, `c3`, ...), Python
operators and keywords. Every value that comes from a rule — field names, match values,
patterns, closures — is passed in through the function's globals under a generated name, never
written into the source, so nothing a rule author writes can reach the compiler as code.

A condition too deep or too large for the compiler falls back to the closure tree.
"""

from __future__ import annotations

from typing import Any

from detectors.sigma.compiler import (
    And,
    Leaf,
    LeafKind,
    Never,
    Node,
    Not,
    Or,
    Predicate,
    _cheap_first,
    _leaf_predicate,
    predicate,
)

__all__ = ["generated_predicate", "generated_source"]

MAX_SOURCE = 200_000


class _Writer:
    def __init__(self, uses: dict[str, int]) -> None:
        self.constants: dict[str, Any] = {}
        self.fields: dict[str, str] = {}  # dotted path -> local name holding its forms
        self.uses = uses  # how many exact-match leaves read each field

    def constant(self, value: Any) -> str:
        name = f"c{len(self.constants)}"
        self.constants[name] = value
        return name

    def forms(self, leaf: Leaf) -> str:
        """An expression for the field's case-folded forms, looked up once per call."""
        assert leaf.path is not None
        if self.uses.get(leaf.path.dotted, 0) < 2:  # read once: no local to keep it in
            dotted = self.constant(leaf.path.dotted)
            return f"(fc({dotted}) or v.forms({dotted}, {self.constant(leaf.path.segments)}))"
        local = self.fields.get(leaf.path.dotted)
        if local is None:
            local = self.fields[leaf.path.dotted] = f"f{len(self.fields)}"
            self.constants[f"{local}_d"] = leaf.path.dotted
            self.constants[f"{local}_s"] = leaf.path.segments
        return f"({local} if {local} is not None else ({local} := fc({local}_d) or v.forms({local}_d, {local}_s)))"

    def expression(self, node: Node) -> str:
        if isinstance(node, Never):
            return "False"
        if isinstance(node, Not):
            return f"(not {self.expression(node.child)})"
        if isinstance(node, And | Or):
            joiner = " and " if isinstance(node, And) else " or "
            return "(" + joiner.join(self.expression(c) for c in _cheap_first(node.children)) + ")"
        return self.leaf(node)

    def leaf(self, leaf: Leaf) -> str:
        if leaf.kind is LeafKind.EQUALS and leaf.path is not None:
            (values,) = leaf.args
            if len(values) == 1:
                (only,) = values
                return f"({self.constant(only)} in {self.forms(leaf)})"
            return f"(not {self.constant(frozenset(values))}.isdisjoint({self.forms(leaf)}))"
        return f"{self.constant(_leaf_predicate(leaf))}(v)"


def _exact_uses(node: Node, counts: dict[str, int] | None = None) -> dict[str, int]:
    counts = {} if counts is None else counts
    if isinstance(node, Leaf):
        if node.kind is LeafKind.EQUALS and node.path is not None:
            counts[node.path.dotted] = counts.get(node.path.dotted, 0) + 1
    elif isinstance(node, Not):
        _exact_uses(node.child, counts)
    elif isinstance(node, And | Or):
        for child in node.children:
            _exact_uses(child, counts)
    return counts


def generated_source(node: Node) -> tuple[str, dict[str, Any]]:
    """The function's source and the globals it needs (for tests and debugging)."""
    writer = _Writer(_exact_uses(node))
    body = writer.expression(node)
    locals_ = "".join(f"    {name} = None\n" for name in writer.fields.values())
    if "fc(" in body:  # the view's per-event cache of forms, shared by every rule
        locals_ = "    fc = v._forms.get\n" + locals_
    source = f"def rule_condition(v):\n{locals_}    return {body}\n"
    return source, writer.constants


def generated_predicate(node: Node) -> Predicate:
    """The condition compiled to one function (or the closure tree when it is too big to compile)."""
    try:
        source, constants = generated_source(node)
        if len(source) > MAX_SOURCE:
            return predicate(node)
        namespace: dict[str, Any] = {"__builtins__": {}, **constants}
        exec(compile(source, "<sigma rule condition>", "exec"), namespace)  # noqa: S102 - our own generated code, no rule text in it
    except (RecursionError, MemoryError, SyntaxError):
        return predicate(node)
    function: Predicate = namespace["rule_condition"]
    return function
