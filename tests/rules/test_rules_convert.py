"""`tenantguard rules convert`: a community rule shown as the pipelines mapped it (and loadable as
one of ours), backends given correlations with their rules, thresholds refused with the reason."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cli.commands.rules import app
from detectors.sigma.loader import load_pack
from detectors.sigma.testing import run_pack_tests

runner = CliRunner()
COMMUNITY = Path(__file__).parents[1] / "detectors" / "sigma" / "community"

FAILURES = """\
title: Wrong password
name: wrong_password
logsource: {product: m365, service: signins}
detection:
  selection:
    status.errorCode: 50126
  condition: selection
level: low
tenantguard: {signal: true}
tests:
  - {name: wrong, match: true, event: {userPrincipalName: a@x.example, status: {errorCode: 50126}}}
  - {name: right, match: false, event: {userPrincipalName: a@x.example, status: {errorCode: 0}}}
---
title: Spray
name: spray
correlation:
  type: value_count
  rules: [wrong_password]
  group-by: [ipAddress]
  timespan: 30m
  condition: {gte: 10, field: userPrincipalName}
level: high
tests:
  - name: ten accounts
    match: true
    events:
      - repeat: 10
        every: 10s
        event: {createdDateTime: "2026-11-20T03:00:00Z", userPrincipalName: "u{i}@x.example", ipAddress: 203.0.113.9, status: {errorCode: 50126}}
  - name: one account
    match: false
    events:
      - repeat: 10
        every: 10s
        event: {createdDateTime: "2026-11-20T03:00:00Z", userPrincipalName: u@x.example, ipAddress: 203.0.113.9, status: {errorCode: 50126}}
"""

BURST = """\
title: Public links burst
name: links_burst
logsource: {product: google, service: drive}
detection:
  selection:
    name: change_document_visibility
    parameters.visibility: people_with_link
  condition: selection
level: medium
tenantguard: {threshold: 3, unique: parameters.doc_id, dedup_period: 1h}
tests:
  - name: three documents
    match: true
    events:
      - repeat: 3
        every: 1m
        event: {id: {time: "2026-11-20T03:00:00Z"}, actor: {email: a@x.example}, name: change_document_visibility, parameters: {visibility: people_with_link, doc_id: "d{i}"}}
  - name: one document
    match: false
    event: {id: {time: "2026-11-20T03:00:00Z"}, actor: {email: a@x.example}, name: change_document_visibility, parameters: {visibility: people_with_link, doc_id: d1}}
"""


def test_community_rules_come_out_in_the_stored_shape_and_load_and_pass_as_our_own(tmp_path: Path) -> None:
    result = runner.invoke(app, ["convert", "--target", "tenantguard", str(COMMUNITY)])
    assert result.exit_code == 0, result.output
    docs = [d for d in result.stdout.split("---\n") if d.strip()]
    source = load_pack([COMMUNITY])
    assert len(docs) == len(source.rules) + len(source.correlations)
    for index, doc in enumerate(docs):
        (tmp_path / f"mapped{index}.yml").write_text(doc)
    mapped = load_pack([tmp_path])
    assert not mapped.problems
    assert {r.rule_id for r in mapped.rules} == {r.rule_id for r in source.rules}
    for rule in mapped.rules:  # written in our taxonomy: the pipelines have nothing left to map
        assert str(rule.sigma.logsource.product) in {"m365", "google", "okta", "slack"}
        assert not rule.unknown_fields, (rule.rule_id, rule.unknown_fields)
    assert "ResultType" not in result.stdout and "OperationName" not in result.stdout
    assert "eventName:" not in result.stdout
    # the mapped rules behave as the community ones did on the same stored-shape test events
    outcomes = run_pack_tests(mapped)
    assert outcomes and all(o.passed for o in outcomes), [o for o in outcomes if not o.passed][:3]


def test_a_field_mapped_onto_two_fields_stays_an_or_of_them(tmp_path: Path) -> None:
    rule = COMMUNITY / "azure_signinlogs.yml"
    result = runner.invoke(app, ["convert", "--target", "tenantguard", str(rule)])
    first = result.stdout.split("---\n")[1]
    # ResultType: 50126 and ResultDescription|contains: ... -> (either code field) and (either text field)
    assert (
        "- status.errorCode: 50126\n    status.failureReason|contains: Invalid username or password" in first
    )
    assert "- resultType: 50126\n    resultDescription|contains: Invalid username or password" in first
    assert "# written for product: azure, service: signinlogs; fields mapped onto m365/signins" in first


def test_a_backend_gets_each_correlation_with_its_rules_and_no_lone_signal(tmp_path: Path) -> None:
    (tmp_path / "spray.yml").write_text(FAILURES)
    result = runner.invoke(app, ["convert", "--target", "sqlite", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "-- spray: Spray" in result.stdout and "COUNT(DISTINCT" in result.stdout
    assert "-- wrong_password" not in result.stdout  # a signal: part of the correlation's query


def test_a_threshold_rule_is_refused_with_the_reason_not_converted_without_it(tmp_path: Path) -> None:
    (tmp_path / "burst.yml").write_text(BURST)
    result = runner.invoke(app, ["convert", "--target", "sqlite", str(tmp_path)])
    assert result.exit_code == 1
    assert "-- links_burst" not in result.stdout
    assert "refused links_burst" in result.stderr and "3 distinct parameters.doc_id" in result.stderr


def test_a_missing_backend_names_the_package_to_install(tmp_path: Path) -> None:
    (tmp_path / "burst.yml").write_text(BURST)
    result = runner.invoke(app, ["convert", "--target", "splunk", str(tmp_path)])
    assert result.exit_code != 0 and "pip install pysigma-backend-splunk" in result.output


def test_the_shipped_pack_written_back_in_the_stored_shape_passes_its_own_tests(tmp_path: Path) -> None:
    shipped = Path(__file__).parents[2] / "rules" / "detections"
    result = runner.invoke(app, ["convert", "--target", "tenantguard", str(shipped)])
    assert result.exit_code == 0, result.output
    for index, doc in enumerate(d for d in result.stdout.split("---\n") if d.strip()):
        (tmp_path / f"rule{index}.yml").write_text(doc)
    written = load_pack([tmp_path])
    original = load_pack([shipped])
    assert not written.problems
    assert len(written.rules) == len(original.rules) and len(written.correlations) == len(
        original.correlations
    )
    outcomes = run_pack_tests(written)
    assert len(outcomes) == len(run_pack_tests(original))
    assert all(o.passed for o in outcomes), [o for o in outcomes if not o.passed][:3]
