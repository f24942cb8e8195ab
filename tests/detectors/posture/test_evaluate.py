"""Posture over stored snapshots: findings, scores with history, drift naming who changed what."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from core.db import Database
from core.models import Finding, FindingStatus, PostureResult, PostureScore
from detectors.posture import evaluate, score_history

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
GOOD_AUTHZ = {
    "id": "authorizationPolicy",
    "allowInvitesFrom": "adminsAndGuestInviters",
    "guestUserRoleId": "2af84b1e-32c8-42b7-82bc-daa82404023b",
    "defaultUserRolePermissions": {"allowedToCreateApps": False, "permissionGrantPoliciesAssigned": []},
}


def findings(db: Database, kind: str) -> list[Finding]:
    with db.session() as session:
        return list(session.exec(select(Finding).where(Finding.kind == kind)).all())


def test_given_a_tenant_with_security_defaults_off_when_evaluated_then_mfa_checks_fail_and_score_drops(
    db, connection, store_snapshot
) -> None:
    cid = connection("m365")
    store_snapshot(cid, "m365", "security_defaults", "sd", {"isEnabled": False}, T0)
    store_snapshot(cid, "m365", "tenant_settings", "authorizationPolicy", GOOD_AUTHZ, T0)

    report = evaluate(db, now=T0 + timedelta(minutes=5))

    failing = {f.rule_id for f in findings(db, "posture")}
    assert {"m365.mfa_all_users", "m365.mfa_admins", "m365.legacy_auth_blocked"} <= failing
    assert "m365.user_consent_restricted" not in failing
    overall = next(s for s in report.scores if s.category == "overall")
    assert 0 < overall.score < 100
    with db.session() as session:
        assert (
            session.exec(
                select(PostureResult).where(PostureResult.check_id == "m365.guest_access_restricted")
            )
            .one()
            .status
            == "pass"
        )


def test_given_security_defaults_switched_off_by_an_admin_then_drift_names_old_new_when_and_who(
    db, connection, store_snapshot, store_event
) -> None:
    cid = connection("m365")
    store_snapshot(
        cid, "m365", "security_defaults", "00000000-0000-0000-0000-000000000005", {"isEnabled": True}, T0
    )
    evaluate(db, now=T0 + timedelta(minutes=1))
    assert not findings(db, "drift")

    changed_at = T0 + timedelta(hours=2)
    event_id = store_event(
        cid,
        "m365",
        "directory_audits",
        "audit-1",
        changed_at,
        {
            "activityDisplayName": "Update policy",
            "initiatedBy": {"user": {"userPrincipalName": "mallory@contoso.test"}},
            "targetResources": [
                {
                    "id": "00000000-0000-0000-0000-000000000005",
                    "modifiedProperties": [
                        {"displayName": "isEnabled", "oldValue": "true", "newValue": "false"}
                    ],
                }
            ],
        },
        actor="mallory@contoso.test",
        action="Update policy",
    )
    store_snapshot(
        cid,
        "m365",
        "security_defaults",
        "00000000-0000-0000-0000-000000000005",
        {"isEnabled": False},
        T0 + timedelta(hours=3),
    )
    report = evaluate(db, now=T0 + timedelta(hours=3, minutes=1))

    drift = [f for f in findings(db, "drift") if f.rule_id == "m365.mfa_all_users"]
    assert report.drift_findings >= 1 and len(drift) == 1
    finding = drift[0]
    assert finding.context["changed_by"] == "mallory@contoso.test"
    assert finding.evidence_event_ids == [event_id]
    assert "isEnabled" in finding.description and "True → False" in finding.description
    assert finding.first_seen == changed_at
    assert "mallory@contoso.test" in finding.entities["people"]


def test_given_a_setting_moved_away_from_baseline_then_drift_carries_the_baseline(
    db, connection, store_snapshot, store_event
) -> None:
    cid = connection("google")
    store_snapshot(
        cid,
        "google",
        "tenant_settings",
        "security.less_secure_apps",
        {"setting": {"type": "settings/security.less_secure_apps", "value": {"allowLessSecureApps": False}}},
        T0,
    )
    evaluate(db, now=T0)
    store_event(
        cid,
        "google",
        "admin",
        "t/1/0",
        T0 + timedelta(minutes=30),
        {
            "name": "CHANGE_APPLICATION_SETTING",
            "parameters": {"SETTING_NAME": "allowLessSecureApps", "NEW_VALUE": "true"},
        },
        actor="eve@corp.test",
        action="CHANGE_APPLICATION_SETTING",
    )
    store_snapshot(
        cid,
        "google",
        "tenant_settings",
        "security.less_secure_apps",
        {"setting": {"type": "settings/security.less_secure_apps", "value": {"allowLessSecureApps": True}}},
        T0 + timedelta(hours=1),
    )
    evaluate(db, now=T0 + timedelta(hours=1))

    (drift,) = [f for f in findings(db, "drift") if f.rule_id == "google.less_secure_apps_off"]
    assert drift.context["changes"] == [
        {"path": "setting.value.allowLessSecureApps", "old": False, "new": True}
    ]
    assert drift.context["baseline"] == {"setting.value.allowLessSecureApps": False}
    assert drift.context["changed_by"] == "eve@corp.test"


def test_given_a_fixed_setting_when_evaluated_again_then_the_finding_resolves_and_history_shows_both_scores(
    db, connection, store_snapshot
) -> None:
    cid = connection("slack")
    off = {"team": {"id": "T1"}, "settings": {"sso_required": False, "two_factor_auth_required": False}}
    store_snapshot(cid, "slack", "tenant_settings", "T1", off, T0)
    evaluate(db, now=T0)
    store_snapshot(
        cid,
        "slack",
        "tenant_settings",
        "T1",
        {"team": {"id": "T1"}, "settings": {"sso_required": True, "two_factor_auth_required": True}},
        T0 + timedelta(days=1),
    )
    evaluate(db, now=T0 + timedelta(days=1))

    sso = [f for f in findings(db, "posture") if f.rule_id == "slack.sso_required"]
    assert [f.status for f in sso] == [FindingStatus.RESOLVED]
    history = score_history(db, connection_id=cid, category="authentication")
    assert [h.score for h in history] == [0.0, 100.0]
    with db.session() as session:
        assert len(session.exec(select(PostureScore).where(PostureScore.category == "overall")).all()) == 2


def test_given_a_ten_user_tenant_then_failing_users_are_named_in_one_finding(
    db, connection, store_snapshot
) -> None:
    cid = connection("google")
    for index in range(10):
        user = {
            "id": str(index),
            "primaryEmail": f"u{index}@corp.test",
            "isEnrolledIn2Sv": index % 3 != 0,
            "isAdmin": index < 3,
        }
        store_snapshot(cid, "google", "user", str(index), user, T0)
    evaluate(db, now=T0)
    (finding,) = [f for f in findings(db, "posture") if f.rule_id == "google.users_enrolled_2sv"]
    assert finding.context["objects_failing"] == 4 and finding.context["objects_total"] == 10
    assert sorted(finding.entities["people"]) == [
        "u0@corp.test",
        "u3@corp.test",
        "u6@corp.test",
        "u9@corp.test",
    ]
    assert "google.super_admin_count" not in {f.rule_id for f in findings(db, "posture")}


def test_given_tenant_wide_drift_whose_object_id_the_audit_event_does_not_name_then_the_property_name_attributes_it(
    db, connection, store_snapshot, store_event
) -> None:
    """The tenant-wide path: the snapshot's id ("sd") differs from the policy id in the audit
    event, and the changed property is a generic name (isEnabled) — listed by the event as a
    modified property, which is enough; an unrelated admin event in the window is not cited."""
    cid = connection("m365")
    store_snapshot(cid, "m365", "security_defaults", "sd", {"isEnabled": True}, T0)
    evaluate(db, now=T0)
    store_event(
        cid,
        "m365",
        "directory_audits",
        "unrelated",
        T0 + timedelta(minutes=30),
        {"activityDisplayName": "Add user", "targetResources": [{"userPrincipalName": "new@contoso.test"}]},
        actor="helpdesk@contoso.test",
        action="Add user",
    )
    event_id = store_event(
        cid,
        "m365",
        "directory_audits",
        "dir-1",
        T0 + timedelta(hours=1),
        {
            "targetResources": [
                {
                    "id": "00000000-0000-0000-0000-000000000005",
                    "modifiedProperties": [{"displayName": "isEnabled"}],
                }
            ]
        },
        actor="mallory@corp.test",
        action="Update policy",
    )
    store_snapshot(cid, "m365", "security_defaults", "sd", {"isEnabled": False}, T0 + timedelta(hours=2))
    evaluate(db, now=T0 + timedelta(hours=2))

    drift = findings(db, "drift")
    assert {f.rule_id for f in drift} >= {"m365.mfa_all_users", "m365.mfa_admins"}
    for finding in drift:
        assert finding.evidence_event_ids == [event_id], finding.rule_id
        assert finding.context["changed_by"] == "mallory@corp.test"


def test_a_backlog_of_snapshots_is_compared_to_the_end_in_one_pass_a_batch_at_a_time(
    db, connection, store_snapshot
) -> None:
    from detectors.posture import snapshots_pending
    from detectors.posture.service import detect_snapshot_drift, shipped_checks

    # given a tenant's first read: seven objects, then the less-secure-apps setting switched on
    cid = connection("google")
    setting = "security.less_secure_apps"
    for k in range(6):
        store_snapshot(cid, "google", "user", f"u{k}@corp.test", {"primaryEmail": f"u{k}@corp.test"}, T0)
    for on, at in ((False, T0), (True, T0 + timedelta(hours=1))):
        value = {"setting": {"type": f"settings/{setting}", "value": {"allowLessSecureApps": on}}}
        store_snapshot(cid, "google", "tenant_settings", setting, value, at)
    # when drift is compared three snapshots at a time
    with db.session() as session:
        drafts = detect_snapshot_drift(session, shipped_checks(), limit=3)
    # then one call went through all eight (the change is in the last batch) and nothing waits
    assert [d.rule_id for d in drafts] == ["google.less_secure_apps_off"]
    assert not snapshots_pending(db)
