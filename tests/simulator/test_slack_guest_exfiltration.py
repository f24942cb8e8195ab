"""The slack_guest_exfiltration scenario through slack_sdk's AuditLogsClient, and end to end: one
P1/P2 incident for the story, nothing at P1/P2 for the announced agency guest."""

from __future__ import annotations

import pytest

from simulator.timestamps import settled_period_start
from tests.scenario_run import run_and_score

START = "2026-03-02T00:00:00Z"
GUEST = "r.kowalski.home@fastmail.example"


def test_guest_in_private_channels_bulk_downloads_and_export_as_audit_entries(make_simulator, audit_logs):
    sim = make_simulator("slack_guest_exfiltration", start=START)
    client = audit_logs(sim.info)

    added = client.logs(action="guest_channel_join", limit=100).body["entries"]
    created = client.logs(action="guest_created", limit=100).body["entries"]
    downloads = client.logs(action="file_downloaded", limit=9999).body["entries"]
    export = client.logs(
        action="manual_export_started,manual_export_completed,manual_export_downloaded", limit=100
    ).body["entries"]

    ours = [e for e in added if e["details"]["guest"]["email"] == GUEST]
    assert {e["entity"]["channel"]["name"]: e["entity"]["channel"]["privacy"] for e in ours} == {
        "security-ops": "private",
        "finance": "public",
        "sales": "public",
    }
    [invite] = [e for e in created if e["entity"]["user"]["email"] == GUEST]
    assert invite["details"] == {"type": "multi_channel_guest"}
    inviter = invite["actor"]["user"]["email"]
    by_guest = [e for e in downloads if e["actor"]["user"]["email"] == GUEST]
    assert len(by_guest) == 45
    assert {e["context"]["ip_address"] for e in by_guest} == {invite["context"]["ip_address"]}
    assert [e["action"] for e in sorted(export, key=lambda e: e["date_create"])] == [
        "manual_export_started",
        "manual_export_completed",
        "manual_export_downloaded",
    ]
    assert {e["actor"]["user"]["email"] for e in export} == {inviter}
    assert {e["entity"]["type"] for e in export} == {"workspace"}


@pytest.mark.one_backend
@pytest.mark.slow
def test_the_guest_exfiltration_story_becomes_one_incident_and_the_agency_guest_none(
    db, settings, make_simulator
):
    handle = make_simulator("slack_guest_exfiltration", start=settled_period_start(7))
    result = run_and_score(db, settings, handle)
    assert result["stories_split"] == result["stories_merged"] == 0
    assert result["exactly_one_incident"] == result["stories"] == 1
    assert all(story["priorities"][0] in ("P1", "P2") for story in result["per_story"])
    assert {"P1", "P2"}.isdisjoint(result["unmatched_incidents"]["by_priority"])
    assert result["decoys"]["at_p1_p2"] == 0
    assert result["conversations"]["correct"] == result["conversations"]["expected"]
