"""`tenantguard report compliance` and `tenantguard compliance exceptions`, as a user runs them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import orjson

from core.models import Role
from core.settings import Settings
from tests.cli_process import run_cli
from tests.compliance.conftest import AssessedTenant
from tests.factories import TEST_PEPPER, make_principal


def _run(settings: Settings, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TENANTGUARD_DATA_DIR": str(settings.data_dir),
        "TENANTGUARD_DATABASE_URL": settings.database_url or "",
        "TENANTGUARD_API_TOKEN_PEPPER": TEST_PEPPER,
    }
    if token is not None:
        env["TENANTGUARD_TOKEN"] = token
    return run_cli(
        args,
        env=env,
        timeout=300,
    )


def test_the_report_command_writes_each_format_and_refuses_bad_input_in_one_line(
    assessed_tenant: AssessedTenant, tmp_path: Path
) -> None:
    settings = assessed_tenant.settings
    result = _run(settings, "report", "compliance", "--framework", "scuba-gws", "--format", "json")
    assert result.returncode == 0, result.stderr
    report = orjson.loads(result.stdout)
    assert report["framework"] == "scuba-gws" and [t["provider"] for t in report["tenants"]] == ["google"]
    assert any(c["status"] == "fail" for c in report["controls"])
    tenant = report["tenants"][0]["name"]
    out = tmp_path / "cis.html"
    result = _run(
        settings,
        "report",
        "compliance",
        "--framework",
        "cis-gws",
        "--tenant",
        tenant,
        "--at",
        "1h",
        "-o",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stderr and out.read_text().startswith("<!doctype html>")
    for args, message in (
        (("--framework", "pci"), "unknown framework 'pci'"),
        (("--framework", "soc2", "--tenant", "nobody"), "no tenant (connection) 'nobody'"),
        (("--framework", "soc2", "--format", "docx"), "--format must be"),
    ):
        bad = _run(settings, "report", "compliance", *args)
        assert bad.returncode != 0 and message in bad.stderr and "Traceback" not in bad.stderr


def test_exceptions_from_the_command_line_need_a_second_person(assessed_tenant: AssessedTenant) -> None:
    settings = assessed_tenant.settings
    alice = make_principal(assessed_tenant.db, Role.COMPLIANCE_OFFICER, name="alice").token
    bob = make_principal(assessed_tenant.db, Role.COMPLIANCE_OFFICER, name="bob").token
    asked = _run(
        settings, "compliance", "exceptions", "request", "slack.sso_required", "--owner", "it@example.com",
        "--reason", "contractors move to SSO in March", "--days", "30", "--actor", "alice", token=alice,
    )  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    own = _run(settings, "compliance", "exceptions", "approve", "1", "--actor", "alice", token=alice)
    assert own.returncode != 0 and "four eyes" in own.stderr
    approved = _run(settings, "compliance", "exceptions", "approve", "1", "--actor", "bob", token=bob)
    assert approved.returncode == 0 and "active" in approved.stdout
    frameworks = _run(settings, "compliance", "frameworks")
    assert frameworks.returncode == 0 and "nist-800-53" in frameworks.stdout
