"""A small OData `$filter` parser and evaluator (the subset Graph collectors use).

Supports `eq ne gt ge lt le in`, `and or not`, parentheses, `startswith/endswith/contains(...)`,
`any(x: ...)` lambdas, nested paths (`status/errorCode`, `initiatedBy/user/id`), strings,
numbers, booleans, null, GUIDs and unquoted ISO date-times. Time ranges on a stream's time
field are pulled out of top-level `and`s so the store only reads the days it needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from simulator.timestamps import parse_time

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<datetime>\d{4}-\d{2}-\d{2}T[\d:.]+(?:Z|[+-]\d{2}:\d{2})?)"
    r"|(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"|(?P<number>-?\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][\w/.@]*)|(?P<punct>[(),:]))"
)
_COMPARE = {"eq", "ne", "gt", "ge", "lt", "le"}
_FUNCTIONS = {"startswith", "endswith", "contains"}
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T")


class FilterError(ValueError):
    """The $filter text is not valid (message says where)."""


@dataclass(frozen=True)
class Compare:
    path: str
    op: str
    value: Any


@dataclass(frozen=True)
class Bool:
    op: str  # and | or | not
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Function:
    name: str
    path: str
    value: str


@dataclass(frozen=True)
class AnyOf:
    path: str
    var: str
    body: Any


@dataclass(frozen=True)
class InList:
    path: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class _DateTime:
    text: str
    us: int


def parse_filter(text: str) -> Any:
    tokens = _tokenize(text)
    parser = _Parser(tokens, text)
    node = parser.expression()
    if parser.pos != len(tokens):
        raise FilterError(f"Invalid filter clause: unexpected {tokens[parser.pos][1]!r} in {text!r}")
    return node


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            if text[pos:].strip() == "":
                break
            raise FilterError(f"Invalid filter clause: cannot read {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], text: str) -> None:
        self.tokens = tokens
        self.text = text
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1].lower() != value):
            raise FilterError(f"Invalid filter clause: expected {value or 'more'} in {self.text!r}")
        self.pos += 1
        return token

    def expression(self) -> Any:
        items = [self.conjunction()]
        while self._keyword("or"):
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else Bool("or", tuple(items))

    def conjunction(self) -> Any:
        items = [self.unary()]
        while self._keyword("and"):
            items.append(self.unary())
        return items[0] if len(items) == 1 else Bool("and", tuple(items))

    def unary(self) -> Any:
        if self._keyword("not"):
            return Bool("not", (self.unary(),))
        token = self.peek()
        if token and token[1] == "(":
            self.take("(")
            node = self.expression()
            self.take(")")
            return node
        return self.comparison()

    def _keyword(self, word: str) -> bool:
        token = self.peek()
        if token and token[0] == "name" and token[1].lower() == word:
            self.pos += 1
            return True
        return False

    def comparison(self) -> Any:
        kind, name = self.take()
        if kind != "name":
            raise FilterError(f"Invalid filter clause: expected a property, got {name!r}")
        lowered = name.lower()
        if lowered in _FUNCTIONS and self.peek() and self.peek()[1] == "(":  # type: ignore[index]
            self.take("(")
            path = self.take()[1]
            self.take(",")
            value = self.literal()
            self.take(")")
            return Function(lowered, path, str(value))
        if lowered.endswith("/any") and self.peek() and self.peek()[1] == "(":  # type: ignore[index]
            self.take("(")
            var = self.take()[1]
            self.take(":")
            body = self.expression()
            self.take(")")
            return AnyOf(name[:-4], var, body)
        op_token = self.take()
        op = op_token[1].lower()
        if op == "in":
            self.take("(")
            values = [self.literal()]
            while self.peek() and self.peek()[1] == ",":  # type: ignore[index]
                self.take(",")
                values.append(self.literal())
            self.take(")")
            return InList(name, tuple(values))
        if op not in _COMPARE:
            raise FilterError(f"Invalid filter clause: unknown operator {op_token[1]!r} in {self.text!r}")
        return Compare(name, op, self.literal())

    def literal(self) -> Any:
        kind, value = self.take()
        if kind == "string":
            return value[1:-1].replace("''", "'")
        if kind == "datetime":
            return _DateTime(value, parse_time(value))
        if kind == "number":
            return float(value) if "." in value else int(value)
        if kind == "guid":
            return value
        if kind == "name" and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if kind == "name" and value.lower() == "null":
            return None
        raise FilterError(f"Invalid filter clause: expected a value, got {value!r}")


def resolve(obj: Any, path: str, scope: dict[str, Any] | None = None) -> Any:
    parts = path.split("/")
    if scope and parts[0] in scope:
        obj, parts = scope[parts[0]], parts[1:]
    for part in parts:
        if isinstance(obj, dict):
            if part in obj:
                obj = obj[part]
            else:
                lowered = part.lower()
                obj = next((v for k, v in obj.items() if k.lower() == lowered), None)
        else:
            return None
    return obj


def evaluate(node: Any, obj: Any, scope: dict[str, Any] | None = None) -> bool:
    if node is None:
        return True
    if isinstance(node, Bool):
        if node.op == "and":
            return all(evaluate(n, obj, scope) for n in node.items)
        if node.op == "or":
            return any(evaluate(n, obj, scope) for n in node.items)
        return not evaluate(node.items[0], obj, scope)
    if isinstance(node, Compare):
        return _compare(resolve(obj, node.path, scope), node.op, node.value)
    if isinstance(node, Function):
        value = resolve(obj, node.path, scope)
        if not isinstance(value, str):
            return False
        value, needle = value.lower(), node.value.lower()
        return (
            value.startswith(needle)
            if node.name == "startswith"
            else value.endswith(needle)
            if node.name == "endswith"
            else needle in value
        )
    if isinstance(node, InList):
        value = resolve(obj, node.path, scope)
        return any(_compare(value, "eq", v) for v in node.values)
    if isinstance(node, AnyOf):
        items = resolve(obj, node.path, scope) or []
        return any(evaluate(node.body, obj, {**(scope or {}), node.var: item}) for item in items)
    raise FilterError(f"cannot evaluate {node!r}")


def _compare(left: Any, op: str, right: Any) -> bool:
    if isinstance(right, _DateTime) or (
        isinstance(left, str) and isinstance(right, str) and _ISO.match(left) and _ISO.match(right)
    ):
        if left is None:
            return op == "ne"
        try:
            left = parse_time(str(left))
        except ValueError:
            return False
        right = right.us if isinstance(right, _DateTime) else parse_time(right)
    elif isinstance(left, str) and isinstance(right, str):
        left, right = left.lower(), right.lower()
    if op == "eq":
        return bool(left == right)
    if op == "ne":
        return bool(left != right)
    if left is None or right is None:
        return False
    try:
        return bool({"gt": left > right, "ge": left >= right, "lt": left < right, "le": left <= right}[op])
    except TypeError:
        return False


def time_bounds(node: Any, field: str) -> tuple[int | None, int | None]:
    """[start, end) implied by top-level `and`ed comparisons on `field` (None = unbounded)."""
    start: int | None = None
    end: int | None = None
    items = node.items if isinstance(node, Bool) and node.op == "and" else (node,)
    for item in items:
        if not isinstance(item, Compare) or item.path.lower() != field.lower():
            continue
        value = item.value
        us = (
            value.us
            if isinstance(value, _DateTime)
            else parse_time(value)
            if isinstance(value, str) and _ISO.match(value)
            else None
        )
        if us is None:
            continue
        if item.op in ("ge", "eq"):
            start = us if start is None else max(start, us)
        if item.op == "gt":
            start = us + 1 if start is None else max(start, us + 1)
        if item.op in ("le", "eq"):
            end = us + 1 if end is None else min(end, us + 1)
        if item.op == "lt":
            end = us if end is None else min(end, us)
    return start, end


def equals_value(node: Any, field: str) -> str | None:
    """The value of a top-level `field eq 'x'` clause, if any (lets the store read one person's events)."""
    items = node.items if isinstance(node, Bool) and node.op == "and" else (node,)
    for item in items:
        if (
            isinstance(item, Compare)
            and item.op == "eq"
            and item.path.lower() == field.lower()
            and isinstance(item.value, str)
        ):
            return item.value
    return None
