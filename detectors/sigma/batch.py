"""Column-wise matching: one stream's events at a time, each rule's condition over a set of rows.

`RuleIndex.match` walks one event through its candidate rules, a closure call per condition
element per event. Here the same conditions are compiled a second time, into functions from a
list of row numbers to the rows (of those) where the element holds: an AND narrows the rows
child by child, an OR tries each child on the rows not matched yet, a NOT keeps the rows its
child dropped. A leaf is one list comprehension over a *column*: the field's case-folded forms
(or values, or IP addresses) for the batch's rows, extracted once per field per batch and
shared by every rule reading that field. Children run in the same cheap-first order as the
per-event predicates, so every row is tried by exactly the elements the per-event short-circuit
would try.

Semantics are the per-event ones by construction: columns are filled by the same inlined
cases as `EventView.forms`/`resolve`/`ips`, and whatever those inlined cases do not cover (a
path through a list, a list-valued field, a flattened dotted key ...) is read through a real
`EventView` of that row; a leaf kind without a column form (keywords, field references, time
parts, comparisons ...) runs the per-event leaf predicate on each row's view.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from typing import Any, cast

from detectors.sigma.compiler import (
    _COMPARE,
    _TIME_PART,
    And,
    Leaf,
    LeafKind,
    Never,
    Node,
    Not,
    _as_datetime,
    _cheap_first,
    _leaf_predicate,
    _number,
    _text,
)
from detectors.sigma.events import (
    _KEYMAPS,
    EventRecord,
    EventView,
    _leaves,
    _parse_ip_text,
    keymap,
    parse_ip,
    stringform,
    walk,
)

Rows = list[int]
BatchPredicate = Callable[["Columns", Rows], Rows]


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<{self.name}>"


MULTI: Any = _Marker("several")  # in a `one` column: the row has several items, see `full`
_UNSET: Any = _Marker("unset")
_ABSENT: Any = _Marker("absent")  # the path reaches nothing
_SLOW: Any = _Marker("slow")  # the inlined cases do not cover this row: ask its EventView
_MISSING: Any = _Marker("missing")


class Columns:
    """One stream's rows of a batch and every column read from them so far.

    A column is a pair: `one`, a list with, per row, the only item (form, value or address), None
    when there is none, or MULTI; and `full`, {row: every item} for the MULTI rows only."""

    __slots__ = ("records", "datas", "tops", "shapes", "plain", "size", "_all", "_views", "_columns")

    def __init__(self, records: Sequence[EventRecord]) -> None:
        self.records = records
        datas = [r.data for r in records]
        self.plain = set(map(type, datas)) == {dict}  # dict.get may be mapped over them, in C
        if not self.plain:
            for data in datas:
                if not isinstance(data, Mapping):
                    raise TypeError(f"event data must be a JSON object, not {type(data).__name__}")
        self.datas = datas
        plain = cast(list[dict[str, Any]], datas)  # when self.plain
        self.tops: list[dict[str, Any]] = _keymaps(plain) if self.plain else list(map(keymap, datas))
        # the distinct top-level shapes' key maps (a stream's batch has a handful)
        self.shapes = list(dict(zip(map(id, self.tops), self.tops, strict=True)).values())
        self.size = len(datas)
        self._all: Rows | None = None
        self._views: dict[int, EventView] = {}
        self._columns: dict[tuple[str, str], tuple[dict[int, tuple[Any, ...]], list[Any]]] = {}

    @property
    def all_rows(self) -> Rows:
        """Every row, in order (one list per batch: predicates never change the lists they get)."""
        rows = self._all
        if rows is None:
            rows = self._all = list(range(self.size))
        return rows

    def view(self, row: int) -> EventView:
        view = self._views.get(row)
        if view is None:
            view = self._views[row] = EventView(self.records[row])
        return view

    def _walk(self, row: int, dotted: str, segments: tuple[str, ...]) -> tuple[tuple[Any, ...], bool]:
        """The general walk of one row (what its `EventView` resolves a row `_reach` calls _SLOW
        to: its inlined cases fail there too), without building the view."""
        return walk(self.datas[row], dotted, segments, self.tops[row])

    def _reach(self, dotted: str, segments: tuple[str, ...], todo: Rows) -> list[Any]:
        """Per row: the value at the path through nested objects, _ABSENT, or _SLOW (lists on
        the way, a missing intermediate object, a flattened dotted key: the general walk)."""
        datas, tops = self.datas, self.tops
        first = segments[0]
        values = self._top_level(first, dotted if len(segments) > 1 else None, todo)
        if values is None and len(segments) == 1:
            return [
                datas[i][k] if (k := tops[i].get(first, _MISSING)) is not _MISSING else _ABSENT for i in todo
            ]
        if values is None:
            values = [
                datas[i][k]
                if (k := tops[i].get(first, _MISSING)) is not _MISSING
                else (_ABSENT if tops[i].get(dotted, _MISSING) is _MISSING else _SLOW)
                for i in todo
            ]
        if len(segments) == 1:
            return values
        shapes = _KEYMAPS.get
        for segment in segments[1:]:
            probe = next((v for v in values if type(v) is dict), None)
            known = _plain_keymap(probe) if probe is not None else None
            spelled = known.get(segment, _MISSING) if known is not None else _MISSING
            if spelled is _MISSING:
                values = [
                    v[k]
                    if type(v) is dict
                    and (k := (shapes(tuple(v)) or keymap(v)).get(segment, _MISSING)) is not _MISSING
                    else (_ABSENT if v is _ABSENT else _SLOW)
                    for v in values
                ]
                continue
            assert probe is not None
            same = probe.keys()  # objects with these keys spell the segment `spelled`
            values = [
                v[spelled]
                if type(v) is dict and v.keys() == same
                else (
                    v[k]
                    if type(v) is dict
                    and (k := (shapes(tuple(v)) or keymap(v)).get(segment, _MISSING)) is not _MISSING
                    else (_ABSENT if v is _ABSENT else _SLOW)
                )
                for v in values
            ]
        return values

    def _top_level(self, first: str, dotted: str | None, todo: Rows) -> list[Any] | None:
        """The rows' values under the top-level key `first` (any case), _ABSENT where there is
        none, when every shape spells that key one way (or lacks it, and lacks the flattened
        `dotted` key a longer path could be written as): one `dict.get` per row, mapped in C.
        None: the shapes differ, the rows take the per-row walk."""
        spelled = {keys.get(first, _MISSING) for keys in self.shapes}
        if len(spelled) > 2 or not self.plain:
            return None
        if _MISSING in spelled:
            if dotted is not None and any(keys.get(dotted, _MISSING) is not _MISSING for keys in self.shapes):
                return None  # a flattened "a.b" key: the general walk
            spelled.discard(_MISSING)
            if not spelled:
                return [_ABSENT] * len(todo)
        elif len(spelled) > 1:
            return None
        (key,) = spelled
        whole = cast(list[dict[str, Any]], self.datas)  # self.plain: every one a dict
        datas = whole if len(todo) == self.size else [whole[i] for i in todo]
        return list(map(dict.get, datas, repeat(key, len(datas)), repeat(_ABSENT, len(datas))))

    def _column(self, kind: str, dotted: str, rows: Rows) -> tuple[Any, Rows]:
        """(the column, the rows of `rows` it lacks); a new column covering every row is
        returned as (None, rows) for the caller to build whole."""
        column = self._columns.get((kind, dotted))
        if column is None:
            if len(rows) * 3 >= self.size:  # most rows will be asked for: read the field for all
                return None, rows if len(rows) == self.size else self.all_rows
            column = self._columns[(kind, dotted)] = ({}, [_UNSET] * self.size)
            return column, rows
        one = column[1]
        return column, [i for i in rows if one[i] is _UNSET]

    def _store(
        self,
        kind: str,
        dotted: str,
        column: Any,
        todo: Rows,
        one: list[Any],
        full: dict[int, tuple[Any, ...]],
    ) -> tuple[dict[int, tuple[Any, ...]], list[Any]]:
        if column is None:
            column = self._columns[(kind, dotted)] = (full, one)
            return column
        whole_full, whole_one = column
        for i, item in zip(todo, one, strict=True):
            whole_one[i] = item
        whole_full.update(full)
        return column

    def forms(self, dotted: str, segments: tuple[str, ...], rows: Rows) -> tuple[dict[int, Any], list[Any]]:
        """Case-folded forms (as `EventView.forms`) of `rows` at the path."""
        column, todo = self._column("forms", dotted, rows)
        if not todo:
            return column
        reached = self._reach(dotted, segments, todo)
        one = [
            v.lower()
            if (kind := type(v)) is str
            else (str(v) if kind is int else (None if v is None or v is _ABSENT else _slow_form(v)))
            for v in reached
        ]
        full: dict[int, tuple[Any, ...]] = {}
        for position, item in enumerate(one):
            if item is _SLOW:
                row = todo[position]
                value = reached[position]
                if type(value) is list and not any(type(x) is list for x in value):  # as EventView.forms
                    forms = tuple(f for f in map(stringform, value) if f is not None)
                else:
                    forms = _forms(self._walk(row, dotted, segments)[0])
                if len(forms) > 1:
                    full[row] = forms
                one[position] = _one(forms)
        return self._store("forms", dotted, column, todo, one, full)

    def values(self, dotted: str, segments: tuple[str, ...], rows: Rows) -> tuple[dict[int, Any], list[Any]]:
        """Leaf values (as `EventView.resolve`) of `rows` at the path; a None value reads as no value."""
        column, todo = self._column("values", dotted, rows)
        if not todo:
            return column
        reached = self._reach(dotted, segments, todo)
        one = [
            v if type(v) is not list and type(v) is not _Marker else (None if v is _ABSENT else _SLOW)
            for v in reached
        ]
        full: dict[int, tuple[Any, ...]] = {}
        for position, item in enumerate(one):
            if item is _SLOW:
                row = todo[position]
                value = reached[position]
                # a list at the end of a path through objects: its leaves, as the general walk finds them
                values = _leaves(value) if type(value) is list else self._walk(row, dotted, segments)[0]
                if len(values) > 1:
                    full[row] = values
                one[position] = _one(values)
        return self._store("values", dotted, column, todo, one, full)

    def ips(self, dotted: str, segments: tuple[str, ...], rows: Rows) -> tuple[dict[int, Any], list[Any]]:
        """(version, address) of every IP value (as `EventView.ips`) of `rows` at the path."""
        column, todo = self._column("ips", dotted, rows)
        if not todo:
            return column
        # a text value is one address or none; any other single value none; lists and the
        # general walk's cases go through the values column
        one = [
            _parse_ip_text(v) if type(v) is str else (_SLOW if v is _SLOW or type(v) is list else None)
            for v in self._reach(dotted, segments, todo)
        ]
        full: dict[int, tuple[Any, ...]] = {}
        for position, item in enumerate(one) if _SLOW in one else ():
            if item is _SLOW:
                row = todo[position]
                values_full, values_one = self.values(dotted, segments, [row])
                value = values_one[row]
                if value is MULTI:
                    found = tuple(ip for ip in map(parse_ip, values_full[row]) if ip is not None)
                else:
                    ip = parse_ip(value)
                    found = () if ip is None else (ip,)
                if len(found) > 1:
                    full[row] = found
                one[position] = _one(found)
        return self._store("ips", dotted, column, todo, one, full)

    def present(self, dotted: str, segments: tuple[str, ...], rows: Rows) -> list[bool]:
        """Whether the path exists (as `EventView.present`), for each of `rows` in order."""
        reached = self._reach(dotted, segments, rows)
        return [
            (self._walk(row, dotted, segments)[1] if v is _SLOW else v is not _ABSENT)
            for row, v in zip(rows, reached, strict=True)
        ]


def _plain_keymap(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The object's key map when no two of its keys differ only in case: then every object with
    the same *set* of keys has the same map, whatever their order (a set comparison, in C, costs
    a third of building the key tuple the map is cached under)."""
    mapping = keymap(obj)
    return mapping if len(mapping) == len(obj) else None


