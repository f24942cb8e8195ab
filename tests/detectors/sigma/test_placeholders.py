"""The `expand` modifier: %placeholders% take their values from placeholders.yml beside the rules."""

from __future__ import annotations

import textwrap
from pathlib import Path

from detectors.sigma.loader import load_pack
from tests.detectors.sigma.conftest import matches, rule_yaml, view

EXPANDING = rule_yaml(
    "selection:\n  userPrincipalName|expand: '%break_glass%'\n  status.errorCode: 0\ncondition: selection"
)


def _pack(tmp_path: Path, rule: str, placeholders: str | None) -> object:
    (tmp_path / "rule.yml").write_text(rule)
    if placeholders is not None:
        (tmp_path / "placeholders.yml").write_text(textwrap.dedent(placeholders))
    return load_pack([tmp_path])


def test_an_expand_value_matches_any_configured_value_and_nothing_else(tmp_path: Path) -> None:
    pack = _pack(tmp_path, EXPANDING, "break_glass: [bg1@northwind.example, 'bg2@northwind.example']\n")
    assert not pack.problems  # type: ignore[attr-defined]
    assert matches(pack, {"userPrincipalName": "BG2@northwind.example", "status": {"errorCode": 0}})
    assert matches(pack, {"userPrincipalName": "bg1@northwind.example", "status": {"errorCode": 0}})
    assert not matches(pack, {"userPrincipalName": "alice@northwind.example", "status": {"errorCode": 0}})
    assert not matches(pack, {"userPrincipalName": "%break_glass%", "status": {"errorCode": 0}})


def test_a_placeholder_inside_a_value_and_with_wildcards_expands_in_place(tmp_path: Path) -> None:
    rule = rule_yaml("selection:\n  userPrincipalName|expand: '*@%partner_domains%'\ncondition: selection")
    pack = _pack(tmp_path, rule, "partner_domains: fabrikam.example\n")
    assert matches(pack, {"userPrincipalName": "x@fabrikam.example"})
    assert not matches(pack, {"userPrincipalName": "x@northwind.example"})


def test_a_placeholder_without_values_refuses_the_rule_naming_it_and_the_file(tmp_path: Path) -> None:
    pack = _pack(tmp_path, EXPANDING, "office_ips: [198.51.100.0/24]\n")
    [problem] = pack.problems  # type: ignore[attr-defined]
    assert problem.path.endswith("rule.yml") and problem.line == 8 and problem.rule == "r"
    assert "%break_glass%" in problem.reason and "placeholders.yml" in problem.reason
    assert not pack.rules  # type: ignore[attr-defined]


def test_no_placeholders_file_refuses_expand_rules_only(tmp_path: Path) -> None:
    other = rule_yaml("selection:\n  appDisplayName: Office\ncondition: selection", name="plain")
    (tmp_path / "plain.yml").write_text(other)
    pack = _pack(tmp_path, EXPANDING, None)
    assert [r.rule_id for r in pack.rules] == ["plain"]  # type: ignore[attr-defined]
    assert [p.rule for p in pack.problems] == ["r"]  # type: ignore[attr-defined]


def test_a_bad_placeholders_file_is_reported_with_its_line(tmp_path: Path) -> None:
    pack = _pack(tmp_path, EXPANDING, "break_glass: [bg1@northwind.example]\nbad name: [x]\nempty: []\n")
    reasons = sorted((p.line, p.reason) for p in pack.problems)  # type: ignore[attr-defined]
    assert [line for line, _ in reasons] == [2, 3]
    assert "not a placeholder name" in reasons[0][1] and "values are needed" in reasons[1][1]
    [rule] = pack.rules  # type: ignore[attr-defined]
    assert rule.matches(view({"userPrincipalName": "bg1@northwind.example", "status": {"errorCode": 0}}))


def test_placeholder_values_passed_by_the_caller_win(tmp_path: Path) -> None:
    (tmp_path / "rule.yml").write_text(EXPANDING)
    pack = load_pack([tmp_path], placeholders={"break_glass": ("ops@northwind.example",)})
    assert matches(pack, {"userPrincipalName": "ops@northwind.example", "status": {"errorCode": 0}})
