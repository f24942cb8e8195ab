"""Bad rules are refused with file, line and reason, and never stop the rest of the pack from loading."""

from __future__ import annotations

from pathlib import Path

from detectors.sigma.errors import RuleProblem
from detectors.sigma.loader import load_pack
from tests.detectors.sigma.conftest import matches, rule_yaml

GOOD = rule_yaml("selection:\n  clientAppUsed: IMAP4\ncondition: selection", name="good_rule")


def _only_problem(pack) -> RuleProblem:
    assert len(pack.problems) == 1, pack.problems
    return pack.problems[0]


def test_invalid_yaml_names_file_and_line_and_the_good_rule_still_loads(make_pack) -> None:
    pack = make_pack(GOOD, "title: broken\ndetection:\n  selection: {a: 1\n  condition: selection\n")
    problem = _only_problem(pack)
    assert problem.path.endswith("rule1.yml")
    assert problem.line in (3, 4)
    assert "invalid YAML" in problem.reason
    assert [r.rule_id for r in pack.rules] == ["good_rule"]


def test_unknown_modifier_points_at_its_line(make_pack) -> None:
    text = rule_yaml(
        "selection:\n  clientAppUsed: IMAP4\n  userAgent|contians: python\ncondition: selection", name="typo"
    )
    problem = _only_problem(make_pack(text))
    assert problem.rule == "typo"
    assert problem.line == text.splitlines().index("    userAgent|contians: python") + 1
    assert "unknown modifier 'contians'" in problem.reason


def test_unknown_logsource_is_refused_with_the_choices(make_pack) -> None:
    problem = _only_problem(
        make_pack(rule_yaml("selection:\n  a: 1\ncondition: selection", product="salesforce"))
    )
    assert "unknown logsource product 'salesforce'" in problem.reason
    assert problem.line == 3
    problem = _only_problem(
        make_pack(rule_yaml("selection:\n  a: 1\ncondition: selection", service="mailbox"))
    )
    assert "unknown logsource service 'mailbox'" in problem.reason and "signins" in problem.reason


def test_sigmahq_logsource_names_are_accepted_as_aliases(make_pack) -> None:
    pack = make_pack(
        rule_yaml("selection:\n  a: 1\ncondition: selection", product="azure", service="signinlogs")
    )
    assert not pack.problems
    assert (pack.rules[0].provider, pack.rules[0].streams) == ("m365", ("signins",))
    pack = make_pack(
        rule_yaml(
            "selection:\n  a: 1\ncondition: selection",
            product="google_workspace",
            service="google_workspace.admin",
        )
    )
    assert (pack.rules[0].provider, pack.rules[0].streams) == ("google", ("admin",))


def test_regex_re2_cannot_run_is_refused_naming_rule_and_line(make_pack) -> None:
    text = rule_yaml("selection:\n  userAgent|re: '(a)\\1'\ncondition: selection", name="backref")
    problem = _only_problem(make_pack(text))
    assert problem.rule == "backref" and problem.line == 8
    assert "not supported by RE2" in problem.reason
    lookahead = _only_problem(
        make_pack(rule_yaml("selection:\n  userAgent|re: 'foo(?=bar)'\ncondition: selection"))
    )
    assert "RE2" in lookahead.reason


def test_catastrophic_backtracking_pattern_runs_in_linear_time_on_re2(make_pack) -> None:
    # (a+)+$ takes exponential time in a backtracking engine on "aaaa…!"; RE2 answers at once
    pack = make_pack(rule_yaml("selection:\n  body|re: '^(a+)+$'\ncondition: selection"))
    assert not matches(pack, {"body": "a" * 50_000 + "!"})
    assert matches(pack, {"body": "a" * 50_000})


def test_condition_referring_to_a_missing_selection_names_the_condition_line(make_pack) -> None:
    text = rule_yaml("selection:\n  a: 1\ncondition: selection and filter", name="no_filter")
    problem = _only_problem(make_pack(text))
    assert problem.line == text.splitlines().index("  condition: selection and filter") + 1
    assert "filter" in problem.reason


