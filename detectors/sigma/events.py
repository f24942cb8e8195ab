"""Events as the engine sees them: a record (id, stream, time, data) and a case-insensitive view.

Exported logs differ in key case (`Operation` vs `operation`), so every field lookup is
case-insensitive. The view lowers the keys of the top-level object once per event and those of
nested objects the first time a rule walks into them (memoised per event, never per rule).
Dotted paths walk nested objects and lists of objects; a path resolves to every leaf value it
reaches (lists are flattened), and a rule value matches when any of them matches.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from core.clock import parse_time
from detectors.sigma.errors import EventError
from detectors.sigma.logsource import profile

MAX_DEPTH = 64
MAX_KEYWORD_LEAVES = 20_000
_MISSING: Any = object()

_GOOGLE_VALUE_SLOTS = (
    "value",
    "intValue",
    "boolValue",
    "multiValue",
    "multiIntValue",
    "messageValue",
    "multiMessageValue",
)


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One stored event handed to the engine; `id` is what findings cite as evidence."""

    id: int | str
    provider: str
    stream: str
    ts: float  # event time, epoch seconds
    data: Mapping[str, Any]
    provider_event_id: str | None = None

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


def _lower_keys(obj: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return {key.lower(): value for key, value in obj.items()}
    except AttributeError:  # a non-string key (not JSON, but be tolerant)
        return {str(key).lower(): value for key, value in obj.items()}


def _extend_leaves(out: list[Any], value: Any, depth: int = 0) -> None:
    if type(value) is list:
        if depth > MAX_DEPTH:
            return
        for item in value:
            _extend_leaves(out, item, depth + 1)
    else:
        out.append(value)


class EventView:
    """Case-insensitive, memoised field access to one event's data."""

    __slots__ = ("record", "top", "_nested", "_values", "_forms", "_present")

    def __init__(self, record: EventRecord) -> None:
        self.record = record
        self.top = _lower_keys(record.data)
        self._nested: dict[int, dict[str, Any]] = {}
        self._values: dict[str, tuple[Any, ...]] = {}
        self._forms: dict[str, tuple[str, ...]] = {}
        self._present: dict[str, bool] = {}

    # -- resolution -------------------------------------------------------------------------
    def _lowered(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        key = id(obj)
        lowered = self._nested.get(key)
        if lowered is None:
            lowered = self._nested[key] = _lower_keys(obj)
        return lowered

    def _walk(self, dotted: str, segments: tuple[str, ...]) -> tuple[tuple[Any, ...], bool]:
        value = self.top.get(segments[0], _MISSING)
        if value is _MISSING:
            if len(segments) > 1:  # a flattened export may carry the dotted name as one key
                value = self.top.get(dotted, _MISSING)
                if value is not _MISSING:
                    return self._leaves(value), True
            return (), False
        if len(segments) == 1:
            return self._leaves(value), True
        nodes = [value]
        for position in range(1, len(segments)):
            segment = segments[position]
            found: list[Any] = []
            for node in self._objects(nodes):
                lowered = self._lowered(node)
                child = lowered.get(segment, _MISSING)
                if child is _MISSING and position < len(segments) - 1:
                    child = lowered.get(".".join(segments[position:]), _MISSING)
                    if child is not _MISSING:
                        out: list[Any] = []
                        _extend_leaves(out, child)
                        return tuple(out), True
                if child is not _MISSING:
                    found.append(child)
            if not found:
                return (), False
            nodes = found
        out = []
        for node in nodes:
            _extend_leaves(out, node)
        return tuple(out), True

    @staticmethod
    def _leaves(value: Any) -> tuple[Any, ...]:
        if type(value) is list:
            out: list[Any] = []
            _extend_leaves(out, value)
            return tuple(out)
        return (value,)

    @staticmethod
    def _objects(nodes: list[Any]) -> Iterator[Mapping[str, Any]]:
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

    def resolve(self, dotted: str, segments: tuple[str, ...]) -> tuple[Any, ...]:
        """Every leaf value at the path (lists flattened); empty when the path is absent."""
        values = self._values.get(dotted)
        if values is None:
            values, present = self._walk(dotted, segments)
            self._values[dotted] = values
            self._present[dotted] = present
        return values

    def present(self, dotted: str, segments: tuple[str, ...]) -> bool:
        if dotted not in self._present:
            self.resolve(dotted, segments)
        return self._present[dotted]

    def forms(self, dotted: str, segments: tuple[str, ...]) -> tuple[str, ...]:
        """The case-folded text of every scalar leaf at the path (see :func:`stringform`)."""
        forms = self._forms.get(dotted)
        if forms is None:
            values = self._values.get(dotted)
            if values is None:
                values = self.resolve(dotted, segments)
            if len(values) == 1:
                form = stringform(values[0])
                forms = () if form is None else (form,)
            else:
                forms = tuple(f for f in map(stringform, values) if f is not None)
            self._forms[dotted] = forms
        return forms

    def get(self, path: str) -> Any:
        """First value at a dotted path (case-insensitive), or None; for titles and context."""
        dotted = path.lower()
        values = self.resolve(dotted, tuple(dotted.split(".")))
        for value in values:
            if value is not None:
                return value
        return None

    def all_strings(self) -> Iterator[str]:
        """Every string leaf (keys excluded), bounded, for Sigma keyword searches."""
        stack: list[tuple[Any, int]] = [(self.record.data, 0)]
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


# -- shapes ---------------------------------------------------------------------------------


def _google_parameter_value(param: Mapping[str, Any]) -> Any:
    for slot in _GOOGLE_VALUE_SLOTS:
        if slot in param:
            return param[slot]
    return None


def google_parameters(parameters: Any) -> Any:
    """Reports API `parameters` list of {name, value|intValue|...} -> {name: value}; dicts unchanged."""
    if type(parameters) is not list:
        return parameters
    out: dict[str, Any] = {}
    for param in parameters:
        if isinstance(param, Mapping) and "name" in param:
            out[str(param["name"])] = _google_parameter_value(param)
    return out


def explode_google_activity(activity: Mapping[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """One Reports API activity -> one record per entry of `events[]` (provider id, record)."""
    ident = activity.get("id") if isinstance(activity.get("id"), Mapping) else {}
    events = activity.get("events")
    if type(events) is not list:
        return [(None, dict(activity))]
    shared = {key: value for key, value in activity.items() if key != "events"}
    records = []
    for index, entry in enumerate(events):
        if not isinstance(entry, Mapping):
            continue
        record = {**shared, **entry}
        record["parameters"] = google_parameters(entry.get("parameters", {}))
        provider_id = f"{ident.get('time')}/{ident.get('uniqueQualifier')}/{index}" if ident else None
        records.append((provider_id, record))
    return records


def unwrap_azure_monitor(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """An Azure Monitor diagnostic export row (`category`, `properties` = the Graph object) -> the
    Graph object, keeping the wrapper's own fields where the Graph object has none of that name."""
    properties = data.get("properties")
    if isinstance(properties, Mapping) and ("category" in data or "operationName" in data):
        merged = dict(properties)
        for key, value in data.items():
            if key != "properties" and key not in merged:
                merged[key] = value
        return merged
    return data


def normalise(
    provider: str, stream: str, data: Mapping[str, Any]
) -> list[tuple[str | None, Mapping[str, Any]]]:
    """Accept every input shape the reference lists; returns (provider id or None, record) pairs."""
    if provider == "google":
        if type(data.get("events")) is list and "name" not in data:
            return explode_google_activity(data)
        if type(data.get("parameters")) is list:
            data = {**data, "parameters": google_parameters(data["parameters"])}
        return [(None, data)]
    if provider == "m365":
        return [(None, unwrap_azure_monitor(data))]
    return [(None, data)]


def event_time(provider: str, stream: str, data: Mapping[str, Any]) -> float:
    """Event time in epoch seconds from the stream's time field(s); EventError when none is readable."""
    view_top = _lower_keys(data)
    for path in (*profile(provider, stream).time_paths, "time", "timestamp"):
        node: Any = view_top
        for segment in path.lower().split("."):
            node = _lower_keys(node).get(segment) if isinstance(node, Mapping) else None
            if node is None:
                break
        if node is None:
            continue
        parsed = _parse_time_value(node)
        if parsed is not None:
            return parsed
    raise EventError(
        f"{provider}/{stream}",
        f"no readable event time (looked at {', '.join(profile(provider, stream).time_paths)})",
    )


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
    """Records for one input object (several for a raw Google activity), time read from the data."""
    records = []
    for index, (provider_id, record) in enumerate(normalise(provider, stream, data)):
        when = ts if ts is not None else event_time(provider, stream, record)
        rid: int | str = event_id if index == 0 else f"{event_id}#{index}"
        records.append(EventRecord(rid, provider, stream, when, record, provider_id))
    return records