def _keymaps(datas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`keymap` of each object; those with the first object's keys share its map."""
    if not datas:
        return []
    first = datas[0]
    known = _plain_keymap(first)
    shapes = _KEYMAPS.get
    if known is None:
        return [shapes(tuple(d)) or keymap(d) for d in datas]
    same = first.keys()
    return [known if d.keys() == same else (shapes(tuple(d)) or keymap(d)) for d in datas]


def _forms(values: tuple[Any, ...]) -> tuple[str, ...]:
    """The case-folded forms of leaf values (as `EventView.forms` makes them)."""
    return tuple(f for f in map(stringform, values) if f is not None)


def _one(items: tuple[Any, ...]) -> Any:
    if not items:
        return None
    return items[0] if len(items) == 1 else MULTI


def _slow_form(value: Any) -> Any:
    kind = type(value)
    if kind is int or kind is bool or kind is float:
        return stringform(value)
    return _SLOW


# -- compiling a condition into a batch predicate ------------------------------------------------


def batch_predicate(node: Node) -> BatchPredicate:
    """The rows (of those given, in their order) where the node holds."""
    if isinstance(node, Leaf):
        return _leaf(node)
    if isinstance(node, Never):
        return lambda columns, rows: []
    if isinstance(node, Not):
        inner = batch_predicate(node.child)

        def negated(columns: Columns, rows: Rows) -> Rows:
            if not rows:
                return rows
            held = inner(columns, rows)
            if not held:
                return rows
            dropped = set(held)
            return [i for i in rows if i not in dropped]

        return negated
    parts = [batch_predicate(child) for child in _cheap_first(node.children)]
    if isinstance(node, And):

        def all_of(columns: Columns, rows: Rows) -> Rows:
            for part in parts:
                if not rows:
                    break
                rows = part(columns, rows)
            return rows

        return all_of

    def any_of(columns: Columns, rows: Rows) -> Rows:
        held: set[int] = set()
        rest = rows
        for part in parts:
            if not rest:
                break
            hit = part(columns, rest)
            if hit:
                held.update(hit)
                rest = [i for i in rest if i not in held]
        if not held:
            return []
        return [i for i in rows if i in held]

    return any_of


def per_row(test: Callable[[EventView], bool]) -> BatchPredicate:
    """A per-event predicate tried on each row's view."""

    def per_view(columns: Columns, rows: Rows) -> Rows:
        view = columns.view
        return [i for i in rows if test(view(i))]

    return per_view


def _per_view(leaf: Leaf) -> BatchPredicate:
    return per_row(_leaf_predicate(leaf))


def _leaf(leaf: Leaf) -> BatchPredicate:  # noqa: C901 - one comprehension per leaf kind
    kind = leaf.kind
    path = leaf.path
    if path is None:
        return _per_view(leaf)
    d, s = path.dotted, path.segments

    if kind is LeafKind.EQUALS:
        (allowed,) = leaf.args
        if len(allowed) == 1:
            (only,) = allowed

            def equals_one(columns: Columns, rows: Rows) -> Rows:
                full, one = columns.forms(d, s, rows)
                return [i for i in rows if (f := one[i]) == only or (f is MULTI and only in full[i])]

            return equals_one

        def equals_any(columns: Columns, rows: Rows) -> Rows:
            full, one = columns.forms(d, s, rows)
            return [
                i
                for i in rows
                if (f := one[i]) in allowed or (f is MULTI and not allowed.isdisjoint(full[i]))
            ]

        return equals_any

    if kind is LeafKind.CONTAINS:
        needles = tuple(leaf.args)
        if len(needles) == 1:
            (needle,) = needles

            def contains_one(columns: Columns, rows: Rows) -> Rows:
                full, one = columns.forms(d, s, rows)
                return [
                    i
                    for i in rows
                    if (f := one[i]) is not None
                    and (any(needle in x for x in full[i]) if f is MULTI else needle in f)
                ]

            return contains_one

        def contains_any(columns: Columns, rows: Rows) -> Rows:
            full, one = columns.forms(d, s, rows)
            return [
                i
                for i in rows
                if (f := one[i]) is not None
                and (
                    any(n in x for x in full[i] for n in needles)
                    if f is MULTI
                    else any(n in f for n in needles)
                )
            ]

        return contains_any

    if kind is LeafKind.STARTSWITH or kind is LeafKind.ENDSWITH:
        affixes = tuple(leaf.args)
        starts = kind is LeafKind.STARTSWITH

        def affix(columns: Columns, rows: Rows) -> Rows:
            full, one = columns.forms(d, s, rows)
            if starts:
                return [
                    i
                    for i in rows
                    if (f := one[i]) is not None
                    and (any(x.startswith(affixes) for x in full[i]) if f is MULTI else f.startswith(affixes))
                ]
            return [
                i
                for i in rows
                if (f := one[i]) is not None
                and (any(x.endswith(affixes) for x in full[i]) if f is MULTI else f.endswith(affixes))
            ]

        return affix

    if kind is LeafKind.ANY_VALUE:

        def any_value(columns: Columns, rows: Rows) -> Rows:
            _, one = columns.forms(d, s, rows)
            return [i for i in rows if one[i] is not None]

        return any_value

    if kind is LeafKind.WILDCARD:
        (pattern,) = leaf.args
        fullmatch = pattern.fullmatch

        def wildcard(columns: Columns, rows: Rows) -> Rows:
            full, one = columns.forms(d, s, rows)
            return [
                i
                for i in rows
                if (f := one[i]) is not None
                and (
                    any(fullmatch(x) is not None for x in full[i]) if f is MULTI else fullmatch(f) is not None
                )
            ]

        return wildcard

    if kind is LeafKind.REGEX:
        (pattern,) = leaf.args
        search = pattern.search

        def matches_text(value: Any) -> bool:
            text = _text(value)
            return text is not None and search(text) is not None

        def regex(columns: Columns, rows: Rows) -> Rows:
            full, one = columns.values(d, s, rows)
            # a stream's text values repeat (app names, operations): each distinct one searched once
            seen: dict[str, bool] = {}
            return [
                i
                for i in rows
                if (v := one[i]) is not None
                and (
                    any(matches_text(x) for x in full[i])
                    if v is MULTI
                    else (
                        (
                            found
                            if (found := seen.get(v)) is not None
                            else seen.setdefault(v, search(v) is not None)
                        )
                        if type(v) is str
                        else matches_text(v)
                    )
                )
            ]

        return regex

    if kind is LeafKind.CIDR:
        networks = leaf.args

        def in_networks(ip: tuple[int, int]) -> bool:
            version, address = ip
            for net_version, network, mask in networks:
                if version == net_version and address & mask == network:
                    return True
            return False

        if len(networks) == 1:
            ((want, network, mask),) = networks

            def cidr_one(columns: Columns, rows: Rows) -> Rows:
                full, one = columns.ips(d, s, rows)
                return [
                    i
                    for i in rows
                    if (ip := one[i]) is not None
                    and (
                        any(map(in_networks, full[i]))
                        if ip is MULTI
                        else ip[0] == want and ip[1] & mask == network
                    )
                ]

            return cidr_one

        def cidr(columns: Columns, rows: Rows) -> Rows:
            full, one = columns.ips(d, s, rows)
            return [
                i
                for i in rows
                if (ip := one[i]) is not None
                and (any(map(in_networks, full[i])) if ip is MULTI else in_networks(ip))
            ]

        return cidr

    if kind is LeafKind.EXISTS:
        (wanted,) = leaf.args

        def exists(columns: Columns, rows: Rows) -> Rows:
            return [i for i, there in zip(rows, columns.present(d, s, rows), strict=True) if there is wanted]

        return exists

    if kind is LeafKind.NULL:  # only absent or null: a None in the `one` column is either

        def null(columns: Columns, rows: Rows) -> Rows:
            full, one = columns.values(d, s, rows)
            return [
                i for i in rows if (v := one[i]) is None or (v is MULTI and all(x is None for x in full[i]))
            ]

        return null

    test = _value_test(leaf)
    if test is not None:  # a test of each value on its own, never true of None

        def by_value(columns: Columns, rows: Rows) -> Rows:
            full, one = columns.values(d, s, rows)
            return [
                i
                for i in rows
                if (v := one[i]) is not None and (any(map(test, full[i])) if v is MULTI else test(v))
            ]

        return by_value

    return _per_view(leaf)


def _value_test(leaf: Leaf) -> Callable[[Any], bool] | None:
    """For leaves matching when any one value passes (None never does): that test."""
    kind = leaf.kind
    if kind is LeafKind.COMPARE:
        op, number = leaf.args
        compare = _COMPARE[op]

        def compare_value(value: Any) -> bool:
            if type(value) is bool:
                return False
            n = _number(value)
            return n is not None and compare(n, number)

        return compare_value
    if kind is LeafKind.CASED:
        mode, operand = leaf.args
        if mode == "equals":
            return lambda value: _text(value) == operand

        def cased_pattern(value: Any) -> bool:
            text = _text(value)
            return text is not None and operand.fullmatch(text) is not None

        return cased_pattern
    if kind is LeafKind.TIMEPART:
        part, number = leaf.args
        extract = _TIME_PART[part]

        def timepart(value: Any) -> bool:
            moment = _as_datetime(value)
            return moment is not None and extract(moment) == number

        return timepart
    return None