def test_yaml_boolean_key_trap_is_reported(make_pack) -> None:
    # `off:` is a YAML 1.1 boolean, so the selection silently becomes `False:` — say so
    problem = _only_problem(make_pack(rule_yaml("off:\n  a: 1\ncondition: off")))
    assert "off" in problem.reason.lower()


def test_non_utf8_rule_file_is_refused_with_line(tmp_path: Path) -> None:
    (tmp_path / "latin1.yml").write_bytes(b"title: caf\xe9\nname: x\n")
    (tmp_path / "good.yml").write_text(GOOD)
    pack = load_pack([tmp_path])
    problem = _only_problem(pack)
    assert problem.line == 1 and "not UTF-8" in problem.reason
    assert [r.rule_id for r in pack.rules] == ["good_rule"]


def test_duplicate_keys_are_refused(make_pack) -> None:
    problem = _only_problem(make_pack("title: t\nname: d\ntitle: again\n"))
    assert "duplicate key 'title'" in problem.reason and problem.line == 3


def test_duplicate_rule_names_across_files(make_pack) -> None:
    pack = make_pack(GOOD, GOOD)
    assert "duplicate rule id/name 'good_rule'" in _only_problem(pack).reason
    assert len(pack.rules) == 1


def test_correlation_with_unknown_member_and_unsupported_condition(make_pack) -> None:
    correlation = """
        title: c
        name: corr
        correlation:
          type: event_count
          rules: [nowhere]
          group-by: [userPrincipalName]
          timespan: 5m
          condition: {gte: 3}
    """
    assert "references unknown rule 'nowhere'" in _only_problem(make_pack(correlation)).reason
    lt = correlation.replace("nowhere", "good_rule").replace("gte: 3", "lt: 3")
    assert "not supported" in _only_problem(make_pack(GOOD, lt)).reason


def test_bad_tenantguard_block_and_bad_tests_are_refused(make_pack) -> None:
    extra = "tenantguard:\n  threshold: 0\n"
    assert (
        "threshold"
        in _only_problem(make_pack(rule_yaml("selection:\n  a: 1\ncondition: selection", extra=extra))).reason
    )
    extra = "tenantguard:\n  colour: red\n"
    assert (
        "unknown tenantguard key 'colour'"
        in _only_problem(make_pack(rule_yaml("s:\n  a: 1\ncondition: s", extra=extra))).reason
    )
    extra = "tests:\n  - name: no expectation\n    event: {a: 1}\n"
    assert (
        "match: true|false"
        in _only_problem(make_pack(rule_yaml("s:\n  a: 1\ncondition: s", extra=extra))).reason
    )


def test_rules_without_positive_and_negative_tests_are_linted(make_pack) -> None:
    lint: list[RuleProblem] = []
    make_pack(GOOD, lint=lint)
    assert len(lint) == 1 and "positive" in lint[0].reason


def test_many_bad_files_never_raise(tmp_path: Path) -> None:
    samples = [
        b"",
        b"---\n---\n",
        b"- just\n- a list\n",
        b"title: [unclosed\n",
        b"\x00\x01\x02",
        b"detection: 5\nname: n\nlogsource: {product: m365, service: signins}\n",
        b"name: n\nlogsource: {product: m365, service: signins}\ndetection: {s: {a: 1}, condition: 's and'}\n",
        b"name: n\nlogsource: {product: m365, service: signins}\ndetection: {s: [[[]]], condition: s}\n",
        b"a: &x [*x]\n",
        (
            "name: n\nlogsource: {product: m365, service: signins}\ndetection:\n  s:\n"
            + "    " * 1
            + "a: "
            + "[" * 200
            + "]" * 200
            + "\n  condition: s\n"
        ).encode(),
    ]
    for index, raw in enumerate(samples):
        (tmp_path / f"bad{index}.yml").write_bytes(raw)
    (tmp_path / "good.yml").write_text(GOOD)
    pack = load_pack([tmp_path])
    assert [r.rule_id for r in pack.rules] == ["good_rule"]
    assert all(p.path.endswith(".yml") for p in pack.problems)
