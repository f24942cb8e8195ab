"""Events as the engine sees them: a record (id, stream, time, data) and a case-insensitive view.

Exported logs differ in key case (`Operation` vs `operation`), so every field lookup is
case-insensitive. The lower-case -> original key map of an object is computed once per *shape*
(key set) and shared by every event with that shape, so a stream's events cost a tuple lookup
per object walked, not a re-lowering; each resolved path is memoised per event, never per rule.
Dotted paths walk nested objects and lists of objects; a path resolves to every leaf value it
reaches (lists are flattened), and a rule value matches when any of them matches.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from core.clock import parse_time
from core.normalise import NormaliseError, normalise
from detectors.sigma.errors import EventError

MAX_DEPTH = 64
MAX_KEYWORD_LEAVES = 20_000
_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One stored event handed to the engine; `id` is what findings cite as evidence."""

    id: int | str
    provider: str
    stream: str
    ts: float  # event time, epoch seconds
    data: Mapping[str, Any]
    provider_event_id: str | None = None
    # The organisation whose connection stored it (`detectors.partitions.organisation`; "" the
    # default): correlation windows and open alerts never mix two tenants' events.
    tenant: str = ""

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.ts, UTC)


def stringform(value: Any) -> str | None:
    """The case-folded text Sigma compares against: numbers and booleans as their plain text."""
    kind = type(value)
    if kind is str:
        return value.lower()
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return str(int(value)) if value.is_integer() else repr(value)
    return None


# Objects of one stream share a handful of shapes (the same keys in the same order), so the
# lower-case -> original key map is built once per shape and reused by every later event.
_KEYMAPS: dict[tuple[Any, ...], dict[str, Any]] = {}
MAX_SHAPES = 20_000


def keymap(obj: Mapping[str, Any]) -> dict[str, Any]:
    """{lower-cased key: key as written} for this object's key set (cached per key set)."""
    shape = tuple(obj)
    mapping = _KEYMAPS.get(shape)
    if mapping is None:
        if len(_KEYMAPS) >= MAX_SHAPES:
            _KEYMAPS.clear()
        mapping = {}
        for key in shape:
            lowered = key.lower() if type(key) is str else str(key).lower()
            mapping.setdefault(lowered, key)
        _KEYMAPS[shape] = mapping
    return mapping


def _extend_leaves(out: list[Any], value: Any, depth: int = 0) -> None:
    if type(value) is list:
        if depth > MAX_DEPTH:
            return
        for item in value:
            _extend_leaves(out, item, depth + 1)
    else:
        out.append(value)


def _leaves(value: Any) -> tuple[Any, ...]:
    if type(value) is list:
        out: list[Any] = []
        _extend_leaves(out, value)
        return tuple(out)
    return (value,)


def _objects(nodes: list[Any]) -> Iterator[Mapping[str, Any]]:
    """The objects among `nodes`, lists of objects flattened (bounded, for hostile input)."""
    stack = list(reversed(nodes))
    steps = 0
    while stack:
        node = stack.pop()
        steps += 1
        if steps > MAX_KEYWORD_LEAVES:
            return
        if isinstance(node, Mapping):
            yield node
        elif type(node) is list:
            stack.extend(reversed(node))


def _child(node: Mapping[str, Any], segment: str) -> Any:
    key = keymap(node).get(segment, _MISSING)
    return _MISSING if key is _MISSING else node[key]


def walk(
    data: Mapping[str, Any], dotted: str, segments: tuple[str, ...], top: dict[str, Any] | None = None
) -> tuple[tuple[Any, ...], bool]:
    """(every leaf value at the case-insensitive dotted path, whether the path exists)."""
    top = keymap(data) if top is None else top
    key = top.get(segments[0], _MISSING)
    value = _MISSING if key is _MISSING else data[key]
    if value is _MISSING:
        if len(segments) > 1:  # a flattened export may carry the dotted name as one key
            key = top.get(dotted, _MISSING)
            value = _MISSING if key is _MISSING else data[key]
            if value is not _MISSING:
                return _leaves(value), True
        return (), False
    if len(segments) == 1:
        return _leaves(value), True
    if len(segments) == 2 and isinstance(value, Mapping):
        child = _child(value, segments[1])
        if child is not _MISSING:
            return _leaves(child), True
    nodes = [value]
    for position in range(1, len(segments)):
        segment = segments[position]
        found: list[Any] = []
        for node in _objects(nodes):
            child = _child(node, segment)
            if child is _MISSING and position < len(segments) - 1:
                child = _child(node, ".".join(segments[position:]))
                if child is not _MISSING:
                    return _leaves(child), True
            if child is not _MISSING:
                found.append(child)
        if not found:
            return (), False
        nodes = found
    out: list[Any] = []
    for node in nodes:
        _extend_leaves(out, node)
    return tuple(out), True


