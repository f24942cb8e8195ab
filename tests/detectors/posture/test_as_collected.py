"""Every posture check against the snapshots exactly as the collectors store them from the
simulator, not against hand-written shapes: each check finds its objects, every field its
condition reads exists there, and the verdict follows the tenant's settings.

The checks' own `tests:` use small hand-written snapshots; this is where a check whose object id or
field names do not match what a collector stores (all nine Slack settings checks and every Google
policy check read keys nobody stored) is caught.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlmodel import select

from collectors import collect_once, connections_from_simulator
from collectors.connections import sync_connections
from collectors.streams.base import StreamKind, streams_for
from core.db import Database
from core.models import ConfigSnapshot, PostureResult
from core.paths import get_path
from core.settings import Settings
from detectors.posture import evaluate
from detectors.posture.checks import load_checks
from detectors.posture.expression import referenced_paths
from simulator.timestamps import settled_period_start

PROVIDERS = ("m365", "google", "slack", "okta")

# Checks whose objects no collector reads yet, each with the reason; the test fails when one of them
# starts to be collected (take it off the list) or another check joins them (collect it, or add it
# here with its reason).
NOT_COLLECTED = {
    # Exchange Online settings have no Graph API (Get-OrganizationConfig, Get-AdminAuditLogConfig).
    "m365.audit_log_search_enabled": "Exchange Online PowerShell only",
    "m365.external_forwarding_blocked": "Exchange Online PowerShell only",
    "m365.mailbox_auditing_on": "Exchange Online PowerShell only",
    "google.admins_security_keys": "no Google stream stores auth_method_registration",
}
# Fields no vendor API returns, each with the reason: the check is not applicable (never a verdict
# from an invented value) until a source exists.
UNSOURCED_FIELDS = {
    "slack.export_restricted": "who may export is an admin-page setting: no method, no pref.* event",
    "slack.guest_accounts_expire": "no workspace setting requires guest expiry (per-guest audit events only)",
}
# Fields a check reads that the provider leaves out when they are unset.
OPTIONAL_FIELDS = {
    ("m365.inbox_rules_no_external_forward", "actions.forwardAsAttachmentTo"),
    # read only when anyone links are on; not in Graph's sharepointSettings (SharePoint admin only)
    ("m365.anyone_links_expire", "requireAnonymousLinksExpireInDays"),
}


def test_every_check_reads_fields_its_collector_stores_and_follows_the_tenants_settings(
    db: Database, settings: Settings, make_simulator: Callable[..., Any]
) -> None:
    # given the default tenant, its snapshot streams collected as serve collects them
    sim = make_simulator("account_takeover", users=10, days=1, start=settled_period_start(1))
    sim.advance(time.time() - sim.sim.now() / 1_000_000)
    streams = {
        provider: [
            s.name for s in streams_for(provider) if s.kind is StreamKind.SNAPSHOT and s.enabled_by_default
        ]
        for provider in PROVIDERS
    }
    sync_connections(
        db,
        connections_from_simulator(sim.info, providers=list(PROVIDERS), streams=streams),
        source="simulator",
    )
    report = collect_once(db, settings)
    assert report.ok, [r.error for r in report.failures]
    stored: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    with db.session(readonly=True) as session:
        for snapshot in session.exec(select(ConfigSnapshot)).all():
            stored.setdefault((snapshot.provider, snapshot.object_type), []).append(
                (snapshot.object_id, snapshot.data)
            )

    # then every check (but the listed ones) finds its objects and every field it reads
    not_found: list[str] = []
    missing_fields: list[str] = []
    for check in load_checks():
        if check.provider not in PROVIDERS:
            continue
        objects = [
            data
            for object_id, data in stored.get((check.provider, check.object_type), [])
            if check.object_id is None or object_id == check.object_id
        ]
        if not objects:
            not_found.append(check.id)
            continue
        for path in referenced_paths(check.condition_text):
            if check.id in UNSOURCED_FIELDS:
                assert all(get_path(data, path) is None for data in objects), (check.id, path)
                continue
            if path.split(".")[0] in check.object_types or (check.id, path) in OPTIONAL_FIELDS:
                continue
            if all(get_path(data, path) is None for data in objects):
                missing_fields.append(f"{check.id}: {path}")
    assert sorted(not_found) == sorted(NOT_COLLECTED)
    assert missing_fields == []

    # and when evaluated, each collected check gives a verdict that follows the simulator's settings
    evaluate(db)
    with db.session(readonly=True) as session:
        status = {r.check_id: r.status for r in session.exec(select(PostureResult)).all()}
    for check in load_checks():
        if check.id in UNSOURCED_FIELDS:
            assert status.get(check.id) == "not_applicable", (check.id, status.get(check.id))
        elif check.provider in PROVIDERS and check.id not in NOT_COLLECTED:
            assert status.get(check.id) in {"pass", "fail"}, (check.id, status.get(check.id))
    # Slack (settings from the audit log's pref.* events): SSO and 2FA are required, public file
    # links allowed, sessions last 30 days
    assert status["slack.sso_required"] == "pass"
    assert status["slack.two_factor_required"] == "pass"
    assert status["slack.public_file_links_disabled"] == "fail"
    assert status["slack.session_duration_limited"] == "fail"
    # M365: guests restricted, users cannot register apps, admin consent workflow on
    assert status["m365.guest_access_restricted"] == "pass"
    assert status["m365.users_cannot_register_apps"] == "pass"
    assert status["m365.admin_consent_workflow"] == "pass"
    # Google: less secure apps off, Drive shares outside allow-listed domains only, publishing on
    assert status["google.less_secure_apps_off"] == "pass"
    assert status["google.drive_external_sharing_restricted"] == "pass"
    assert status["google.drive_publishing_disabled"] == "fail"
