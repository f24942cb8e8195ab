"""Which rules an event can possibly match, found with dictionary lookups instead of trying them all.

Rules are grouped by (provider, stream). Inside a stream, every rule whose condition *requires*
one field to equal one of a few values (`action: user_login`, `Operation: [New-InboxRule, ...]`,
`status.errorCode: 50126` ...) is filed under those values of that field; rules without such a
requirement are tried on every event of the stream. An event then costs one lookup per indexed
field plus the few rules it could match, so cost stays nearly flat as the pack grows.
"""

from __future__ import annotations

import operator
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from detectors.sigma.batch import MULTI, BatchPredicate, Columns, batch_predicate, per_row
from detectors.sigma.compiler import (
    And,
    Leaf,
    LeafKind,
    Node,
    Predicate,
    built_from,
    required_ip_octets,
    required_values,
)
from detectors.sigma.definitions import CompiledRule
from detectors.sigma.events import EventRecord, EventView
from detectors.sigma.logsource import profile

_STREAM_OF = operator.attrgetter("provider", "stream")


@dataclass(frozen=True)
class StreamIndex:
    always: tuple[CompiledRule, ...]
    tables: tuple[tuple[str, tuple[str, ...], dict[str, tuple[CompiledRule, ...]]], ...]
    # rules whose only requirement is an IPv4 CIDR: filed under the first octet of the address
    ip_tables: tuple[tuple[str, tuple[str, ...], dict[int, tuple[CompiledRule, ...]]], ...] = ()

    @property
    def indexed_fields(self) -> list[str]:
        return [dotted for dotted, _, _ in self.tables]


def _choose_field(
    required: Mapping[str, tuple[object, frozenset[str]]],
    preference: tuple[str, ...],
    popularity: Counter[str],
) -> str:
    def score(dotted: str) -> tuple[int, int, int]:
        rank = preference.index(dotted) if dotted in preference else len(preference)
        return (-rank, popularity[dotted], -len(required[dotted][1]))

    return max(required, key=score)


def build_stream_index(provider: str, stream: str, rules: Iterable[CompiledRule]) -> StreamIndex:
    rules = list(rules)
    preference = tuple(p.lower() for p in profile(provider, stream).index_preference)
    required = {id(rule): required_values(rule.node) for rule in rules}
    popularity: Counter[str] = Counter(d for req in required.values() for d in req)
    always: list[CompiledRule] = []
    tables: dict[str, dict[str, list[CompiledRule]]] = defaultdict(lambda: defaultdict(list))
    ip_tables: dict[str, dict[int, list[CompiledRule]]] = defaultdict(lambda: defaultdict(list))
    segments: dict[str, tuple[str, ...]] = {}
    for rule in rules:
        req = required[id(rule)]
        if not req:
            octets = required_ip_octets(rule.node)
            if not octets:
                always.append(rule)
                continue
            dotted = min(octets, key=lambda d: len(octets[d][1]))
            path, allowed = octets[dotted]
            segments[dotted] = path.segments
            for octet in allowed:
                ip_tables[dotted][octet].append(rule)
            continue
        dotted = _choose_field(req, preference, popularity)
        path, values = req[dotted]
        segments[dotted] = path.segments
        for value in values:  # an empty set means the rule can never match: filed nowhere
            tables[dotted][value].append(rule)
    ordered = sorted(tables, key=lambda d: -popularity[d])
    return StreamIndex(
        always=tuple(always),
        tables=tuple((d, segments[d], {v: tuple(rs) for v, rs in tables[d].items()}) for d in ordered),
        ip_tables=tuple(
            (d, segments[d], {o: tuple(rs) for o, rs in ip_tables[d].items()}) for d in ip_tables
        ),
    )


