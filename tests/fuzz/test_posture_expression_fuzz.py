"""Fuzzing the posture expression language: any text, any snapshot data.

Given an expression (grammar-shaped, mutated, or plain random text) and a snapshot of any JSON
shape, compiling it either succeeds or raises ExpressionError, and evaluating what compiled
either returns a value or raises a PostureError — never a bare Python exception that would make
a check fail for a reason nobody can read.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from detectors.posture.errors import ExpressionError, PostureError
from detectors.posture.expression import FUNCTIONS, compile_expression
from tests.fuzz.budget import FUZZ

_MISUSE = (
    "posture bug found by this fuzzing: function arity is not checked at compile time (`len()`, "
    "`len(1, 2)` raise TypeError when evaluated) and functions leak Python errors on odd arguments "
    "(`startswith('a', 1)`, `min('a', 1)`, `split('a', '')`, `days_since('x')`, `x[[1]]` on a dict); "
    "remove the markers once these are ExpressionErrors (or None)"
)
_DEEP = (
    "posture bug found by this fuzzing: `not not ... x` / `- - ... x` nested ~1000 deep overflows the "
    "compiler's recursion (RecursionError) instead of an ExpressionError; remove the marker once refused"
)

FIELDS = [
    "isEnabled",
    "state",
    "conditions",
    "users",
    "includeUsers",
    "grantControls",
    "scopes",
    "p",
    "x",
    "Roles",
]

names = st.sampled_from(FIELDS) | st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,6}", fullmatch=True)
literals = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.text(max_size=8).map(repr),
    st.sampled_from(["true", "false", "null", "None", "True", "1e308", "0", "-0.0", "''"]),
)
paths = st.lists(names, min_size=1, max_size=4).map(".".join)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    functions = st.sampled_from([*FUNCTIONS, "eval", "__import__", "open"])
    binary = st.sampled_from(
        [
            "+",
            "-",
            "*",
            "/",
            "%",
            "and",
            "or",
            "==",
            "!=",
            "<",
            "<=",
            ">",
            ">=",
            "in",
            "not in",
            "is",
            "is not",
            "**",
            "//",
            "&",
            "<<",
            "@",
        ]
    )
    return st.one_of(
        st.tuples(children, binary, children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        children.map(lambda c: f"not {c}"),
        children.map(lambda c: f"-{c}"),
        children.map(lambda c: f"~{c}"),
        st.tuples(functions, st.lists(children, max_size=3)).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.tuples(children, children).map(lambda t: f"{t[0]}[{t[1]}]"),
        st.tuples(children, children).map(lambda t: f"{t[0]}[{t[1]}:]"),
        st.tuples(children, names).map(lambda t: f"{t[0]}.{t[1]}"),
        st.tuples(children, children, children).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        st.lists(children, max_size=4).map(lambda items: f"[{', '.join(items)}]"),
        st.tuples(children, names, children, children).map(
            lambda t: f"[{t[0]} for {t[1]} in {t[2]} if {t[3]}]"
        ),
        st.tuples(children, names, children).map(lambda t: f"any({t[0]} for {t[1]} in {t[2]})"),
        st.tuples(names, children).map(lambda t: f"(lambda {t[0]}: {t[1]})"),
        st.tuples(names, children).map(lambda t: f"({t[0]} := {t[1]})"),
        children.map(lambda c: f"{c}.__class__"),
        children.map(lambda c: f"f'{{{c}}}'"),
    )


grammar = st.recursive(paths | literals, _combine, max_leaves=12)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A grammar expression with a few characters inserted, deleted or swapped."""
    text = draw(grammar)
    for _ in range(draw(st.integers(1, 3))):
        if not text:
            break
        at = draw(st.integers(0, len(text) - 1))
        text = (
            text[:at]
            + draw(st.sampled_from(["", "(", ")", "[", ".", ",", " for ", "'", "\\", "\x00", "é"]))
            + text[at + 1 :]
        )
    return text


expressions = st.one_of(grammar, mutated(), st.text(max_size=60))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=10),
    st.sampled_from(["2026-01-01T00:00:00Z", "enabled"]),
)
snapshots = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), children, max_size=5)
    ),
    max_leaves=20,
)


def _compile_or_reject(text: str):  # type: ignore[no-untyped-def]
    try:
        return compile_expression(text)
    except ExpressionError as refusal:
        assert str(refusal), "a refusal must say what was refused"
        return None


@FUZZ
@given(text=expressions, data=st.dictionaries(st.sampled_from(FIELDS), snapshots, max_size=6))
def test_any_expression_compiles_or_is_refused_and_evaluates_or_is_refused(text: str, data: dict) -> None:
    # given any text and any snapshot, when it is compiled and evaluated,
    note(f"expression: {text!r}")
    compiled = _compile_or_reject(text)
    if compiled is None:
        return
    # then evaluation yields a value or a posture error, never another exception
    with contextlib.suppress(PostureError):
        compiled(data)


@pytest.mark.parametrize(
    "prefix",
    [
        "not ",
        "-",
        "(",
        "[",
        "len(",
        "x.",
    ],
)
def test_deeply_nested_expressions_are_refused_cleanly(prefix: str) -> None:
    # given an expression nested far deeper than any check needs
    depth = 800
    closer = {"(": ")", "[": "]", "len(": ")"}.get(prefix, "")
    text = prefix * depth + "x" + closer * depth if prefix != "x." else "x" + ".y" * depth
    # when it is compiled (and, if accepted, evaluated), then nothing but a posture error escapes
    compiled = _compile_or_reject(text)
    if compiled is not None:
        with contextlib.suppress(PostureError):
            compiled({"x": 1})


@pytest.mark.parametrize(
    "text",
    [
        "len()",
        "len(1, 2)",
        "startswith('a', 1)",
        "min('a', 1)",
        "split('a', '')",
        "days_since('x')",
        "x[[1]]",
        "get(x, 1)",
    ],
)
def test_misused_functions_and_subscripts_are_refused_cleanly(text: str) -> None:
    # given a call with the wrong arguments, when compiled and evaluated on a snapshot,
    # then the result is a value or a posture error
    compiled = _compile_or_reject(text)
    if compiled is not None:
        with contextlib.suppress(PostureError):
            compiled({"x": {"a": 1}})


@pytest.mark.parametrize("text", ["1 in 2", "'a' in 1.5", "x in n", "x not in true"])
def test_membership_in_a_number_is_false_not_a_crash(text: str) -> None:
    # given a membership test whose right side is a number, when evaluated, then it is plainly false
    compiled = _compile_or_reject(text)
    assert compiled is not None
    assert compiled({"x": "a", "n": 3}) is text.startswith("x not in")
