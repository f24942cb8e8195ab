"""`tenantguard incidents ...` and `tenantguard report ...` against a real database."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.commands import incidents, report
from core.models import Role
from tests.factories import TEST_PEPPER, at

runner = CliRunner()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings, tmp_path: Path):
    from cli import context

    monkeypatch.setenv("TENANTGUARD_DATABASE_URL", settings.effective_database_url)
    monkeypatch.setenv("TENANTGUARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("TENANTGUARD_API_TOKEN_PEPPER", TEST_PEPPER)
    context.settings.cache_clear()
    yield
    context.settings.cache_clear()


def invoke(app, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_an_analyst_works_an_incident_from_the_command_line(
    cli_env, make_finding, make_message, make_principal, monkeypatch, tmp_path
) -> None:
    make_finding("Impossible travel", people=["alice@northwind.example"], ips=["203.0.113.7"])
    make_finding("Inbox rule forwards mail outside", people=["alice@northwind.example"], first_seen=at(30))
    make_message("who is 203.0.113.7?", sent_at=at(10))
    assert "1 incident(s) created or updated: 1" in invoke(incidents.app, "build", "--no-notify")
    listing = invoke(incidents.app, "list")
    assert "Impossible travel" in listing and "P2" in listing
    shown = invoke(incidents.app, "show", "1")
    assert "joined: same person alice@northwind.example within 30 min of finding #1" in shown
    assert "who is 203.0.113.7?" in shown
    assert "who is 203.0.113.7?" not in invoke(incidents.app, "show", "1", "--no-excerpts")
    # Each acts with their own token (`--as` is checked against it, never taken on trust).
    monkeypatch.setenv("TENANTGUARD_TOKEN", make_principal(Role.ANALYST, name="lead").token)
    invoke(incidents.app, "assign", "1", "principal:erin", "--as", "principal:lead")
    monkeypatch.setenv("TENANTGUARD_TOKEN", make_principal(Role.ANALYST, name="erin").token)
    invoke(incidents.app, "transition", "1", "contained", "-m", "sessions revoked", "--as", "principal:erin")
    invoke(incidents.app, "note", "1", "password: hunter2 was reused", "--as", "principal:erin")
    invoke(incidents.app, "postmortem", "1", "--root-cause", "password reuse", "--as", "principal:erin")
    monkeypatch.delenv("TENANTGUARD_TOKEN")
    out = tmp_path / "report.html"
    invoke(report.app, "incident", "1", "--format", "html", "-o", str(out))
    html = out.read_text()
    assert "password reuse" in html and "hunter2" not in html
    markdown = invoke(report.app, "incident", "1")
    assert markdown.startswith("# Incident #1: Impossible travel")
    metrics = invoke(report.app, "metrics", "--since", "3650d", "--json")
    assert '"incidents": 1' in metrics
    table = invoke(report.app, "metrics", "--since", "3650d")
    # contained right away by the transition above: P2 has one MTTA and one MTTC, P1 none
    p2 = next(line for line in table.splitlines() if "│ P2 " in line)
    p1 = next(line for line in table.splitlines() if "│ P1 " in line)
    assert p2.count("(1)") >= 2 and "(1)" not in p1


def test_bad_input_is_refused_with_a_clear_message(cli_env, make_finding) -> None:
    make_finding(people=["bob@northwind.example"])
    invoke(incidents.app, "build", "--no-notify")
    result = runner.invoke(incidents.app, ["transition", "1", "closed"])
    assert result.exit_code != 0 and "it can move to" in str(result.exception)
    result = runner.invoke(report.app, ["metrics", "--since", "yesterday-ish"])
    assert result.exit_code != 0 and "is not a time" in result.output


def test_change_windows_are_declared_and_cancelled_only_by_an_authenticated_role_that_may(
    cli_env, db, make_principal, monkeypatch, tmp_path
) -> None:
    from sqlalchemy import select

    from core.models import AuditRecord, Role
    from tests.factories import TEST_PEPPER

    monkeypatch.setenv("TENANTGUARD_API_TOKEN_PEPPER", TEST_PEPPER)
    monkeypatch.setenv("TENANTGUARD_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.delenv("TENANTGUARD_TOKEN", raising=False)
    analyst = make_principal(Role.ANALYST, name="dana")
    viewer = make_principal(Role.VIEWER, name="vic")
    declare = (
        "changes",
        "declare",
        "CHG-5102",
        "--actor",
        "it-admin@northwind.example",
        "--start",
        "2026-12-01T14:00:00Z",
        "--end",
        "2026-12-01T16:00:00Z",
    )

    # a name typed after --as proves nothing; no credential, no change window
    refused = runner.invoke(incidents.app, [*declare, "--as", "principal:dana"])
    assert refused.exit_code != 0 and "without credentials" in str(refused.exception)
    # a viewer's token proves who they are, and a viewer may not change incidents
    monkeypatch.setenv("TENANTGUARD_TOKEN", viewer.token)
    forbidden = runner.invoke(incidents.app, list(declare))
    assert forbidden.exit_code != 0 and "may not declare or cancel change windows" in str(forbidden.exception)
    monkeypatch.setenv("TENANTGUARD_TOKEN", analyst.token)
    assert "change window 1 declared: CHG-5102" in invoke(incidents.app, *declare)
    monkeypatch.setenv("TENANTGUARD_TOKEN", viewer.token)
    assert runner.invoke(incidents.app, ["changes", "cancel", "1"]).exit_code != 0
    monkeypatch.delenv("TENANTGUARD_TOKEN")
    assert "change window 1 cancelled" in invoke(incidents.app, "changes", "cancel", "1", "--local-operator")
    with db.session(readonly=True) as session:
        actors = [
            (r.action, r.actor)
            for r in session.execute(select(AuditRecord).order_by(AuditRecord.seq)).scalars()
            if r.action.startswith("change_window")
        ]
    assert actors[0] == ("change_window.declared", "principal:dana")
    assert actors[1][0] == "change_window.cancelled" and actors[1][1].startswith("local:")
    assert len(actors) == 2  # the refused attempts changed nothing
