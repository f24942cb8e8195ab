"""Framework reports from a simulator tenant: failing controls with evidence, drift, exceptions, "as of"."""

from __future__ import annotations

import csv
import io
import time
from datetime import timedelta

import orjson
import pytest
from sqlmodel import select

from compliance.errors import ExceptionConflictError, ExceptionError
from compliance.exceptions import ExceptionRequest, approve_exception, expire_exception, request_exception
from compliance.exports import export_report
from compliance.frameworks import Framework
from compliance.render import ReportFormat, render
from compliance.report import ControlStatus, FrameworkReport, build_report
from core.audit import Actor, AuditAction, verify_database
from core.clock import utcnow
from core.models import AuditRecord, ConfigSnapshot, Connection
from providers.credentials import Secrets
from providers.m365 import m365_clients
from tests.compliance.conftest import AssessedTenant

ALICE = Actor.cli("principal:alice")
BOB = Actor.cli("principal:bob")


def _report(tenant: AssessedTenant, framework: Framework, **options: object) -> FrameworkReport:
    with tenant.db.session(readonly=True) as session:
        return build_report(session, framework, **options)  # type: ignore[arg-type]


def _check(report: FrameworkReport, control_id: str, check_id: str):  # type: ignore[no-untyped-def]
    control = next(c for c in report.controls if c.control_id == control_id)
    return control, next(r for r in control.checks if r.check_id == check_id)


@pytest.mark.parametrize("framework", list(Framework), ids=[f.value for f in Framework])
def test_each_framework_report_shows_a_failing_control_with_its_evidence(
    assessed_tenant: AssessedTenant, framework: Framework
) -> None:
    report = _report(assessed_tenant, framework)
    failing = [c for c in report.controls if c.status is ControlStatus.FAIL]
    assert failing, report.summary
    check = next(r for c in failing for r in c.checks if r.status == "fail")
    # evidence: the snapshots the check read, with their collection time and the values it reads
    assert check.evidence
    assert all(e.collected_at and e.snapshot_id for e in check.evidence)
    assert any(e.values for e in check.evidence)
    assert report.summary["fail"] == len(failing)
    assert sum(report.summary[s.value] for s in ControlStatus) == report.summary["controls_mapped"]
    # benchmarks speak about one provider only
    providers = {t["provider"] for t in report.tenants}
    if framework in (Framework.CIS_M365, Framework.SCUBA_M365):
        assert providers == {"m365"}
    elif framework in (Framework.CIS_GWS, Framework.SCUBA_GWS):
        assert providers == {"google"}
    else:  # the cross-provider frameworks cover every connected tenant
        with assessed_tenant.db.session(readonly=True) as session:
            connected = {c.provider for c in session.exec(select(Connection)).all()}
        assert providers == connected and {"m365", "google", "slack"} <= connected


def test_a_setting_turned_off_fails_its_control_with_drift_and_the_report_as_of_before_still_passes(
    assessed_tenant: AssessedTenant,
) -> None:
    # given the tenant blocks legacy authentication (MS.AAD.1.1v1 passes)
    before = _report(assessed_tenant, Framework.SCUBA_M365)
    control, check = _check(before, "MS.AAD.1.1v1", "m365.legacy_auth_blocked")
    assert control.status is ControlStatus.PASS and check.status == "pass"
    time.sleep(0.01)
    between = utcnow()
    time.sleep(0.01)
    # when an admin disables the blocking policy through Graph and the configuration is read again
    db = assessed_tenant.db
    with db.session(readonly=True) as session:
        m365 = session.exec(select(Connection).where(Connection.provider == "m365")).one()
        policy = next(
            s
            for s in session.exec(
                select(ConfigSnapshot).where(ConfigSnapshot.object_type == "ca_policy")
            ).all()
            if "block" in s.data["grantControls"]["builtInControls"] and s.data["state"] == "enabled"
        )
    graph = m365_clients(m365, Secrets(m365.secret_refs), retry_writes=True)
    response = graph.graph.patch(
        f"{graph.graph_base_url}/identity/conditionalAccess/policies/{policy.object_id}",
        json={"state": "disabled"},
    )
    assert response.ok, response.text
    assessed_tenant.reassess(streams=["ca_policies"])
    # then the control fails, the evidence shows the policy's new state and the drift names the change
    now = _report(assessed_tenant, Framework.SCUBA_M365)
    control, check = _check(now, "MS.AAD.1.1v1", "m365.legacy_auth_blocked")
    assert control.status is ControlStatus.FAIL and check.status == "fail"
    evidence = next(e for e in check.evidence if e.object_id == policy.object_id)
    assert evidence.values["state"] == "disabled"
    assert check.drift and "legacy" in check.drift[0]["title"].lower()
    # and the report as of before the change reproduces the passing posture from the stored snapshots
    then = _report(assessed_tenant, Framework.SCUBA_M365, at=between)
    control, check = _check(then, "MS.AAD.1.1v1", "m365.legacy_auth_blocked")
    assert control.status is ControlStatus.PASS and check.status == "pass" and check.drift == []
    assert next(e for e in check.evidence if e.object_id == policy.object_id).values["state"] == "enabled"


