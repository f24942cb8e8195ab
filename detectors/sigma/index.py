"""Which rules an event can possibly match, found with dictionary lookups instead of trying them all.

Rules are grouped by (provider, stream). Inside a stream, every rule whose condition *requires*
one field to equal one of a few values (`action: user_login`, `Operation: [New-InboxRule, ...]`,
`status.errorCode: 50126` ...) is filed under those values of that field; rules without such a
requirement are tried on every event of the stream. An event then costs one lookup per indexed
field plus the few rules it could match, so cost stays nearly flat as the pack grows.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from detectors.sigma.compiler import required_ip_octets, required_values
from detectors.sigma.definitions import CompiledRule
from detectors.sigma.events import EventView
from detectors.sigma.logsource import profile


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

    @staticmethod
    def _ip_candidates(index: StreamIndex, view: EventView) -> list[CompiledRule]:
        found: list[CompiledRule] = []
        for dotted, segments, by_octet in index.ip_tables:
            for version, address in view.ips(dotted, segments):
                if version == 4:
                    found.extend(r for r in by_octet.get(address >> 24, ()) if r not in found)
        return found


def naive_match(rules: list[CompiledRule], view: EventView) -> list[CompiledRule]:
    """The baseline the index is measured against: every rule's logsource and condition, in turn."""
    record = view.record
    out = []
    for rule in rules:
        if rule.provider == record.provider and record.stream in rule.streams and rule.matches(view):
            out.append(rule)
    return out