class RuleIndex:
    """All single-event rules of a pack, indexed by stream and exact-match field values."""

    def __init__(self, rules: Iterable[CompiledRule]) -> None:
        by_stream: dict[tuple[str, str], list[CompiledRule]] = defaultdict(list)
        for rule in rules:
            for stream in rule.streams:
                by_stream[(rule.provider, stream)].append(rule)
        self.streams: dict[tuple[str, str], StreamIndex] = {
            key: build_stream_index(key[0], key[1], rules) for key, rules in by_stream.items()
        }
        self._batch: dict[tuple[int, str | None], tuple[Predicate, BatchPredicate]] = {}

    def candidates(self, view: EventView) -> list[CompiledRule]:
        record = view.record
        index = self.streams.get((record.provider, record.stream))
        if index is None:
            return []
        out = list(index.always)
        for dotted, segments, table in index.tables:
            forms = view._forms.get(dotted)
            if forms is None:
                forms = view.forms(dotted, segments)
            if not forms:
                continue
            if len(forms) == 1:
                hit = table.get(forms[0])
                if hit:
                    out.extend(hit)
                continue
            for form in forms:
                hit = table.get(form)
                if hit:
                    out.extend(r for r in hit if r not in out)
        for dotted, segments, by_octet in index.ip_tables:
            for version, address in view.ips(dotted, segments):
                if version == 4:
                    hit = by_octet.get(address >> 24)
                    if hit:
                        out.extend(r for r in hit if r not in out)
        return out

    def match(self, view: EventView) -> list[CompiledRule]:
        """Rules whose condition holds for the event (exceptions propagate; see DetectionEngine.match).

        The same walk as `candidates`, evaluating as it goes (the hot path: no intermediate list)."""
        record = view.record
        index = self.streams.get((record.provider, record.stream))
        if index is None:
            return []
        out = [rule for rule in index.always if rule.matches(view)]
        for dotted, segments, table in index.tables:
            forms = view._forms.get(dotted)
            if forms is None:
                forms = view.forms(dotted, segments)
            if not forms:
                continue
            if len(forms) == 1:
                hit = table.get(forms[0])
                if hit:
                    for rule in hit:
                        if rule.matches(view):
                            out.append(rule)
                continue
            tried: set[int] = set()
            for form in forms:
                for rule in table.get(form, ()):
                    if id(rule) not in tried:
                        tried.add(id(rule))
                        if rule.matches(view):
                            out.append(rule)
        if index.ip_tables:
            out.extend(
                rule for rule in self._ip_candidates(index, view) if rule not in out and rule.matches(view)
            )
        return out

    # -- batches ---------------------------------------------------------------------------------

    def match_batch(
        self,
        records: Sequence[EventRecord],
        fallback: Callable[[EventRecord], list[CompiledRule]] | None = None,
    ) -> list[list[CompiledRule]]:
        """The rules matching each record (aligned with `records`), the same lists in the same
        order as `match(EventView(record))` gives, evaluated column-wise per stream.

        A stream's rows whose column-wise evaluation raises are matched one by one through
        `fallback` (default: `match` on a fresh view, which raises as `match` does)."""
        out: list[list[CompiledRule]] = [[] for _ in records]
        streams = self.streams
        # positions grouped by stream, ascending inside each (one pass: half a sort's cost)
        by_stream: dict[tuple[str, str], list[int]] = defaultdict(list)
        for position, key in enumerate(map(_STREAM_OF, records)):
            by_stream[key].append(position)
        for key in sorted(by_stream):
            index = streams.get(key)
            if index is None:
                continue
            positions = by_stream[key]
            rows = [records[p] for p in positions]
            try:
                found = self._match_stream(index, rows)
            except Exception:
                one = fallback or (lambda record: self.match(EventView(record)))
                for position, record in zip(positions, rows, strict=True):
                    out[position] = one(record)
                continue
            for row, rules in found.items():
                out[positions[row]] = rules
        return out

    def _predicate(self, rule: CompiledRule, known: str | None = None) -> BatchPredicate:
        """The rule's condition column-wise; a rule whose `matches` is not the predicate compiled
        from its node (a wrapped or replaced one) is run as it is, row by row.

        `known`: the rule's index field, for rows whose only form there is a value the rule is
        filed under: the condition's top-level exact matches on that field hold on those rows
        (the rule is filed only under values every one of them allows), so they are left out."""
        matches = rule.matches
        found = self._batch.get((id(rule), known))
        if found is None or found[0] is not matches:
            if built_from(matches) is rule.node:
                rest = _without_exact(rule.node, known)
                found = (matches, _always_rows if rest is None else batch_predicate(rest))
            else:
                found = (matches, per_row(matches))
            self._batch[(id(rule), known)] = found
        return found[1]

    def _match_stream(self, index: StreamIndex, records: list[EventRecord]) -> dict[int, list[CompiledRule]]:
        """{row: matching rules} for one stream's records, in `match`'s order per row."""
        columns = Columns(records)
        found: dict[int, list[CompiledRule]] = {}
        predicate = self._predicate
        everything = columns.all_rows

        def add(rule: CompiledRule, rows: list[int]) -> None:
            for row in rows:
                hits = found.get(row)
                if hits is None:
                    found[row] = [rule]
                else:
                    hits.append(rule)

        for rule in index.always:
            add(rule, predicate(rule)(columns, everything))
        for dotted, segments, table in index.tables:
            full, one = columns.forms(dotted, segments, everything)
            groups: dict[Any, list[int]] = defaultdict(list)
            for row, form in enumerate(one):
                groups[form].append(row)
            groups.pop(None, None)
            several = groups.pop(MULTI, [])
            for form, rows in groups.items():
                hit = table.get(form)
                if hit:
                    for rule in hit:
                        add(rule, predicate(rule, dotted)(columns, rows))
            for row in several:  # a list-valued field: each rule once, in the order `match` tries them
                tried: set[int] = set()
                view = columns.view(row)
                for form in full[row]:
                    for rule in table.get(form, ()):
                        if id(rule) not in tried:
                            tried.add(id(rule))
                            if rule.matches(view):
                                add(rule, [row])
        if index.ip_tables:
            self._match_ips(index, columns, found, add)
        return found

    def _match_ips(
        self,
        index: StreamIndex,
        columns: Columns,
        found: dict[int, list[CompiledRule]],
        add: Callable[[CompiledRule, list[int]], None],
    ) -> None:
        everything = columns.all_rows
        if len(index.ip_tables) == 1:
            ((dotted, segments, by_octet),) = index.ip_tables
            full, one = columns.ips(dotted, segments, everything)
            groups: dict[int, list[int]] = defaultdict(list)
            several: list[int] = []
            for row, ip in enumerate(one):
                if ip is None:
                    continue
                if ip is MULTI:
                    several.append(row)
                elif ip[0] == 4:
                    groups[ip[1] >> 24].append(row)
            for octet, rows in groups.items():
                for rule in by_octet.get(octet, ()):
                    # a rule already matched on a row (as `match` skips it) cannot be: each rule
                    # is filed in one place only, so only the rows' own candidates are tried
                    add(rule, self._predicate(rule)(columns, rows))
            rows = several
        else:
            rows = everything
        for row in rows:  # several addresses or several IP fields: `match`'s walk, row by row
            view = columns.view(row)
            before = found.get(row, [])
            extra = [
                rule for rule in self._ip_candidates(index, view) if rule not in before and rule.matches(view)
            ]
            for rule in extra:
                add(rule, [row])

    @staticmethod
    def _ip_candidates(index: StreamIndex, view: EventView) -> list[CompiledRule]:
        found: list[CompiledRule] = []
        for dotted, segments, by_octet in index.ip_tables:
            for version, address in view.ips(dotted, segments):
                if version == 4:
                    found.extend(r for r in by_octet.get(address >> 24, ()) if r not in found)
        return found


def _is_exact_on(node: Node, dotted: str) -> bool:
    return (
        isinstance(node, Leaf)
        and node.kind is LeafKind.EQUALS
        and node.path is not None
        and node.path.dotted == dotted
    )


def _always_rows(columns: Columns, rows: list[int]) -> list[int]:
    return rows


def _without_exact(node: Node, dotted: str | None) -> Node | None:
    """The node less its top-level exact matches on `dotted` (None: nothing left to test)."""
    if dotted is None:
        return node
    if _is_exact_on(node, dotted):
        return None
    if isinstance(node, And):
        kept = tuple(child for child in node.children if not _is_exact_on(child, dotted))
        if not kept:
            return None
        return kept[0] if len(kept) == 1 else And(kept)
    return node


def naive_match(rules: list[CompiledRule], view: EventView) -> list[CompiledRule]:
    """The baseline the index is measured against: every rule's logsource and condition, in turn."""
    record = view.record
    out = []
    for rule in rules:
        if rule.provider == record.provider and record.stream in rule.streams and rule.matches(view):
            out.append(rule)
    return out
