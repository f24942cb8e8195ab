"""`tenantguard rules ...` as a detection engineer uses it: readable output, exit codes CI can trust."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli.commands.rules import app

runner = CliRunner()

GOOD = """\
title: Legacy auth
name: legacy
logsource: {product: m365, service: signins}
detection:
  selection:
    clientAppUsed: IMAP4
  condition: selection
level: medium
tags: [attack.initial_access]
tests:
  - {name: imap, match: true, event: {clientAppUsed: IMAP4}}
  - {name: browser, match: false, event: {clientAppUsed: Browser}}
"""


def test_rules_test_passes_on_the_shipped_pack() -> None:
    result = runner.invoke(app, ["test"])
    assert result.exit_code == 0, result.output
    assert "Sigma: " in result.output and "Posture: " in result.output


POSTURE_CHECK = """\
id: slack.admins_two_factor
provider: slack
title: Every Slack admin has two-factor authentication on
severity: high
category: privileged_access
object: user
applies_to: is_admin == true
condition: has_2fa == true
tests:
  - {name: admin with 2FA, expect: pass, snapshot: {id: U1, is_admin: true, has_2fa: true}}
  - {name: admin without, expect: fail, snapshot: {id: U1, is_admin: true, has_2fa: false}}
"""


def test_a_failing_posture_check_test_exits_1_and_names_the_check(tmp_path: Path) -> None:
    # given a Sigma pack that passes and a posture check whose condition lets an admin without 2FA pass
    (tmp_path / "sigma").mkdir()
    (tmp_path / "sigma" / "legacy.yml").write_text(GOOD)
    (tmp_path / "posture").mkdir()
    (tmp_path / "posture" / "two_factor.yml").write_text(
        POSTURE_CHECK.replace("condition: has_2fa == true", "condition: has_2fa == true or is_admin == true")
    )
    # when both are tested
    result = runner.invoke(app, ["test", str(tmp_path / "sigma"), str(tmp_path / "posture")])
    # then the run fails, naming the check, its test and what happened
    assert result.exit_code == 1, result.output
    assert "FAIL slack.admins_two_factor :: admin without" in result.output
    assert "expected fail, got pass" in result.output
    assert "Sigma: 2/2 tests passed" in result.output and "Posture: 1/2" in result.output


def test_a_passing_posture_pack_alone_exits_0(tmp_path: Path) -> None:
    (tmp_path / "posture").mkdir()
    (tmp_path / "posture" / "two_factor.yml").write_text(POSTURE_CHECK)
    result = runner.invoke(app, ["test", str(tmp_path / "posture")])
    assert result.exit_code == 0, result.output
    assert "Posture: 2/2 check tests passed" in result.output and "Sigma" not in result.output


def test_a_failing_test_exits_1_and_says_what_did_not_match(tmp_path: Path) -> None:
    (tmp_path / "legacy.yml").write_text(
        GOOD.replace("{name: browser, match: false", "{name: browser, match: true")
    )
    result = runner.invoke(app, ["test", str(tmp_path)])
    assert result.exit_code == 1
    assert "FAIL legacy :: browser" in result.output
    assert "clientAppUsed = 'IMAP4'" in result.output and "'Browser'" in result.output


def test_validate_names_file_line_and_reason(tmp_path: Path) -> None:
    (tmp_path / "good.yml").write_text(GOOD)
    (tmp_path / "bad.yml").write_text(
        GOOD.replace("name: legacy", "name: bad").replace(
            "clientAppUsed: IMAP4", "clientAppUsed|startwith: IMAP4"
        )
    )
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    assert "bad.yml:6 (rule bad): unknown modifier 'startwith'" in result.output.replace("\n", "")
    assert "1 rules and 0 correlations valid" in result.output


def test_list_reports_coverage_as_json(tmp_path: Path) -> None:
    (tmp_path / "good.yml").write_text(GOOD)
    result = runner.invoke(app, ["list", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0
    assert '"initial_access": {' in result.output and '"m365": 1' in result.output


def test_convert_uses_an_installed_pysigma_backend(tmp_path: Path) -> None:
    (tmp_path / "good.yml").write_text(GOOD)
    result = runner.invoke(app, ["convert", "--target", "sqlite", str(tmp_path)])
    assert result.exit_code == 0
    assert "SELECT * FROM logs WHERE clientAppUsed='IMAP4'" in result.output
    unknown = runner.invoke(app, ["convert", "--target", "splunk", str(tmp_path)])
    assert unknown.exit_code != 0


COMMUNITY_RULES = """\
title: Bad password (SigmaHQ style)
id: 5b0d7a5e-1d7b-4a59-9d1a-0b1f6a7c0001
logsource: {product: azure, service: signinlogs}
detection:
  selection:
    ResultType: 50126
  condition: selection
level: low
tags: [attack.credential_access]
---
title: Reads a Log Analytics column we do not store
id: 5b0d7a5e-1d7b-4a59-9d1a-0b1f6a7c0002
logsource: {product: azure, service: signinlogs}
detection:
  selection:
    ConditionalAccessPolicies|contains: failure
  condition: selection
level: low
tags: [attack.defense_evasion]
---
title: A source we do not collect
id: 5b0d7a5e-1d7b-4a59-9d1a-0b1f6a7c0003
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: ConsoleLogin
  condition: selection
"""


def test_validate_report_prints_load_and_can_fire_figures_for_any_folder(tmp_path: Path) -> None:
    # given a folder of community rules: one we can run, one reading a field we never store, one refused
    (tmp_path / "community.yml").write_text(COMMUNITY_RULES)
    # when it is reported on
    result = runner.invoke(app, ["validate", "--report", str(tmp_path)])
    # then the figures say so, untested rules do not fail it, and the rule that cannot fire is named
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "loaded 2/3 (67%), 1 refused; can fire 1/2 (50%)" in text
    assert "fires on an event built from the rule 1/1 (100%)" in text
    assert "CANNOT FIRE" in text and "ConditionalAccessPolicies" in text and "m365/signins" in text
    assert "unknown logsource product 'aws'" in text
    as_json = runner.invoke(app, ["validate", "--report", str(tmp_path), "--format", "json"])
    assert '"can_fire": 1' in as_json.output and '"refused": 1' in as_json.output


def test_list_counts_as_coverage_only_rules_that_can_fire_and_have_tests(tmp_path: Path) -> None:
    (tmp_path / "good.yml").write_text(GOOD)
    (tmp_path / "community.yml").write_text(COMMUNITY_RULES)
    result = runner.invoke(app, ["list", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    assert listing["coverage"]["providers"]["m365"] == {
        "loaded": 3,
        "alerting": 3,
        "can_fire": 2,
        "with_tests": 1,
        "counted": 1,
    }
    # the untested community rule and the one that cannot fire are not ATT&CK coverage
    assert listing["coverage"]["tactics"] == {"initial_access": {"m365": 1}}
    unusable = next(r for r in listing["rules"] if r["title"].startswith("Reads"))
    assert unusable["can_fire"] is False and unusable["unknown_fields"] == ["ConditionalAccessPolicies"]
