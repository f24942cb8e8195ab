"""A small, safe expression language for posture conditions — Python syntax, never `eval`.

The text is parsed with :mod:`ast` and only a whitelist of node types is accepted; each node is
compiled once into a closure, so evaluating a check over 10,000 users is a few closure calls per
user. Names and dotted paths read *data* (dict keys, case-insensitively; list indexes), never
Python attributes, so no expression can reach an object's internals. A missing key is ``None``
rather than an error, because snapshots from different API versions omit fields freely.

Accepted: literals (numbers, strings, ``true``/``false``/``null`` as well as Python's spelling),
lists/tuples, ``and``/``or``/``not``, comparisons (chained, ``in``/``not in`` are ``None``-safe),
``+ - * / %`` on numbers (``+`` also joins two strings or two lists), ``a if c else b``, one-``for`` comprehensions and generator
expressions (``any(p.state == 'enabled' for p in ca_policy)``), and the functions in
:data:`FUNCTIONS`.
"""

from __future__ import annotations

import ast
import inspect
import operator
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from core.clock import parse_time, utcnow
from core.paths import get_path, lookup
from detectors.posture.errors import ExpressionError

MAX_EXPRESSION_CHARS = 4000
MAX_SEQUENCE = 1_000_000
MAX_DEPTH = 60

Scope = Mapping[str, Any]
Compiled = Callable[[Scope], Any]

_CONSTANT_NAMES = {"true": True, "false": False, "null": None, "none": None}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple | set | frozenset):
        return list(value)
    if isinstance(value, Mapping):
        return list(value.values())
    return [value]


def _lower(value: Any) -> Any:
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, list | tuple):
        return [_lower(item) for item in value]
    return value


def _days_since(value: Any) -> float | None:
    if value in (None, ""):
        return None
    when = value if isinstance(value, datetime) else parse_time(str(value))
    return (utcnow() - when).total_seconds() / 86400


def _contains_any(haystack: Any, needles: Any) -> bool:
    have = {_lower(item) for item in _as_list(haystack) if not isinstance(item, dict | list)}
    return any(_lower(item) in have for item in _as_list(needles))


def _contains_all(haystack: Any, needles: Any) -> bool:
    have = {_lower(item) for item in _as_list(haystack) if not isinstance(item, dict | list)}
    return all(_lower(item) in have for item in _as_list(needles))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _split(value: Any, sep: str = " ") -> list[str]:
    return [part for part in str(value).split(sep) if part] if value is not None else []


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": lambda value: len(_as_list(value)) if not isinstance(value, str) else len(value),
    "any": lambda value: any(_as_list(value)),
    "all": lambda value: all(_as_list(value)),
    "sum": lambda value: sum(_number(item) or 0 for item in _as_list(value)),
    "count": lambda value: sum(1 for item in _as_list(value) if item),
    "min": lambda *values: min(_as_list(values[0]) if len(values) == 1 else values, default=None),
    "max": lambda *values: max(_as_list(values[0]) if len(values) == 1 else values, default=None),
    "lower": _lower,
    "exists": lambda value: value is not None,
    "empty": lambda value: len(_as_list(value)) == 0 if not isinstance(value, str) else value == "",
    "number": _number,
    "days_since": _days_since,
    "startswith": lambda value, prefix: isinstance(value, str) and value.lower().startswith(prefix.lower()),
    "endswith": lambda value, suffix: isinstance(value, str) and value.lower().endswith(suffix.lower()),
    "contains": lambda value, part: (
        part.lower() in value.lower()
        if isinstance(value, str) and isinstance(part, str)
        else _contains_any(value, [part])
    ),
    "contains_any": _contains_any,
    "contains_all": _contains_all,
    "split": _split,
    "domain": lambda value: (
        value.rsplit("@", 1)[-1].lower() if isinstance(value, str) and "@" in value else None
    ),
    "list": _as_list,
    "get": get_path,
}


def _safe_in(item: Any, container: Any) -> bool:
    if container is None:
        return False
    if isinstance(container, str):
        return isinstance(item, str) and item.lower() in container.lower()
    if isinstance(container, Mapping):
        return lookup(container, item) is not None if isinstance(item, str) else False
    if not isinstance(container, list | tuple | set | frozenset):
        return False  # a number or bool holds nothing: `1 in 2` is false, not a TypeError
    lowered = _lower(item)
    return any(_lower(element) == lowered for element in container)


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left.lower() == right.lower()
    return bool(left == right)