class EventView:
    """Case-insensitive, memoised field access to one event's data."""

    __slots__ = ("record", "data", "top", "_values", "_forms", "_ips")

    def __init__(self, record: EventRecord) -> None:
        self.record = record
        data = record.data
        if not isinstance(data, Mapping):
            raise TypeError(f"event data must be a JSON object, not {type(data).__name__}")
        self.data = data
        self.top = keymap(data)  # the event's lowered-key view, once per event (shared per shape)
        self._values: dict[str, tuple[tuple[Any, ...], bool]] | None = None
        self._forms: dict[str, tuple[str, ...]] = {}
        self._ips: dict[str, tuple[tuple[int, int], ...]] | None = None

    def _resolved(self, dotted: str, segments: tuple[str, ...]) -> tuple[tuple[Any, ...], bool]:
        cache = self._values
        if cache is None:
            cache = self._values = {}
        found = cache.get(dotted)
        if found is None:
            found = cache[dotted] = self._nested_scalar(segments) or walk(
                self.data, dotted, segments, self.top
            )
        return found

    def _nested_scalar(self, segments: tuple[str, ...]) -> tuple[tuple[Any, ...], bool] | None:
        """The common case without the general walk: a non-list value through nested objects."""
        key = self.top.get(segments[0], _MISSING)
        if key is _MISSING:
            return None
        value = self.data[key]
        for segment in segments[1:]:
            inner = keymap(value).get(segment, _MISSING) if type(value) is dict else _MISSING
            if inner is _MISSING:
                return None
            value = value[inner]
        return None if type(value) is list else ((value,), True)

    def resolve(self, dotted: str, segments: tuple[str, ...]) -> tuple[Any, ...]:
        """Every leaf value at the path (lists flattened); empty when the path is absent."""
        return self._resolved(dotted, segments)[0]

    def present(self, dotted: str, segments: tuple[str, ...]) -> bool:
        return self._resolved(dotted, segments)[1]

    def forms(self, dotted: str, segments: tuple[str, ...]) -> tuple[str, ...]:
        """The case-folded text of every scalar leaf at the path (see :func:`stringform`)."""
        forms = self._forms.get(dotted)
        if forms is not None:
            return forms
        # the common cases inlined: a scalar (or a list of scalars) reached through nested objects
        key = self.top.get(segments[0], _MISSING)
        if key is _MISSING:
            if len(segments) == 1:
                forms = self._forms[dotted] = ()
                return forms
        else:
            value = self.data[key]
            complete = True
            for segment in segments[1:]:
                inner = keymap(value).get(segment, _MISSING) if type(value) is dict else _MISSING
                if inner is _MISSING:  # through a list, or absent: the general walk handles both
                    complete = False
                    break
                value = value[inner]
            if complete:
                kind = type(value)
                if kind is str:
                    forms = self._forms[dotted] = (value.lower(),)
                    return forms
                if value is None:
                    forms = self._forms[dotted] = ()
                    return forms
                if kind is int or kind is bool or kind is float:
                    text = stringform(value)
                    forms = self._forms[dotted] = (text,) if text is not None else ()
                    return forms
                if kind is list and not any(type(item) is list for item in value):
                    forms = self._forms[dotted] = tuple(f for f in map(stringform, value) if f is not None)
                    return forms
        values = self._resolved(dotted, segments)[0]
        if len(values) == 1:
            form = stringform(values[0])
            forms = () if form is None else (form,)
        else:
            forms = tuple(f for f in map(stringform, values) if f is not None)
        self._forms[dotted] = forms
        return forms

    def ips(self, dotted: str, segments: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
        """(IP version, address as int) for every value at the path that is an IP address."""
        cache = self._ips
        if cache is None:
            cache = self._ips = {}
        found = cache.get(dotted)
        if found is None:
            found = cache[dotted] = tuple(
                ip for ip in map(parse_ip, self._resolved(dotted, segments)[0]) if ip is not None
            )
        return found

    def get(self, path: str) -> Any:
        """First value at a dotted path (case-insensitive), or None; for titles and context."""
        dotted = path.lower()
        for value in self.resolve(dotted, tuple(dotted.split("."))):
            if value is not None:
                return value
        return None

    def all_strings(self) -> Iterator[str]:
        """Every string leaf (keys excluded), bounded, for Sigma keyword searches."""
        stack: list[tuple[Any, int]] = [(self.data, 0)]
        seen = 0
        while stack:
            node, depth = stack.pop()
            seen += 1
            if seen > MAX_KEYWORD_LEAVES or depth > MAX_DEPTH:
                return
            if isinstance(node, str):
                yield node
            elif isinstance(node, Mapping):
                stack.extend((child, depth + 1) for child in node.values())
            elif type(node) is list:
                stack.extend((child, depth + 1) for child in node)


def parse_ip(value: Any) -> tuple[int, int] | None:
    """(4 or 6, address as int) for an IP address text (also `1.2.3.4:port` and `[v6]:port`)."""
    if type(value) is not str:
        return None
    return _parse_ip_text(value)


@functools.lru_cache(maxsize=65_536)  # the same addresses recur across a batch (and a tenant)
def _parse_ip_text(value: str) -> tuple[int, int] | None:
    text = value.strip()
    try:
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except OSError:
        pass
    if text.count(":") == 1 and "." in text:  # Exchange's ClientIP "1.2.3.4:51234"
        text = text.split(":", 1)[0]
        try:
            return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
        except OSError:
            return None
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else text[1:]
    text = text.split("%", 1)[0]
    try:
        return 6, int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
    except (OSError, ValueError):
        return None


def _parse_time_value(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) / 1000.0 if value > 1e11 else float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text) if text.replace(".", "", 1).isdigit() else parse_time(text).timestamp()
        except ValueError:
            return None
    if isinstance(value, datetime):
        return value.timestamp() if value.tzinfo else value.replace(tzinfo=UTC).timestamp()
    return None


