"""`tenantguard demo` shows the response: the P1's channel, its Jira issue, a stakeholder update on
the status page, and the postmortem drafted once the issue is Done."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_the_demo_shows_channel_update_status_page_jira_and_postmortem(tmp_path: Path) -> None:
    from cli.context import console
    from cli.demo import run_scenario

    with console.capture() as captured:
        outcome = run_scenario("account_takeover", tmp_path, approve_as=None, users=20, days=3, details=False)
    text = captured.get()
    assert outcome.incidents["P1"] == 1 and outcome.audit_ok
    assert "has Slack channel #inc-" in text and "and Jira issue SEC-1" in text
    assert "status page: Major system outage — Some users may be asked to sign in again" in text
    assert "Jira SEC-1 moved to Done" in text and "is resolved; postmortem drafted" in text
    assert "# Postmortem: incident #" in text
