"""The posture expression language: what it evaluates, and what it refuses (never eval)."""

from __future__ import annotations

import pytest

from detectors.posture.errors import ExpressionError
from detectors.posture.expression import compile_expression, referenced_paths


def run(text: str, data: dict) -> object:
    return compile_expression(text)(data)


def test_dotted_paths_read_keys_case_insensitively_and_missing_is_none() -> None:
    data = {"Conditions": {"Users": {"includeUsers": ["All"]}}}
    assert run("'all' in conditions.users.includeusers", data) is True
    assert run("conditions.nothing.here == null", data) is True
    assert run("conditions.nothing.here >= 3", data) is False  # a missing value never passes a bound


def test_comprehensions_and_functions_count_matching_objects() -> None:
    scope = {
        "role_assignment": [
            {"roleName": "Global Administrator"},
            {"roleName": "global administrator"},
            {"roleName": "Reader"},
        ]
    }
    assert run("len([r for r in role_assignment if lower(r.roleName) == 'global administrator'])", scope) == 2
    assert (
        run("2 <= len([r for r in role_assignment if r.roleName == 'Global Administrator']) <= 8", scope)
        is True
    )
    assert run("any(startswith(r.roleName, 'read') for r in role_assignment)", scope) is True


def test_string_and_list_joining() -> None:
    assert run("domain('a@Evil.example') != domain(owner)", {"owner": "b@corp.test"}) is True
    assert run("len(list(a) + list(b))", {"a": [1], "b": [2, 3]}) == 3


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "().__class__.__bases__",
        "open('/etc/passwd')",
        "x.lower()",
        "lambda: 1",
        "[x for x in a for y in b]",
        "a[1:2]",
        "2 ** 100000",
    ],
)
def test_anything_outside_the_language_is_refused_with_the_construct_named(text: str) -> None:
    with pytest.raises(ExpressionError) as excinfo:
        compile_expression(text)
    assert text[:10] in str(excinfo.value) or "not" in str(excinfo.value)


def test_referenced_paths_skip_comprehension_variables() -> None:
    paths = referenced_paths("isEnabled == true and len([p for p in policies if p.state]) > 0 and a.b.c")
    assert sorted(paths) == ["a.b.c", "isEnabled", "policies"]
