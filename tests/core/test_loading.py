"""The one bounded loader: every YAML/JSON/TOML input is refused before it is walked when it is
too big, too deep, has too many aliases or expands to too many values; errors name source and line."""

from __future__ import annotations

import pytest

from core.loading import LimitExceeded, Limits, LoadError, load_json, load_path, load_toml, load_yaml


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    lines = ["l0: &l0 [" + ", ".join(['"lol"'] * width) + "]"]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_load_naming_file_and_line() -> None:
    bomb = alias_bomb()
    assert len(bomb) < 800
    with pytest.raises(LimitExceeded) as raised:
        load_yaml(bomb, source="rules/bomb.yml")
    assert str(raised.value).startswith("rules/bomb.yml:")
    assert raised.value.line is not None and "expands to more than" in raised.value.reason


def test_too_many_aliases_and_recursive_aliases_are_refused() -> None:
    many = "a: &a 1\nb: [" + ", ".join(["*a"] * 150) + "]\n"
    with pytest.raises(LimitExceeded, match="more than 100 aliases"):
        load_yaml(many, source="f.yml")
    with pytest.raises(LimitExceeded, match="recursive"):
        load_yaml("a: &a [1, *a]\n", source="f.yml")
    with pytest.raises(LimitExceeded, match="anchors and aliases"):
        load_yaml("a: &x [1]\nb: *x\n", source="f.yml", limits=Limits(max_aliases=0))
    # a few aliases are fine (they are a normal YAML feature)
    assert load_yaml("a: &x [1]\nb: *x\n", source="f.yml").data == {"a": [1], "b": [1]}


def test_size_and_depth_are_bounded_for_every_format(tmp_path) -> None:
    with pytest.raises(LimitExceeded, match="larger than 100 bytes"):
        load_yaml("a: '" + "x" * 200 + "'", source="f.yml", limits=Limits(max_bytes=100))
    deep = "[" * 100 + "]" * 100
    for loader in (load_yaml, load_json):
        with pytest.raises(LimitExceeded, match="nested more than 64"):
            loader(deep, source="f")
    with pytest.raises(LimitExceeded, match="more than 10 values"):
        load_json("[" + ",".join(["1"] * 20) + "]", source="f.json", limits=Limits(max_nodes=10))
    big = tmp_path / "big.toml"
    big.write_text("a = '" + "x" * 200 + "'\n")
    with pytest.raises(LimitExceeded, match=f"{big}: is larger than 100 bytes"):
        load_path(big, limits=Limits(max_bytes=100))


def test_syntax_errors_name_the_line() -> None:
    cases = [
        (load_yaml, "a: 1\nb: [1\nc: 2\n", 3, "invalid YAML"),
        (load_yaml, "a: 1\na: 2\n", 2, "duplicate key 'a'"),
        (load_json, '{"a": 1,\n "b": }', 2, "invalid JSON"),
        (load_toml, "a = 1\nb = = 2\n", 2, "invalid TOML"),
    ]
    for loader, text, line, message in cases:
        with pytest.raises(LoadError) as raised:
            loader(text, source="src")
        assert raised.value.line == line, (text, raised.value)
        assert message in raised.value.reason
        assert str(raised.value).startswith(f"src:{line}: ")


def test_not_utf8_names_the_line() -> None:
    with pytest.raises(LoadError, match="not UTF-8") as raised:
        load_yaml(b"a: 1\nb: caf\xe9\n", source="f.yml")
    assert raised.value.line == 2


def test_lines_of_keys_and_list_items_and_timestamps_stay_text() -> None:
    loaded = load_yaml("a: 1\nb:\n  - x: 2\n  - y: [1, 2]\nwhen: 2026-01-01T00:00:00Z\n", source="f.yml")
    assert loaded.data["when"] == "2026-01-01T00:00:00Z"
    assert loaded.line_of(["b", 1, "y"]) == 4
    assert loaded.line_of(["b", 0]) == 3
    assert loaded.line_of(["when"]) == 5
    assert loaded.line_of(["missing"]) == 1
    assert load_yaml("a: 1\n---\nb: 2\n", source="f").documents == [{"a": 1}, {"b": 2}]