def parse_event_bytes(raw: bytes, source: str) -> Any:
    """JSON bytes -> object; non-UTF-8 bytes and bad JSON become an EventError naming the event."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventError(source, f"not UTF-8 at byte {exc.start} ({raw[exc.start : exc.start + 4]!r})")
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise EventError(source, f"not valid JSON: {exc}")


def check_depth(data: Any, source: str, limit: int = MAX_DEPTH) -> None:
    """Refuse absurdly nested events up front, with a message, instead of failing deep inside a rule."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise EventError(source, f"nested deeper than {limit} levels")
        if isinstance(node, Mapping):
            stack.extend((child, depth + 1) for child in node.values() if isinstance(child, Mapping | list))
        elif type(node) is list:
            stack.extend((child, depth + 1) for child in node if isinstance(child, Mapping | list))


def make_records(
    provider: str,
    stream: str,
    data: Mapping[str, Any],
    *,
    event_id: int | str,
    ts: float | None = None,
) -> list[EventRecord]:
    """Records for one raw input object through the one normaliser collection stores with
    (several for a raw Google activity); a record it refuses is an EventError naming the stream."""
    try:
        events = normalise(provider, stream, data)
    except NormaliseError as exc:
        raise EventError(f"{provider}/{stream}", str(exc)) from None
    records = []
    for index, event in enumerate(events):
        when = ts if ts is not None else event.occurred_at.timestamp()
        rid: int | str = event_id if index == 0 else f"{event_id}#{index}"
        records.append(EventRecord(rid, provider, stream, when, event.raw, event.provider_event_id))
    return records
