"""pySigma's parsed condition -> a small typed tree -> one Python predicate per rule, built once.

The tree (`And`/`Or`/`Not`/`Leaf`) is kept next to the predicate because it also answers two
other questions: which exact-match values a rule *requires* (the rule index uses that, see
`required_values`) and, in rule tests, why an event did not match (`explain`).

Matching semantics (Sigma): strings compare case-insensitively unless `|cased`; `*` and `?`
are wildcards; a list of values is OR unless `|all`; a field resolving to several values (a
list in the event, or a path through a list of objects) matches when any value matches; `re`
is an unanchored RE2 search (case-sensitive unless `|i`); numbers equal their decimal text.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import re2
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
    TimestampPart,
)

from detectors.sigma.events import EventView, stringform

Predicate = Callable[[EventView], bool]


class CompileError(ValueError):
    """A detection value cannot be compiled (e.g. a regex RE2 refuses); the loader adds file/line."""


class LeafKind(StrEnum):
    EQUALS = "equals"
    CONTAINS = "contains"
    STARTSWITH = "startswith"
    ENDSWITH = "endswith"
    WILDCARD = "wildcard"
    ANY_VALUE = "any_value"
    CASED = "cased"
    REGEX = "re"
    CIDR = "cidr"
    COMPARE = "compare"
    EXISTS = "exists"
    NULL = "null"
    FIELDREF = "fieldref"
    KEYWORD = "keyword"
    TIMEPART = "timepart"


@dataclass(frozen=True)
class FieldPath:
    """A dotted field name as written in the rule, and its case-folded segments."""

    written: str
    dotted: str
    segments: tuple[str, ...]

    @classmethod
    def of(cls, written: str) -> FieldPath:
        dotted = written.strip().lower()
        return cls(written, dotted, tuple(dotted.split(".")))


@dataclass(frozen=True)
class Leaf:
    kind: LeafKind
    path: FieldPath | None
    args: tuple[Any, ...]
    text: str


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class Never:
    """A condition that cannot match (an empty OR after simplification)."""


Node = Leaf | And | Or | Not | Never

RE2_OPTIONS = re2.Options()
RE2_OPTIONS.log_errors = False
RE2_OPTIONS.never_capture = True
RE2_OPTIONS.max_mem = 8 << 20


def compile_re2(
    pattern: str, *, ignore_case: bool = False, multiline: bool = False, dotall: bool = False
) -> Any:
    """RE2 only: no backtracking, so no catastrophic patterns; unsupported syntax is refused here."""
    flags = "".join(f for f, on in (("i", ignore_case), ("m", multiline), ("s", dotall)) if on)
    source = f"(?{flags}){pattern}" if flags else pattern
    try:
        return re2.compile(source, RE2_OPTIONS)
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise CompileError(
            f"regular expression {pattern!r} is not supported by RE2 ({detail}); rewrite it without "
            "backreferences or look-around (RE2 syntax: https://github.com/google/re2/wiki/Syntax)"
        )


# -- pySigma tree -> our tree ---------------------------------------------------------------


def from_sigma(condition: Any) -> Node:
    if condition is None:
        return Never()
    if isinstance(condition, ConditionAND):
        return And(tuple(from_sigma(arg) for arg in condition.args))
    if isinstance(condition, ConditionOR):
        return Or(tuple(from_sigma(arg) for arg in condition.args))
    if isinstance(condition, ConditionNOT):
        return Not(from_sigma(condition.args[0]))
    if isinstance(condition, ConditionFieldEqualsValueExpression):
        return leaf_for(FieldPath.of(condition.field), condition.value)
    if isinstance(condition, ConditionValueExpression):
        return keyword_leaf(condition.value)
    raise CompileError(f"unsupported condition element {type(condition).__name__}")


def _parts(value: SigmaString) -> list[str | SpecialChars]:
    parts: list[str | SpecialChars] = []
    for part in value.s:
        if isinstance(part, Placeholder):
            raise CompileError(
                f"value {value.original!r} keeps a %placeholder% with no value (the `expand` modifier "
                "takes its values from placeholders.yml beside the rules)"
            )
        parts.append(part)
    return parts


def _wildcard_regex(parts: list[str | SpecialChars], *, lower: bool) -> Any:
    pattern = []
    for part in parts:  # noqa: SIM110 - explicit loop: any() with a generator is slower on the hot path
        if part is SpecialChars.WILDCARD_MULTI:
            pattern.append(".*")
        elif part is SpecialChars.WILDCARD_SINGLE:
            pattern.append(".")
        else:
            pattern.append(re2.escape(part.lower() if lower else part))
    return compile_re2("".join(pattern), dotall=True)


def _shown(value: SigmaString) -> str:
    try:
        return str(value.to_plain())
    except Exception:  # pragma: no cover - display only
        return str(value)


def _string_leaf(path: FieldPath | None, value: SigmaString, *, cased: bool) -> Leaf:
    parts = _parts(value)
    text = f"{path.written if path else '<keyword>'} = {_shown(value)!r}"
    if cased:
        literal = "".join(p for p in parts if isinstance(p, str))
        if all(isinstance(p, str) for p in parts):
            return Leaf(LeafKind.CASED, path, ("equals", literal), text + " (cased)")
        return Leaf(LeafKind.CASED, path, ("regex", _wildcard_regex(parts, lower=False)), text + " (cased)")
    multi = SpecialChars.WILDCARD_MULTI
    if not parts:
        return Leaf(LeafKind.EQUALS, path, (frozenset({""}),), text)
    if all(isinstance(p, str) for p in parts):
        return Leaf(LeafKind.EQUALS, path, (frozenset({"".join(parts).lower()}),), text)  # type: ignore[arg-type]
    if parts == [multi]:
        return Leaf(LeafKind.ANY_VALUE, path, (), text)
    if len(parts) == 3 and parts[0] is multi and parts[2] is multi and isinstance(parts[1], str):
        return Leaf(LeafKind.CONTAINS, path, (parts[1].lower(),), text)
    if len(parts) == 2 and parts[1] is multi and isinstance(parts[0], str):
        return Leaf(LeafKind.STARTSWITH, path, (parts[0].lower(),), text)
    if len(parts) == 2 and parts[0] is multi and isinstance(parts[1], str):
        return Leaf(LeafKind.ENDSWITH, path, (parts[1].lower(),), text)
    return Leaf(LeafKind.WILDCARD, path, (_wildcard_regex(parts, lower=True),), text)


def leaf_for(path: FieldPath, value: Any) -> Node:
    name = path.written
    if isinstance(value, SigmaExpansion):
        return Or(tuple(leaf_for(path, v) for v in value.values))
    if isinstance(value, SigmaCasedString):
        return _string_leaf(path, value, cased=True)
    if isinstance(value, SigmaString):
        return _string_leaf(path, value, cased=False)
    if isinstance(value, SigmaTimestampPart):
        return Leaf(
            LeafKind.TIMEPART,
            path,
            (value.timestamp_part, value.number),
            f"{name}|{value.timestamp_part.name.lower()} = {value.number}",
        )
    if isinstance(value, SigmaBool):
        return Leaf(
            LeafKind.EQUALS,
            path,
            (frozenset({"true" if value.boolean else "false"}),),
            f"{name} = {value.boolean}",
        )
    if isinstance(value, SigmaNumber):
        form = stringform(value.number)
        return Leaf(LeafKind.EQUALS, path, (frozenset({form}),), f"{name} = {value.number}")
    if isinstance(value, SigmaNull):
        return Leaf(LeafKind.NULL, path, (), f"{name} is null")
    if isinstance(value, SigmaRegularExpression):
        flags = value.flags
        compiled = compile_re2(
            str(value.regexp),
            ignore_case=SigmaRegularExpressionFlag.IGNORECASE in flags,
            multiline=SigmaRegularExpressionFlag.MULTILINE in flags,
            dotall=SigmaRegularExpressionFlag.DOTALL in flags,
        )
        return Leaf(LeafKind.REGEX, path, (compiled,), f"{name}|re = {str(value.regexp)!r}")
    if isinstance(value, SigmaCIDRExpression):
        net = value.network
        return Leaf(
            LeafKind.CIDR,
            path,
            ((net.version, int(net.network_address), int(net.netmask)),),
            f"{name}|cidr = {value.cidr}",
        )
    if isinstance(value, SigmaCompareExpression):
        op = value.op.name.lower()
        return Leaf(
            LeafKind.COMPARE, path, (value.op, value.number.number), f"{name}|{op} {value.number.number}"
        )
    if isinstance(value, SigmaExists):
        return Leaf(LeafKind.EXISTS, path, (bool(value.exists),), f"{name}|exists = {bool(value.exists)}")
    if isinstance(value, SigmaFieldReference):
        other = FieldPath.of(value.field)
        return Leaf(
            LeafKind.FIELDREF,
            path,
            (other, value.starts_with, value.ends_with),
            f"{name} = field {value.field}",
        )
    raise CompileError(f"field {name}: value type {type(value).__name__} is not supported")


def keyword_leaf(value: Any) -> Node:
    if isinstance(value, SigmaExpansion):
        return Or(tuple(keyword_leaf(v) for v in value.values))
    if isinstance(value, SigmaString):
        parts = _parts(value)
        if all(isinstance(p, str) for p in parts):
            needle = "".join(parts)  # type: ignore[arg-type]
            return Leaf(LeafKind.KEYWORD, None, ("contains", needle.lower()), f"keyword {_shown(value)!r}")
        return Leaf(
            LeafKind.KEYWORD,
            None,
            ("regex", _wildcard_regex(parts, lower=True)),
            f"keyword {_shown(value)!r}",
        )
    if isinstance(value, SigmaNumber | SigmaBool):
        return Leaf(LeafKind.KEYWORD, None, ("contains", str(value).lower()), f"keyword {value}")
    raise CompileError(f"keyword value of type {type(value).__name__} is not supported")


# -- simplification ---------------------------------------------------------------------------

_MERGEABLE = (LeafKind.EQUALS, LeafKind.CONTAINS, LeafKind.STARTSWITH, LeafKind.ENDSWITH, LeafKind.CIDR)


def simplify(node: Node) -> Node:
    """Flatten nested AND/OR and merge OR-ed value lists on one field into a single leaf."""
    if isinstance(node, Not):
        inner = simplify(node.child)
        return inner.child if isinstance(inner, Not) else Not(inner)
    if isinstance(node, And | Or):
        kind = type(node)
        children: list[Node] = []
        for child in (simplify(c) for c in node.children):
            if isinstance(child, kind):
                children.extend(child.children)
            else:
                children.append(child)
        if kind is Or:
            children = [c for c in children if not isinstance(c, Never)]
            children = _merge_or_leaves(children)
            if not children:
                return Never()
        elif any(isinstance(c, Never) for c in children):
            return Never()
        if len(children) == 1:
            return children[0]
        return kind(tuple(children))
    return node


def _merge_or_leaves(children: list[Node]) -> list[Node]:
    merged: dict[tuple[LeafKind, str], Leaf] = {}
    out: list[Node] = []
    for child in children:
        if isinstance(child, Leaf) and child.kind in _MERGEABLE and child.path is not None:
            key = (child.kind, child.path.dotted)
            previous = merged.get(key)
            if previous is None:
                merged[key] = child
                out.append(child)
                continue
            if child.kind is LeafKind.EQUALS:
                args: tuple[Any, ...] = (previous.args[0] | child.args[0],)
            else:
                args = previous.args + tuple(a for a in child.args if a not in previous.args)
            combined = Leaf(
                child.kind, child.path, args, f"{previous.text} or {child.text.split(' = ', 1)[-1]}"
            )
            out[out.index(previous)] = combined
            merged[key] = combined
        else:
            out.append(child)
    return out


def required_values(node: Node) -> dict[str, tuple[FieldPath, frozenset[str]]]:
    """Fields whose value must be one of a known set for the node to match (index candidates)."""
    if isinstance(node, Leaf):
        if node.kind is LeafKind.EQUALS and node.path is not None:
            return {node.path.dotted: (node.path, node.args[0])}
        return {}
    if isinstance(node, And):
        out: dict[str, tuple[FieldPath, frozenset[str]]] = {}
        for child in node.children:
            for dotted, (path, values) in required_values(child).items():
                if dotted in out:
                    out[dotted] = (path, out[dotted][1] & values)
                else:
                    out[dotted] = (path, values)
        return out
    if isinstance(node, Or):
        branches = [required_values(child) for child in node.children]
        if not branches or any(not b for b in branches):
            return {}
        common = set(branches[0]).intersection(*branches[1:])
        return {
            dotted: (branches[0][dotted][0], frozenset().union(*(b[dotted][1] for b in branches)))
            for dotted in common
        }
    return {}


def required_ip_octets(node: Node) -> dict[str, tuple[FieldPath, frozenset[int]]]:
    """IPv4 fields whose first octet must be one of a known set (CIDR-only rules become indexable)."""
    if isinstance(node, Leaf):
        if node.kind is LeafKind.CIDR and node.path is not None:
            octets: set[int] = set()
            for version, network, mask in node.args:
                if version != 4:
                    return {}
                first, first_mask = network >> 24, mask >> 24
                octets.update(o for o in range(256) if o & first_mask == first)
            return {node.path.dotted: (node.path, frozenset(octets))}
        return {}
    if isinstance(node, And):
        out: dict[str, tuple[FieldPath, frozenset[int]]] = {}
        for child in node.children:
            for dotted, (path, values) in required_ip_octets(child).items():
                out[dotted] = (path, out[dotted][1] & values) if dotted in out else (path, values)
        return out
    if isinstance(node, Or):
        branches = [required_ip_octets(child) for child in node.children]
        if not branches or any(not b for b in branches):
            return {}
        common = set(branches[0]).intersection(*branches[1:])
        return {d: (branches[0][d][0], frozenset().union(*(b[d][1] for b in branches))) for d in common}
    return {}


# -- predicates -------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    kind = type(value)
    if kind is int or kind is float:
        return value
    if kind is str:
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _text(value: Any) -> str | None:
    kind = type(value)
    if kind is str:
        return value
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is float:
        return stringform(value)
    return None


_COMPARE: dict[CompareOperators, Callable[[float, float], bool]] = {
    CompareOperators.LT: lambda a, b: a < b,
    CompareOperators.LTE: lambda a, b: a <= b,
    CompareOperators.GT: lambda a, b: a > b,
    CompareOperators.GTE: lambda a, b: a >= b,
    CompareOperators.NEQ: lambda a, b: a != b,
}

_TIME_PART: dict[TimestampPart, Callable[[datetime], int]] = {
    TimestampPart.MINUTE: lambda d: d.minute,
    TimestampPart.HOUR: lambda d: d.hour,
    TimestampPart.DAY: lambda d: d.day,
    TimestampPart.WEEK: lambda d: d.isocalendar().week,
    TimestampPart.MONTH: lambda d: d.month,
    TimestampPart.YEAR: lambda d: d.year,
}


def _as_datetime(value: Any) -> datetime | None:
    from detectors.sigma.events import _parse_time_value

    seconds = _parse_time_value(value)
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _leaf_predicate(leaf: Leaf) -> Predicate:  # noqa: C901 - one small closure per leaf kind
    kind = leaf.kind
    path = leaf.path
    if kind is LeafKind.KEYWORD:
        mode, needle = leaf.args

        if mode == "contains":

            def keyword_contains(view: EventView) -> bool:
                return any(needle in text.lower() for text in view.all_strings())

            return keyword_contains

        def keyword_regex(view: EventView) -> bool:
            return any(needle.fullmatch(text.lower()) is not None for text in view.all_strings())

        return keyword_regex

    assert path is not None
    d, s = path.dotted, path.segments

    if kind is LeafKind.EQUALS:
        (values,) = leaf.args
        if len(values) == 1:
            (only,) = values

            def equals_one(view: EventView) -> bool:
                forms = view._forms.get(d)
                if forms is None:
                    forms = view.forms(d, s)
                return only in forms

            return equals_one

        def equals_any(view: EventView) -> bool:
            forms = view._forms.get(d)
            if forms is None:
                forms = view.forms(d, s)
            for form in forms:  # noqa: SIM110 - explicit loop: any() with a generator is slower on the hot path
                if form in values:
                    return True
            return False

        return equals_any

    if kind in (LeafKind.CONTAINS, LeafKind.STARTSWITH, LeafKind.ENDSWITH):
        needles = leaf.args
        if kind is LeafKind.CONTAINS:

            def contains(view: EventView) -> bool:
                for form in view.forms(d, s):  # noqa: SIM110 - explicit loop: any() with a generator is slower on the hot path
                    for needle in needles:
                        if needle in form:
                            return True
                return False

            return contains
        method = str.startswith if kind is LeafKind.STARTSWITH else str.endswith
        as_tuple = tuple(needles)

        def affix(view: EventView) -> bool:
            for form in view.forms(d, s):  # noqa: SIM110 - explicit loop: any() with a generator is slower on the hot path
                if method(form, as_tuple):
                    return True
            return False

        return affix

    if kind is LeafKind.ANY_VALUE:
        return lambda view: bool(view.forms(d, s))

    if kind is LeafKind.WILDCARD:
        (pattern,) = leaf.args

        def wildcard(view: EventView) -> bool:
            return any(pattern.fullmatch(form) is not None for form in view.forms(d, s))

        return wildcard

    if kind is LeafKind.CASED:
        mode, operand = leaf.args

        def cased(view: EventView) -> bool:
            for value in view.resolve(d, s):
                text = _text(value)
                if text is None:
                    continue
                if (text == operand) if mode == "equals" else (operand.fullmatch(text) is not None):
                    return True
            return False

        return cased

    if kind is LeafKind.REGEX:
        (pattern,) = leaf.args

        def regex(view: EventView) -> bool:
            for value in view.resolve(d, s):
                text = _text(value)
                if text is not None and pattern.search(text) is not None:
                    return True
            return False

        return regex

    if kind is LeafKind.CIDR:
        networks = leaf.args  # (version, network as int, mask as int)

        def cidr(view: EventView) -> bool:
            for version, address in view.ips(d, s):
                for net_version, network, mask in networks:
                    if version == net_version and address & mask == network:
                        return True
            return False

        return cidr

    if kind is LeafKind.COMPARE:
        op, number = leaf.args
        test = _COMPARE[op]

        def compare(view: EventView) -> bool:
            for value in view.resolve(d, s):
                if type(value) is bool:
                    continue
                n = _number(value)
                if n is not None and test(n, number):
                    return True
            return False

        return compare

    if kind is LeafKind.EXISTS:
        (wanted,) = leaf.args
        return lambda view: view.present(d, s) is wanted

    if kind is LeafKind.NULL:
        # only absent or null: the empty string is a value (`field: ''` matches it)
        return lambda view: all(v is None for v in view.resolve(d, s))

    if kind is LeafKind.FIELDREF:
        other, starts, ends = leaf.args

        def fieldref(view: EventView) -> bool:
            mine = view.forms(d, s)
            theirs = view.forms(other.dotted, other.segments)
            for a in mine:
                for b in theirs:
                    if (
                        (starts and a.startswith(b))
                        or (ends and a.endswith(b))
                        or (not starts and not ends and a == b)
                    ):
                        return True
            return False

        return fieldref

    if kind is LeafKind.TIMEPART:
        part, number = leaf.args
        extract = _TIME_PART[part]

        def timepart(view: EventView) -> bool:
            for value in view.resolve(d, s):
                moment = _as_datetime(value)
                if moment is not None and extract(moment) == number:
                    return True
            return False

        return timepart

    raise CompileError(f"no predicate for {kind}")


# predicate -> the node it was built from: lets the batch matcher (detectors.sigma.batch) check
# that a rule's `matches` is still the compiled condition before evaluating the node column-wise
_BUILT_FROM: weakref.WeakKeyDictionary[Predicate, Node] = weakref.WeakKeyDictionary()


def built_from(fn: Predicate) -> Node | None:
    """The node `predicate` built `fn` from, or None for any other callable."""
    try:
        return _BUILT_FROM.get(fn)
    except TypeError:  # not weak-referenceable: not ours
        return None


def predicate(node: Node) -> Predicate:
    """Build the closure tree for a (simplified) node."""
    fn = _predicate(node)
    _BUILT_FROM[fn] = node
    return fn


def _predicate(node: Node) -> Predicate:
    if isinstance(node, Leaf):
        return _leaf_predicate(node)
    if isinstance(node, Never):
        return lambda view: False
    if isinstance(node, Not):
        inner = _predicate(node.child)
        return lambda view: not inner(view)
    parts = [_predicate(child) for child in _cheap_first(node.children)]
    if isinstance(node, And):
        if len(parts) == 2:
            a, b = parts
            return lambda view: a(view) and b(view)

        def all_of(view: EventView) -> bool:
            for part in parts:  # noqa: SIM110 - explicit loop: any() with a generator is slower on the hot path
                if not part(view):
                    return False
            return True

        return all_of
    if len(parts) == 2:
        a, b = parts
        return lambda view: a(view) or b(view)

    def any_of(view: EventView) -> bool:
        for part in parts:  # noqa: SIM110 - explicit loop: any() with a generator is slower on the hot path
            if part(view):
                return True
        return False

    return any_of


_COST = {
    LeafKind.EQUALS: 1,
    LeafKind.EXISTS: 1,
    LeafKind.NULL: 1,
    LeafKind.STARTSWITH: 2,
    LeafKind.ENDSWITH: 2,
    LeafKind.CONTAINS: 2,
    LeafKind.ANY_VALUE: 1,
    LeafKind.COMPARE: 3,
    LeafKind.CASED: 3,
    LeafKind.FIELDREF: 3,
    LeafKind.TIMEPART: 4,
    LeafKind.CIDR: 5,
    LeafKind.WILDCARD: 5,
    LeafKind.REGEX: 6,
    LeafKind.KEYWORD: 9,
}


def _cost(node: Node) -> int:
    if isinstance(node, Leaf):
        return _COST[node.kind]
    if isinstance(node, Not):
        return _cost(node.child) + 1
    if isinstance(node, And | Or):
        return sum(_cost(c) for c in node.children)
    return 0


def _cheap_first(children: tuple[Node, ...]) -> list[Node]:
    """AND/OR short-circuit, so evaluate cheap exact matches before regexes and keyword scans."""
    return sorted(children, key=_cost)


# -- explanations (rule tests) ------------------------------------------------------------------


def explain(node: Node, view: EventView, depth: int = 0) -> list[str]:
    """Lines saying which parts of a condition held for an event, for readable test failures."""
    pad = "  " * depth
    result = predicate(node)(view)
    mark = "✓" if result else "✗"
    if isinstance(node, Leaf):
        shown = ""
        if node.path is not None:
            values = view.resolve(node.path.dotted, node.path.segments)
            shown = f"  (event has {list(values)[:5]!r})" if values else "  (field absent)"
        return [f"{pad}{mark} {node.text}{shown}"]
    if isinstance(node, Never):
        return [f"{pad}✗ never"]
    if isinstance(node, Not):
        return [f"{pad}{mark} not", *explain(node.child, view, depth + 1)]
    label = "all of" if isinstance(node, And) else "any of"
    lines = [f"{pad}{mark} {label}"]
    for child in node.children:
        lines.extend(explain(child, view, depth + 1))
    return lines
