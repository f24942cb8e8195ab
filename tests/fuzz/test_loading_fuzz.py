"""Fuzzing the bounded YAML/JSON/TOML loader (core.loading) that every outside document goes through
(rules, checks, playbooks, connections, on-call files, API bodies; issue 21).

- any bytes: a document loads or is refused with a LoadError naming the source — never another
  exception (a bare yaml/orjson/tomllib/Unicode/Recursion error would be a 500 or a traceback);
- any nested data under small limits: JSON loads exactly when it is within the depth and value
  limits (counted as the loader documents them) and otherwise raises LimitExceeded; YAML of the
  same data never loads anything bigger or deeper than the limits;
- alias bombs of any width and depth: refused (LimitExceeded) whenever they would expand past the
  value budget or use more aliases than allowed, before anything is expanded; what loads is small.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import yaml
from hypothesis import given, note
from hypothesis import strategies as st

from core.loading import LimitExceeded, Limits, LoadError, load_json, load_text, load_toml, load_yaml
from tests.fuzz.budget import FUZZ

SMALL = Limits(max_bytes=4096, max_depth=6, max_aliases=8, max_nodes=60)

scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8)
data = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=40,
)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 1


def _values(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + sum(_values(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_values(v) for v in value)
    return 1


def _yaml_nodes(value: Any) -> int:
    """What the YAML budget counts: keys are nodes too."""
    if isinstance(value, dict):
        return 1 + sum(1 + _yaml_nodes(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_yaml_nodes(v) for v in value)
    return 1


@FUZZ
@given(raw=st.binary(max_size=600) | st.text(max_size=400).map(str.encode))
@pytest.mark.parametrize("kind", ["yaml", "json", "toml"])
def test_any_bytes_load_or_are_refused_with_a_load_error(kind: str, raw: bytes) -> None:
    try:
        loaded = load_text(raw, source="fuzz.doc", kind=kind, limits=SMALL)
    except LoadError as exc:
        assert str(exc).startswith("fuzz.doc")
        return
    for document in loaded.documents:
        assert _depth(document) <= SMALL.max_depth


@FUZZ
@given(value=data)
def test_json_loads_exactly_when_within_the_limits(value: Any) -> None:
    raw = orjson.dumps(value)
    within = (
        _depth(value) <= SMALL.max_depth and _values(value) <= SMALL.max_nodes and len(raw) <= SMALL.max_bytes
    )
    note(f"depth {_depth(value)}, values {_values(value)}, {len(raw)} bytes")
    if within:
        assert load_json(raw, source="fuzz.json", limits=SMALL).documents == [value]
    else:
        with pytest.raises(LimitExceeded):
            load_json(raw, source="fuzz.json", limits=SMALL)


@FUZZ
@given(value=data)
def test_yaml_never_loads_past_the_limits(value: Any) -> None:
    raw = yaml.safe_dump(
        value, allow_unicode=False
    )  # escaped: PyYAML emits a bare NEL (\x85) it reads back as a space
    try:
        loaded = load_yaml(raw, source="fuzz.yaml", limits=SMALL)
    except LimitExceeded:
        assert (
            _depth(value) > SMALL.max_depth
            or _yaml_nodes(value) > SMALL.max_nodes
            or len(raw.encode()) > SMALL.max_bytes
        )
        return
    assert loaded.documents == [value]
    assert _depth(value) <= SMALL.max_depth and _yaml_nodes(value) <= SMALL.max_nodes


def _alias_bomb(width: int, levels: int) -> str:
    lines = ['a0: &a0 ["lol"]']
    for level in range(1, levels + 1):
        refs = ", ".join([f"*a{level - 1}"] * width)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


@FUZZ
@given(width=st.integers(1, 12), levels=st.integers(1, 12))
def test_alias_bombs_are_refused_before_they_expand(width: int, levels: int) -> None:
    raw = _alias_bomb(width, levels)
    aliases = width * levels
    # Expanded values, counted as the loader does: a0 is a list of one scalar (2 nodes), each level
    # a list of `width` copies of the one below; the document is a mapping of every level by key.
    expanded, total = 2, 1 + 1 + 2
    for _ in range(levels):
        expanded = 1 + width * expanded
        total += 1 + expanded
    depth = levels + 3  # the mapping, each level's list, a0's list, its scalar
    note(f"{aliases} aliases, expands to {total} values, {depth} deep")
    if aliases > SMALL.max_aliases or total > SMALL.max_nodes or depth > SMALL.max_depth:
        with pytest.raises(LimitExceeded):
            load_yaml(raw, source="bomb.yaml", limits=SMALL)
        return
    loaded = load_yaml(raw, source="bomb.yaml", limits=SMALL)
    assert _yaml_nodes(loaded.documents[0]) == total <= SMALL.max_nodes


@FUZZ
@given(depth=st.integers(1, 3000), kind=st.sampled_from(["json", "yaml", "toml"]))
def test_deep_nesting_is_refused_without_recursion_errors(depth: int, kind: str) -> None:
    if kind == "toml":
        raw = "x = " + "[" * depth + "]" * depth + "\n"
    else:
        raw = "[" * depth + "]" * depth
    limits = Limits(max_depth=64, max_bytes=1 << 20)
    try:
        loaded = load_text(raw, source="deep", kind=kind, limits=limits)
    except LimitExceeded:
        assert depth + (kind == "toml") > limits.max_depth
        return
    except LoadError as exc:  # e.g. TOML's own nesting limit, still a LoadError naming the file
        assert str(exc).startswith("deep")
        return
    assert depth + (kind == "toml") <= limits.max_depth
    assert _depth(loaded.documents[0]) == depth + (kind == "toml")


def test_load_toml_is_bounded_like_the_others() -> None:
    with pytest.raises(LimitExceeded, match="nested more than 6 levels"):
        load_toml("x = [[[[[[[1]]]]]]]\n", source="t.toml", limits=SMALL)
