"""`tenantguard demo` shows the paging: who was paged, on which channel, the escalation, the
acknowledgement, the e-mail page the simulator's SMTP server delivered; and an SSO sign-in."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_the_demo_shows_who_was_paged_and_how(tmp_path: Path) -> None:
    from cli.context import console
    from cli.demo import run_scenario

    with console.capture() as captured:
        outcome = run_scenario("account_takeover", tmp_path, approve_as=None, users=30, days=3, details=False)
    text = captured.get()
    assert outcome.incidents["P1"] == 1 and outcome.audit_ok
    paging = text[text.index("Paging #") :]
    rows = [line for line in paging.splitlines() if line.startswith("│")][:5]
    assert [[cell.strip() for cell in row.strip("│").split("│")][1:4] for row in rows] == [
        ["1", "dana", "slack"],
        ["1", "dana", "sms"],
        ["2", "omar", "slack"],
        ["2", "omar", "voice"],
        ["2", "omar", "email"],
    ]
    assert all("sent" in row for row in rows)
    assert "acknowledged by principal:demo-analyst via cli, MTTA 7 min; level 3 not paged" in paging
    assert "on-call report: policy security: 1/1 acknowledged, MTTA 7 min" in paging
    # the e-mail page went through the simulator's SMTP server, over verified STARTTLS with a login
    flat = " ".join(text.split())  # the console wraps long lines
    assert "e-mail page delivered to omar@" in flat
    assert "(STARTTLS, certificate verified, signed in as tenantguard@" in flat
    # and the analyst signed in through the simulator's OpenID provider, checked as the console checks it
    assert "signed in through the simulator's OpenID provider as analyst" in flat
