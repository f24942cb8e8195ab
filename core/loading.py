"""The one loader for YAML, JSON and TOML input (rules, posture checks, playbooks, the approval
policy, connections and on-call files, rule test events, API bodies that carry YAML).

Every document is bounded before anything walks it: its size in bytes, its nesting depth, the
number of aliases, and the number of nodes it expands to (an alias bomb of a few hundred bytes
expands to billions of nodes; the budget is counted on the node graph, in time linear in the
text, so such a document is refused at once). Mapping keys are unique, YAML timestamps stay
text (as in the JSON they come from), and errors say ``source:line: what is wrong``.

:class:`Loaded` keeps the line of every mapping and key, so validators can name the line of a
bad value (:meth:`Loaded.line_of` follows a path of keys and indexes).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
import yaml
from pydantic import BaseModel, ValidationError

from core.errors import ConfigurationError

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Limits:
    """How big a document may be. The defaults fit every shipped file many times over."""

    max_bytes: int = 1 << 20
    max_depth: int = 64
    max_aliases: int = 100
    max_nodes: int = 200_000


DEFAULT_LIMITS = Limits()


class LoadError(ConfigurationError, ValueError):
    """A document that cannot be read: not valid YAML/JSON/TOML, or over a limit."""

    def __init__(self, source: str, message: str, line: int | None = None) -> None:
        self.source = source
        self.line = line
        self.reason = message
        super().__init__(f"{source}:{line}: {message}" if line else f"{source}: {message}")


class LimitExceeded(LoadError):
    """A document over a size, depth, alias or node limit (refused before it is walked)."""


@dataclass
class Loaded:
    """The documents of one input, and where each mapping and key was written."""

    source: str
    documents: list[Any]
    key_lines: dict[int, dict[Any, int]] = field(default_factory=dict)
    map_lines: dict[int, int] = field(default_factory=dict)
    seq_lines: dict[int, list[int]] = field(default_factory=dict)

    @property
    def data(self) -> Any:
        """The one document (None for an empty input)."""
        return self.documents[0] if self.documents else None

    def key(self, mapping: Any, key: Any, default: int | None = None) -> int | None:
        """The line of `key` in `mapping` (else the mapping's own line, else `default`)."""
        if isinstance(mapping, dict):
            found = self.key_lines.get(id(mapping), {}).get(key)
            if found is not None:
                return found
            return self.map_lines.get(id(mapping), default)
        return default

    def of(self, value: Any, default: int | None = None) -> int | None:
        """The line where a mapping starts."""
        return self.map_lines.get(id(value), default) if isinstance(value, dict) else default

    def line_of(self, path: Sequence[Any], document: int = 0) -> int | None:
        """The line of the value at `path` (keys and list indexes) in one document: the deepest
        part of the path that exists (a missing key names its mapping's line)."""
        if document >= len(self.documents):
            return None
        node = self.documents[document]
        line = self.of(node)
        for part in path:
            if isinstance(node, dict):
                if part not in node:
                    return line
                line = self.key(node, part, line)
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                lines = self.seq_lines.get(id(node))
                if lines and part < len(lines):
                    line = lines[part]
                node = node[part]
            else:
                return line
        return line


class _Loader(_BaseLoader):
    """Safe YAML: unique keys with their lines, timestamps as text."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.key_lines: dict[int, dict[Any, int]] = {}
        self.map_lines: dict[int, int] = {}
        self.seq_lines: dict[int, list[int]] = {}

    def construct_tracked_map(self, node: yaml.MappingNode) -> Iterable[dict[Any, Any]]:
        data: dict[Any, Any] = {}
        yield data
        self.flatten_mapping(node)
        lines: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a plain value", key_node.start_mark
                ) from None
            if key in lines:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {lines[key]})", key_node.start_mark
                )
            lines[key] = key_node.start_mark.line + 1
            data[key] = self.construct_object(value_node)
        self.key_lines[id(data)] = lines
        self.map_lines[id(data)] = node.start_mark.line + 1

    def construct_tracked_seq(self, node: yaml.SequenceNode) -> Iterable[list[Any]]:
        data: list[Any] = []
        yield data
        data.extend(self.construct_object(child) for child in node.value)
        self.seq_lines[id(data)] = [child.start_mark.line + 1 for child in node.value]


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_tracked_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _Loader.construct_tracked_seq)


def _check_size(raw: bytes | str, source: str, limits: Limits) -> str:
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if len(data) > limits.max_bytes:
        raise LimitExceeded(source, f"is larger than {limits.max_bytes} bytes ({len(data)})")
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise LoadError(
            source, f"not UTF-8 (byte {raw[exc.start]:#04x} at offset {exc.start}); save it as UTF-8", line
        ) from None


def _budget_nodes(root: yaml.Node, source: str, limits: Limits) -> None:
    """Count aliases, expanded nodes and expanded depth on the node graph (each node once)."""
    seen: set[int] = set()
    aliases = 0
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    # iterative post-order walk; a node met again is an alias (it shares the node)
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    on_path: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            children = _children(node)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if size[key] > limits.max_nodes:
                raise LimitExceeded(
                    source,
                    f"expands to more than {limits.max_nodes} values (aliases multiply it); refused",
                    node.start_mark.line + 1,
                )
            if depth[key] > limits.max_depth:
                raise LimitExceeded(
                    source, f"nested more than {limits.max_depth} levels deep", node.start_mark.line + 1
                )
            continue
        if key in seen:
            if key in on_path:
                raise LimitExceeded(
                    source, "an alias refers to its own anchor (recursive)", node.start_mark.line + 1
                )
            aliases += 1
            if aliases > limits.max_aliases:
                raise LimitExceeded(source, _too_many_aliases(limits), node.start_mark.line + 1)
            continue
        seen.add(key)
        on_path.add(key)
        stack.append((node, True))
        for child in reversed(_children(node)):
            if id(child) in on_path:
                raise LimitExceeded(
                    source, "an alias refers to its own anchor (recursive)", child.start_mark.line + 1
                )
            if id(child) in seen:
                aliases += 1
                if aliases > limits.max_aliases:
                    raise LimitExceeded(source, _too_many_aliases(limits), child.start_mark.line + 1)
                continue
            stack.append((child, False))


def _too_many_aliases(limits: Limits) -> str:
    if limits.max_aliases == 0:
        return "anchors and aliases (&name, *name) are not allowed here"
    return f"uses more than {limits.max_aliases} aliases; refused"


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _yaml_error(exc: yaml.YAMLError, source: str) -> LoadError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    return LoadError(source, f"invalid YAML: {problem}" + (f" ({context})" if context else ""), line)


def load_yaml(raw: bytes | str, *, source: str, limits: Limits = DEFAULT_LIMITS) -> Loaded:
    """Every YAML document in `raw`, bounded (see the module docstring)."""
    text = _check_size(raw, source, limits)
    loader = _Loader(text)
    documents: list[Any] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            _budget_nodes(node, source, limits)
            documents.append(loader.construct_document(node))
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from None
    except RecursionError:
        raise LimitExceeded(source, "nested too deeply") from None
    finally:
        loader.dispose()
    return Loaded(source, documents, loader.key_lines, loader.map_lines, loader.seq_lines)


def _budget_data(data: Any, source: str, limits: Limits) -> None:
    """Depth and node budget of plain data (JSON and TOML have no aliases)."""
    count = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, level = stack.pop()
        count += 1
        if count > limits.max_nodes:
            raise LimitExceeded(source, f"has more than {limits.max_nodes} values; refused")
        if level > limits.max_depth:
            raise LimitExceeded(source, f"nested more than {limits.max_depth} levels deep")
        if isinstance(node, dict):
            stack.extend((v, level + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, level + 1) for v in node)


def check_data(data: Any, *, source: str, limits: Limits = DEFAULT_LIMITS) -> None:
    """Refuse already-parsed data (an API body's field) that is nested too deeply or too large."""
    _budget_data(data, source, limits)


def load_json(raw: bytes | str, *, source: str, limits: Limits = DEFAULT_LIMITS) -> Loaded:
    text = _check_size(raw, source, limits)
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise LoadError(source, f"invalid JSON: {exc.msg}", exc.lineno) from None
    except RecursionError:
        raise LimitExceeded(source, "nested too deeply") from None
    _budget_data(data, source, limits)
    return Loaded(source, [data])


def load_toml(raw: bytes | str, *, source: str, limits: Limits = DEFAULT_LIMITS) -> Loaded:
    text = _check_size(raw, source, limits)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message, line = str(exc), getattr(exc, "lineno", None)
        if " (at line " in message:
            message, _, where = message.rpartition(" (at line ")
            if line is None and where.split(",", 1)[0].isdigit():
                line = int(where.split(",", 1)[0])
        raise LoadError(source, f"invalid TOML: {getattr(exc, 'msg', message)}", line) from None
    except RecursionError:  # tomllib recurses per nesting level (found by tests/fuzz/test_loading_fuzz.py)
        raise LimitExceeded(source, "nested too deeply") from None
    _budget_data(data, source, limits)
    return Loaded(source, [data])


def load_text(raw: bytes | str, *, source: str, kind: str, limits: Limits = DEFAULT_LIMITS) -> Loaded:
    """`kind` is yaml, json or toml."""
    loaders = {"yaml": load_yaml, "yml": load_yaml, "json": load_json, "toml": load_toml}
    if kind not in loaders:
        raise LoadError(source, f"unknown format {kind!r}; use YAML, JSON or TOML")
    return loaders[kind](raw, source=source, limits=limits)


def load_path(path: Path, *, limits: Limits = DEFAULT_LIMITS, kind: str | None = None) -> Loaded:
    """A file, by its suffix (.yaml/.yml, .json, .toml; anything else is read as YAML)."""
    source = str(path)
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise LimitExceeded(source, f"is larger than {limits.max_bytes} bytes ({size})")
        raw = path.read_bytes()
    except OSError as exc:
        raise LoadError(source, f"cannot read: {exc.strerror or exc}") from None
    suffix = path.suffix.lower().lstrip(".")
    return load_text(
        raw, source=source, kind=kind or (suffix if suffix in ("json", "toml") else "yaml"), limits=limits
    )


# -- validation into pydantic models, errors naming file and line --------------------------------


def _where(loc: Sequence[Any]) -> str:
    """`steps.0.phase`: keys and list indexes, dotted (as pydantic and the on-call files write them)."""
    return ".".join(str(part) for part in loc)


def _message(error: Mapping[str, Any]) -> str:
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if error.get("type") == "extra_forbidden":
        return "unknown key"
    return message


def describe(
    exc: ValidationError,
    loaded: Loaded,
    document: int = 0,
    *,
    limit: int = 5,
    template: str = "{at}: {field}: {message}",
) -> str:
    """Pydantic's errors as ``source:line: field: problem`` (or `template`), `; `-separated."""
    parts = []
    for error in exc.errors()[:limit]:
        loc = [p for p in error["loc"] if isinstance(p, int | str)]
        line = loaded.line_of(loc, document)
        where = _where(loc)
        at = f"{loaded.source}:{line}" if line else loaded.source
        message = _message(error)
        parts.append(template.format(at=at, field=where, message=message) if where else f"{at}: {message}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def validate(
    model: type[M],
    loaded: Loaded,
    *,
    error: Callable[[str], Exception] = ConfigurationError,
    document: int = 0,
    context: dict[str, Any] | None = None,
    template: str = "{at}: {field}: {message}",
) -> M:
    """One document of `loaded` as `model`; a bad value raises `error` naming file, line and field."""
    data = loaded.documents[document] if document < len(loaded.documents) else None
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise error(describe(exc, loaded, document, template=template)) from None
