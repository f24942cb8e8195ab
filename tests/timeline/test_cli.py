"""`tenantguard incidents ...` and `tenantguard report ...` against a real database."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.commands import incidents, report
from tests.factories import at

runner = CliRunner()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings, tmp_path: Path):
    from cli import context

    monkeypatch.setenv("TENANTGUARD_DATABASE_URL", settings.effective_database_url)
    monkeypatch.setenv("TENANTGUARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    context.settings.cache_clear()
    yield
    context.settings.cache_clear()


def invoke(app, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_an_analyst_works_an_incident_from_the_command_line(
    cli_env, make_finding, make_message, tmp_path
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
    invoke(incidents.app, "assign", "1", "principal:erin", "--as", "principal:lead")
    invoke(incidents.app, "transition", "1", "contained", "-m", "sessions revoked", "--as", "principal:erin")
    invoke(incidents.app, "note", "1", "password: hunter2 was reused", "--as", "principal:erin")
    invoke(incidents.app, "postmortem", "1", "--root-cause", "password reuse", "--as", "principal:erin")
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
