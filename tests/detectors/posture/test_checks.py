"""The shipped check pack: loads, covers the issue's list, and every check's own tests pass."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from detectors.posture import load_checks, run_check_tests
from detectors.posture.errors import CheckError


def test_the_pack_has_at_least_40_checks_over_the_four_providers_all_with_tests() -> None:
    checks = load_checks()
    assert len(checks) >= 40
    assert set(Counter(c.provider.value for c in checks)) == {"m365", "google", "slack", "okta"}
    assert all(len(c.tests) >= 2 for c in checks)


def test_every_check_passes_its_passing_snapshot_and_fails_its_failing_one() -> None:
    results = run_check_tests()
    bad = [
        f"{r.check_id} / {r.test}: expected {r.expected}, got {r.actual} — {r.message}"
        for r in results
        if not r.ok
    ]
    assert not bad, "\n".join(bad)
    assert {r.expected for r in results} == {"pass", "fail"}


def test_references_name_public_benchmark_ids_from_the_catalogue() -> None:
    # the ids (only) of the public benchmarks, shipped beside the checks
    catalogue = Path(__file__).resolve().parents[3] / "rules" / "posture" / "benchmark-ids.txt"
    lines = (line.strip() for line in catalogue.read_text(encoding="utf-8").splitlines())
    known = {line for line in lines if line and not line.startswith("#")}
    unknown = {ref for check in load_checks() for ref in check.references if ref not in known}
    assert not unknown


def test_a_wrong_check_fails_its_test_with_an_explanation(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text(
        """
id: t.bad
provider: slack
title: deliberately wrong
severity: low
category: sessions
object: tenant_settings
condition: sso_required == false
tests:
  - {name: should pass, expect: pass, snapshot: {sso_required: true}}
  - {name: should fail, expect: fail, snapshot: {sso_required: false}}
"""
    )
    results = run_check_tests(tmp_path)
    assert [r.ok for r in results] == [False, False]
    assert "sso_required" in results[0].message


def test_an_invalid_check_is_refused_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(
        "id: t.x\nprovider: slack\ntitle: t\nseverity: low\ncategory: sessions\nobject: tenant_settings\n"
        "condition: __import__('os')\ntests: []\n"
    )
    with pytest.raises(CheckError, match=r"bad.yml:7 \(condition\)"):
        load_checks(path)
    results = run_check_tests(path)
    assert len(results) == 1 and not results[0].ok and "bad.yml" in results[0].message
