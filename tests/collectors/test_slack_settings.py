"""Slack workspace security settings as Slack exposes them: admin.teams.settings.info is the team
only, and each setting in force is the newest Audit Logs `pref.*` event of its action."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import select

from collectors import collect_once, connections_from_simulator
from collectors.connections import sync_connections
from core.db import Database
from core.models import ConfigSnapshot, PostureResult
from core.settings import Settings
from detectors.posture import evaluate

DRIFT = str(Path(__file__).parents[1] / "simulator" / "data" / "slack_settings_drift.yaml")


def _collect_settings(
    db: Database, settings: Settings, info: dict[str, Any], without: str | None = None
) -> dict[str, Any]:
    (connection,) = connections_from_simulator(info, providers=["slack"], streams={"slack": ["settings"]})
    if without:
        connection.secrets.pop(without)
    sync_connections(db, [connection], source="simulator")
    report = collect_once(db, settings)
    assert report.ok, [r.error for r in report.failures]
    with db.session(readonly=True) as session:
        (snapshot,) = session.exec(
            select(ConfigSnapshot).where(ConfigSnapshot.object_type == "tenant_settings")
        ).all()
    return dict(snapshot.data)


def test_settings_in_force_come_from_the_newest_pref_event_and_posture_follows_them(
    db: Database, settings: Settings, make_simulator
) -> None:
    # given a workspace set up with public file links off and 12-hour sessions, whose admin turned
    # the two-factor and SSO requirements off last night
    sim = make_simulator(DRIFT)
    (admin,) = sim.truth["stories"][0]["people"]
    # when its settings stream is collected
    data = _collect_settings(db, settings, sim.info)
    # then the settings are the newest pref.* values, each with the event it comes from
    assert data["settings"] == {
        "two_factor_auth_required": False,
        "sso_required": False,
        "session_duration_hours": 12,
        "public_file_links_allowed": False,
        "app_approval_required": True,
        "guest_invites_by": "admins",
        "shared_channel_approval_required": True,
    }
    sources = data["settings_sources"]
    assert sources["sso_required"]["action"] == "pref.sso_setting_changed"
    assert sources["sso_required"]["actor"] == sources["two_factor_auth_required"]["actor"] == admin
    setup, change = sources["session_duration_hours"]["date_create"], sources["sso_required"]["date_create"]
    assert change - setup > 200 * 86400  # the workspace's setup, long before the scenario
    # and admin.teams.settings.info is kept as Slack returns it: the team, no security settings
    assert data["admin"]["id"] == data["team"]["id"] and data["admin"]["default_channels"]
    assert not set(data["admin"]) & set(data["settings"])
    assert data["preferences"]["who_can_post_general"] == "everyone"

    # when posture is evaluated, then the checks follow the collected settings
    evaluate(db)
    with db.session(readonly=True) as session:
        status = {r.check_id: r.status for r in session.exec(select(PostureResult)).all()}
    assert status["slack.sso_required"] == "fail"
    assert status["slack.two_factor_required"] == "fail"
    assert status["slack.public_file_links_disabled"] == "pass"
    assert status["slack.session_duration_limited"] == "pass"
    assert status["slack.export_restricted"] == "not_applicable"  # no API says who may export


def test_without_an_audit_token_the_settings_are_unknown_not_guessed(
    db: Database, settings: Settings, make_simulator
) -> None:
    # given a connection that has the admin token but no audit token
    sim = make_simulator(DRIFT)
    # when the settings stream is collected
    data = _collect_settings(db, settings, sim.info, without="audit_token")
    # then the team is read, the settings are unknown and no settings check gives a verdict
    assert data["admin"]["id"] == data["team"]["id"]
    assert data["settings"] is None
    evaluate(db)
    with db.session(readonly=True) as session:
        status = {r.check_id: r.status for r in session.exec(select(PostureResult)).all()}
    assert status["slack.sso_required"] == "not_applicable"