def test_an_approved_exception_excepts_the_control_until_it_is_expired_and_every_step_is_audited(
    assessed_tenant: AssessedTenant,
) -> None:
    db = assessed_tenant.db
    failing = _report(assessed_tenant, Framework.CIS_GWS)
    control = next(c for c in failing.controls if c.status is ControlStatus.FAIL)
    check_ids = {r.check_id for r in control.checks if r.status == "fail"}
    ids = []
    with db.session() as session:
        for check_id in sorted(check_ids):
            row = request_exception(
                session,
                ExceptionRequest(
                    check_id,
                    "ciso@example.com",
                    "compensating control: hardware keys",
                    utcnow() + timedelta(days=30),
                ),
                actor=ALICE,
            )
            ids.append(row.id)
    # a pending exception does not count; the requester cannot approve their own
    assert (
        _check(_report(assessed_tenant, Framework.CIS_GWS), control.control_id, sorted(check_ids)[0])[
            0
        ].status
        is ControlStatus.FAIL
    )
    with db.session() as session, pytest.raises(ExceptionConflictError, match="four eyes"):
        approve_exception(session, ids[0], actor=ALICE)
    for exception_id in ids:
        with db.session() as session:
            approve_exception(session, exception_id, actor=BOB)
    approved = _report(assessed_tenant, Framework.CIS_GWS)
    excepted, check = _check(approved, control.control_id, sorted(check_ids)[0])
    assert excepted.status is ControlStatus.EXCEPTED and check.excepted
    assert check.exceptions[0]["owner"] == "ciso@example.com" and check.exceptions[0]["state"] == "active"
    assert check.exceptions[0]["approved_by"] == BOB.name
    # when one is withdrawn, the control fails again
    with db.session() as session:
        expire_exception(session, ids[0], actor=BOB, reason="hardware keys not rolled out")
    assert (
        _check(_report(assessed_tenant, Framework.CIS_GWS), control.control_id, sorted(check_ids)[0])[
            0
        ].status
        is ControlStatus.FAIL
    )
    with db.session() as session, pytest.raises(ExceptionConflictError, match="already"):
        expire_exception(session, ids[0], actor=BOB, reason="again")
    with db.session(readonly=True) as session:
        actions = [
            r.action
            for r in session.exec(
                select(AuditRecord).where(AuditRecord.object_type == "compliance_exception")
            ).all()
        ]
        assert actions.count(AuditAction.COMPLIANCE_EXCEPTION_REQUESTED.value) == len(ids)
        assert actions.count(AuditAction.COMPLIANCE_EXCEPTION_APPROVED.value) == len(ids)
        assert actions.count(AuditAction.COMPLIANCE_EXCEPTION_EXPIRED.value) == 1
        assert verify_database(session).ok


def test_bad_exception_requests_are_refused_naming_what_is_wrong(assessed_tenant: AssessedTenant) -> None:
    soon = utcnow() + timedelta(days=10)
    cases = [
        (ExceptionRequest("m365.no_such_check", "o", "a good long reason", soon), "no posture check"),
        (ExceptionRequest("m365.mfa_admins", " ", "a good long reason", soon), "owner"),
        (ExceptionRequest("m365.mfa_admins", "o", "short", soon), "reason"),
        (
            ExceptionRequest("m365.mfa_admins", "o", "a good long reason", utcnow() - timedelta(days=1)),
            "not in the future",
        ),
        (
            ExceptionRequest("m365.mfa_admins", "o", "a good long reason", utcnow() + timedelta(days=400)),
            "366",
        ),
    ]
    for request, message in cases:
        with assessed_tenant.db.session() as session, pytest.raises(ExceptionError, match=message):
            request_exception(session, request, actor=ALICE)


def test_renderings_carry_the_same_controls_and_the_export_is_audited(
    assessed_tenant: AssessedTenant,
) -> None:
    report, body = export_report(assessed_tenant.db, Framework.ISO27001, ReportFormat.JSON, actor=ALICE)
    data = orjson.loads(body)
    assert [c["control_id"] for c in data["controls"]] == [c.control_id for c in report.controls]
    rows = list(csv.DictReader(io.StringIO(render(report, ReportFormat.CSV).decode())))
    assert {r["control_id"] for r in rows} == {c.control_id for c in report.controls}
    failing_row = next(r for r in rows if r["check_status"] == "fail")
    assert failing_row["evidence_collected_at"] and orjson.loads(failing_row["evidence"])
    html = render(report, ReportFormat.HTML).decode()
    assert all(f'id="{c.control_id}"' in html for c in report.controls)
    assert "<script" not in html
    pdf = render(report, ReportFormat.PDF)
    assert pdf.startswith(b"%PDF-") and len(pdf) > 1000
    with assessed_tenant.db.session(readonly=True) as session:
        exported = session.exec(
            select(AuditRecord).where(AuditRecord.action == AuditAction.COMPLIANCE_REPORT_EXPORTED.value)
        ).one()
        assert exported.object_id == "iso27001" and exported.details["format"] == "json"
