"""Every configuration file format is a pydantic model loaded through core.loading: the shipped
files validate, a broken one is refused naming file and line, an alias bomb is refused at load,
and `tenantguard schema NAME` gives the JSON Schema editors use."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from cli.commands.schema import SCHEMAS, json_schema
from cli.main import app
from collectors.connections import load_connections_file
from core.loading import load_path
from detectors.posture.checks import DEFAULT_RULES_DIR, iter_check_files, load_checks
from detectors.posture.errors import CheckError
from providers.errors import ConnectionConfigError
from remediation.config import DEFAULT_POLICY_FILE
from remediation.errors import PlaybookError, PolicyError
from remediation.playbooks import DEFAULT_DIR, load_playbook, load_playbooks
from remediation.policy import load_policy

BOMB = "\n".join(
    ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]" for n in range(1, 9)]
)


def test_every_shipped_file_validates() -> None:
    assert len(load_playbooks(DEFAULT_DIR)) >= 10
    assert len(load_checks(DEFAULT_RULES_DIR)) >= 40
    policy = load_policy(DEFAULT_POLICY_FILE)
    assert policy.auto_approve and policy.approval_ttl.total_seconds() > 0


def test_a_broken_playbook_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(
        "id: x\nmatch:\n  - kind: anomaly\nsteps:\n  - action: m365.revoke_sessions\n"
        "    phase: later\n    target: {user: '{person}'}\n    why: because\n"
    )
    with pytest.raises(PlaybookError, match=rf"{path}:5: steps\.0: phase 'later' is not one of"):
        load_playbook(path)


def test_a_broken_posture_check_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(
        "id: t.x\nprovider: slack\ntitle: t\nseverity: dire\ncategory: sessions\nobject: tenant_settings\n"
        "condition: sso_required == true\ntests:\n  - {expect: pass, snapshot: {sso_required: true}}\n"
        "  - {expect: fail, snapshot: {sso_required: false}}\n"
    )
    with pytest.raises(CheckError, match=rf"{path}:4 \(severity\): Input should be"):
        load_checks(path)


def test_a_broken_policy_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("approval_ttl: 24h\nauto_approve:\n  - action: m365.remove_auth_method\n")
    with pytest.raises(PolicyError, match=rf"{path}:3: auto_approve\.0\.action: .*cannot be auto-approved"):
        load_policy(path)
    path.write_text("approvals:\n  default: 1\n  by_risk:\n    extreme: 2\n")
    with pytest.raises(PolicyError, match=rf"{path}:3: approvals.by_risk: unknown extreme"):
        load_policy(path)


def test_a_broken_connections_file_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "connections:\n  - {name: a, provider: slack, tenant: E, secrets: {audit_token: 'env:A'}}\n"
        "  - name: b\n    provider: slackk\n    tenant: E\n"
    )
    with pytest.raises(ConnectionConfigError, match=rf"{path}:4: connections\.1\.provider: Input should be"):
        load_connections_file(path)


@pytest.mark.parametrize(
    ("loader", "error", "name"),
    [
        (load_playbook, PlaybookError, "p.yaml"),
        (load_policy, PolicyError, "policy.yaml"),
        (load_checks, CheckError, "c.yml"),
        (load_connections_file, ConnectionConfigError, "c.yaml"),
    ],
)
def test_an_alias_bomb_in_any_file_is_refused_at_load(tmp_path: Path, loader, error, name) -> None:
    path = tmp_path / name
    path.write_text(BOMB + "\n")
    with pytest.raises(error, match=rf"{path}:\d+: expands to more than \d+ values"):
        loader(path)


def test_the_schema_command_prints_each_format_and_shipped_files_use_only_its_keys() -> None:
    runner = CliRunner()
    for name in SCHEMAS:
        result = runner.invoke(app, ["schema", name])
        assert result.exit_code == 0, result.output
        schema = orjson.loads(result.stdout)
        assert schema["type"] == "object" and schema["properties"], name
    assert runner.invoke(app, ["schema", "nope"]).exit_code != 0
    shipped = {
        "playbook": sorted(DEFAULT_DIR.glob("*.yaml")),
        "posture-check": list(iter_check_files(DEFAULT_RULES_DIR)),
        "policy": [DEFAULT_POLICY_FILE],
    }
    for name, files in shipped.items():
        allowed = set(json_schema(name)["properties"])
        for file in files:
            for document in load_path(file).documents:
                assert set(document) <= allowed, (file, set(document) - allowed)


def test_a_broken_oncall_file_names_file_line_and_field(tmp_path: Path) -> None:
    from oncall.errors import OncallInputError
    from oncall.files import load_file

    path = tmp_path / "oncall.yaml"
    path.write_text("responders:\n  - name: alice\n    email: not-an-email\n")
    with pytest.raises(OncallInputError, match=rf"{path}:3: responders\.0\.email: String should match"):
        load_file(path)