def _ordered(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(left: Any, right: Any) -> bool:
        a, b = _number(left), _number(right)
        if a is not None and b is not None:
            return op(a, b)
        if isinstance(left, str) and isinstance(right, str):
            return op(left, right)
        return False  # comparing a missing or mixed value is never true: a check must not pass by accident

    return compare


_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: _equal,
    ast.NotEq: lambda a, b: not _equal(a, b),
    ast.Lt: _ordered(operator.lt),
    ast.LtE: _ordered(operator.le),
    ast.Gt: _ordered(operator.gt),
    ast.GtE: _ordered(operator.ge),
    ast.In: _safe_in,
    ast.NotIn: lambda a, b: not _safe_in(a, b),
    ast.Is: lambda a, b: a is b,
    ast.IsNot: lambda a, b: a is not b,
}

_ARITHMETIC: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: lambda a, b: a / b if b else float("inf"),
    ast.Mod: lambda a, b: a % b if b else 0.0,
}


class _Compiler:
    """Turns an accepted AST into closures; rejects everything else with the offending construct."""

    def __init__(self, text: str) -> None:
        self.text = text

    def fail(self, node: ast.AST, what: str) -> ExpressionError:
        column = getattr(node, "col_offset", 0)
        return ExpressionError(f"{what} at column {column + 1} of {self.text!r}")

    def compile(self, node: ast.AST) -> Compiled:  # noqa: C901 - one branch per accepted node type
        if isinstance(node, ast.Expression):
            return self.compile(node.body)
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, str | int | float | bool | type(None)):
                raise self.fail(node, f"constant {node.value!r} is not allowed")
            value = node.value
            return lambda scope: value
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.Attribute):
            base = self.compile(node.value)
            attr = node.attr
            if attr.startswith("__"):
                raise self.fail(node, f"field {attr!r} is not allowed")
            return lambda scope: lookup(base(scope), attr)
        if isinstance(node, ast.Subscript):
            return self._subscript(node)
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            items = [self.compile(element) for element in node.elts]
            return lambda scope: [item(scope) for item in items]
        if isinstance(node, ast.BoolOp):
            return self._boolop(node)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.BinOp):
            return self._binop(node)
        if isinstance(node, ast.IfExp):
            test, body, orelse = self.compile(node.test), self.compile(node.body), self.compile(node.orelse)
            return lambda scope: body(scope) if test(scope) else orelse(scope)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.GeneratorExp | ast.ListComp):
            return self._comprehension(node)
        raise self.fail(node, f"{type(node).__name__} is not part of the posture expression language")

    def _name(self, node: ast.Name) -> Compiled:
        name = node.id
        if name.lower() in _CONSTANT_NAMES:
            constant = _CONSTANT_NAMES[name.lower()]
            return lambda scope: constant
        if name in ("True", "False", "None"):
            constant = {"True": True, "False": False, "None": None}[name]
            return lambda scope: constant
        if name.startswith("__"):
            raise self.fail(node, f"name {name!r} is not allowed")
        return lambda scope: lookup(scope, name)

    def _subscript(self, node: ast.Subscript) -> Compiled:
        base = self.compile(node.value)
        if isinstance(node.slice, ast.Slice):
            raise self.fail(node, "slices are not allowed")
        key = self.compile(node.slice)
        return lambda scope: lookup(base(scope), key(scope))

    def _boolop(self, node: ast.BoolOp) -> Compiled:
        parts = [self.compile(value) for value in node.values]
        if isinstance(node.op, ast.And):
            return lambda scope: all(part(scope) for part in parts)
        return lambda scope: any(part(scope) for part in parts)

    def _unary(self, node: ast.UnaryOp) -> Compiled:
        operand = self.compile(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda scope: not operand(scope)
        if isinstance(node.op, ast.USub):
            return lambda scope: -(_number(operand(scope)) or 0.0)
        raise self.fail(node, f"operator {type(node.op).__name__} is not allowed")

    def _compare(self, node: ast.Compare) -> Compiled:
        first = self.compile(node.left)
        steps = []
        for op, right in zip(node.ops, node.comparators, strict=True):
            function = _COMPARE.get(type(op))
            if function is None:
                raise self.fail(node, f"comparison {type(op).__name__} is not allowed")
            steps.append((function, self.compile(right)))

        def compare(scope: Scope) -> bool:
            left = first(scope)
            for function, right in steps:
                value = right(scope)
                if not function(left, value):
                    return False
                left = value
            return True

        return compare

    def _binop(self, node: ast.BinOp) -> Compiled:
        function = _ARITHMETIC.get(type(node.op))
        if function is None:
            raise self.fail(node, f"operator {type(node.op).__name__} is not allowed")
        left, right = self.compile(node.left), self.compile(node.right)

        joins = isinstance(node.op, ast.Add)

        def arithmetic(scope: Scope) -> Any:
            raw_a, raw_b = left(scope), right(scope)
            if joins and isinstance(raw_a, str) and isinstance(raw_b, str):
                return (raw_a + raw_b)[: MAX_EXPRESSION_CHARS * 64]
            if joins and isinstance(raw_a, list) and isinstance(raw_b, list):
                return (raw_a + raw_b)[:MAX_SEQUENCE]
            a, b = _number(raw_a), _number(raw_b)
            return None if a is None or b is None else function(a, b)

        return arithmetic

    def _call(self, node: ast.Call) -> Compiled:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            shown = ast.unparse(node.func)
            raise self.fail(node, f"unknown function {shown!r} (known: {', '.join(sorted(FUNCTIONS))})")
        if node.keywords:
            raise self.fail(node, "keyword arguments are not allowed")
        name = node.func.id
        function = FUNCTIONS[name]
        try:
            inspect.signature(function).bind(*node.args)
        except TypeError as exc:
            raise self.fail(node, f"{name}() called with {len(node.args)} argument(s): {exc}") from None
        arguments = [self.compile(argument) for argument in node.args]

        def call(scope: Scope) -> Any:
            values = [argument(scope) for argument in arguments]
            try:
                return function(*values)
            except (TypeError, ValueError, AttributeError, ArithmeticError, KeyError, IndexError) as exc:
                raise ExpressionError(
                    f"{name}() cannot use {values!r:.200}: {exc} (in {self.text!r})"
                ) from None

        return call

    def _comprehension(self, node: ast.GeneratorExp | ast.ListComp) -> Compiled:
        if len(node.generators) != 1:
            raise self.fail(node, "only one 'for' per comprehension is allowed")
        generator = node.generators[0]
        if not isinstance(generator.target, ast.Name) or generator.is_async:
            raise self.fail(node, "a comprehension variable must be a plain name")
        variable = generator.target.id
        source = self.compile(generator.iter)
        conditions = [self.compile(condition) for condition in generator.ifs]
        element = self.compile(node.elt)

        def iterate(scope: Scope) -> list[Any]:
            results = []
            for item in _as_list(source(scope))[:MAX_SEQUENCE]:
                inner = _ChainScope(variable, item, scope)
                if all(condition(inner) for condition in conditions):
                    results.append(element(inner))
            return results

        return iterate


class _ChainScope(Mapping[str, Any]):
    """The comprehension variable in front of the enclosing scope."""

    __slots__ = ("_name", "_value", "_parent")

    def __init__(self, name: str, value: Any, parent: Scope) -> None:
        self._name, self._value, self._parent = name, value, parent

    def __getitem__(self, key: str) -> Any:
        if key == self._name:
            return self._value
        return lookup(self._parent, key)

    def __contains__(self, key: object) -> bool:
        return key == self._name or key in self._parent

    def __iter__(self) -> Any:
        yield self._name
        yield from self._parent

    def __len__(self) -> int:
        return len(self._parent) + 1


def compile_expression(text: str) -> Compiled:
    """Parse and compile `text` once; raises ExpressionError naming the construct that is refused."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("an expression must be a non-empty string")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"expression is {len(text)} characters; the limit is {MAX_EXPRESSION_CHARS}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse {text!r:.200}: {exc.msg} at column {exc.offset}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(
            f"expression nests too deeply (limit {MAX_DEPTH} levels): {text[:80]!r}..."
        ) from None
    if _depth(tree) > MAX_DEPTH:
        raise ExpressionError(f"expression nests more than {MAX_DEPTH} levels deep: {text[:80]!r}...")
    return _Compiler(text).compile(tree)


def _depth(tree: ast.AST) -> int:
    """Nesting depth without recursion (a hostile expression must not overflow the stack)."""
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def referenced_paths(text: str) -> list[str]:
    """The dotted data paths an expression reads (``isEnabled``, ``conditions.users.includeUsers``).

    Drift reports use them to show which values changed between two snapshots.
    """
    tree = ast.parse(text.strip(), mode="eval")
    bound = {
        generator.target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.GeneratorExp | ast.ListComp)
        for generator in node.generators
        if isinstance(generator.target, ast.Name)
    }
    paths: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute | ast.Name):
            parts: list[str] = []
            current: ast.AST = node
            while isinstance(current, ast.Attribute):
                parts.append(current.attr)
                current = current.value
            if not isinstance(current, ast.Name):
                continue
            root = current.id
            if root in bound or root.lower() in _CONSTANT_NAMES or root in FUNCTIONS:
                continue
            path = ".".join([root, *reversed(parts)])
            if not any(existing.startswith(path + ".") or existing == path for existing in paths):
                paths = [p for p in paths if not path.startswith(p + ".")]
                paths.append(path)
    return paths
