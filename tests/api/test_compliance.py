"""Compliance over HTTP: framework reports for compliance officers, exceptions with four eyes, all audited."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import select

from compliance.frameworks import Framework
from core.audit import AuditAction
from core.clock import isoformat, utcnow
from core.db import Database
from core.models import AuditRecord, ComplianceException, Role
from tests.compliance.conftest import AssessedTenant, assessed_tenant  # noqa: F401 - the fixture


def test_a_compliance_officer_reads_each_framework_report_and_a_viewer_may_not(
    client: TestClient,
    as_role: Callable[[Role], dict[str, str]],
    assessed_tenant: AssessedTenant,  # noqa: F811
) -> None:
    officer = as_role(Role.COMPLIANCE_OFFICER)
    listed = client.get("/compliance/frameworks", headers=officer)
    assert listed.status_code == 200
    assert {f["id"] for f in listed.json()} == {f.value for f in Framework}
    for framework in Framework:
        report = client.get(f"/compliance/frameworks/{framework.value}/report", headers=officer)
        assert report.status_code == 200, report.text
        body = report.json()
        failing = [c for c in body["controls"] if c["status"] == "fail"]
        assert failing, (framework, body["summary"])
        assert any(e["collected_at"] for c in failing for r in c["checks"] for e in r["evidence"])
    csv_body = client.get("/compliance/frameworks/soc2/report", params={"format": "csv"}, headers=officer)
    assert csv_body.headers["content-type"].startswith("text/csv")
    assert any(row["check_status"] == "fail" for row in csv.DictReader(io.StringIO(csv_body.text)))
    html = client.get("/compliance/frameworks/soc2/report", params={"format": "html"}, headers=officer)
    assert html.headers["content-type"].startswith("text/html") and "CC6.1" in html.text
    pdf = client.get("/compliance/frameworks/soc2/report", params={"format": "pdf"}, headers=officer)
    assert pdf.content.startswith(b"%PDF-")
    # as of a time before anything was collected: nothing is assessed
    early = client.get(
        "/compliance/frameworks/soc2/report", params={"at": "2020-01-01T00:00:00Z"}, headers=officer
    ).json()
    assert early["summary"]["fail"] == 0 and early["summary"]["pass"] == 0
    assert client.get("/compliance/frameworks/pci/report", headers=officer).status_code == 404
    assert client.get("/compliance/frameworks/soc2/report", headers=as_role(Role.VIEWER)).status_code == 403
    assert client.get("/compliance/frameworks/soc2/report", headers=as_role(Role.AUDITOR)).status_code == 200


def test_exceptions_need_a_second_person_and_each_change_is_audited_with_it(
    client: TestClient,
    make_principal: Callable[..., str],
    as_role: Callable[[Role], dict[str, str]],
    db: Database,
) -> None:
    alice = {"Authorization": f"Bearer {make_principal(Role.COMPLIANCE_OFFICER, name='alice').token}"}
    bob = {"Authorization": f"Bearer {make_principal(Role.COMPLIANCE_OFFICER, name='bob').token}"}
    body = {
        "check_id": "slack.sso_required",
        "owner": "it-director@example.com",
        "reason": "SSO rollout for contractors ends in March",
        "expires_at": isoformat(utcnow() + timedelta(days=60)),
    }
    assert client.post("/compliance/exceptions", json=body, headers=as_role(Role.ANALYST)).status_code == 403
    bad = client.post("/compliance/exceptions", json={**body, "check_id": "slack.nope"}, headers=alice)
    assert bad.status_code == 422 and "slack.nope" in bad.json()["detail"], bad.text
    created = client.post("/compliance/exceptions", json=body, headers=alice)
    assert created.status_code == 201, created.text
    exception_id = created.json()["id"]
    assert created.json()["state"] == "pending"
    own = client.post(f"/compliance/exceptions/{exception_id}/approve", headers=alice)
    assert own.status_code == 409 and "four eyes" in own.json()["detail"]
    approved = client.post(f"/compliance/exceptions/{exception_id}/approve", headers=bob)
    assert approved.status_code == 200 and approved.json()["state"] == "active"
    expired = client.post(
        f"/compliance/exceptions/{exception_id}/expire", json={"reason": "rolled out"}, headers=alice
    )
    assert expired.status_code == 200 and expired.json()["state"] == "withdrawn"
    again = client.post(f"/compliance/exceptions/{exception_id}/expire", json={"reason": "x"}, headers=alice)
    assert again.status_code == 409
    assert client.post("/compliance/exceptions/987654/approve", headers=bob).status_code == 404
    listed = client.get("/compliance/exceptions", headers=as_role(Role.AUDITOR)).json()
    assert [e["id"] for e in listed] == [exception_id]
    with db.session(readonly=True) as session:
        records = session.exec(
            select(AuditRecord)
            .where(AuditRecord.object_type == "compliance_exception")
            .order_by(AuditRecord.seq)
        ).all()
        assert [(r.action, r.actor) for r in records] == [
            (AuditAction.COMPLIANCE_EXCEPTION_REQUESTED.value, "principal:alice"),
            (AuditAction.COMPLIANCE_EXCEPTION_APPROVED.value, "principal:bob"),
            (AuditAction.COMPLIANCE_EXCEPTION_EXPIRED.value, "principal:alice"),
        ]
        assert records[1].details["before"]["approved_by"] is None
        assert records[1].details["after"]["approved_by"] == "principal:bob"
        assert records[0].details["request_id"]
        assert len(session.exec(select(ComplianceException)).all()) == 1


def test_findings_export_as_ocsf_for_a_compliance_officer(
    client: TestClient, as_role: Callable[[Role], dict[str, str]], make_finding: Callable[..., object]
) -> None:
    make_finding()
    make_finding()
    response = client.get(
        "/compliance/findings/export", params={"format": "ocsf"}, headers=as_role(Role.COMPLIANCE_OFFICER)
    )
    assert response.status_code == 200
    events = [line for line in response.text.splitlines() if line]
    assert len(events) == 2 and all('"class_uid":200' in e for e in events)
    assert client.get("/compliance/findings/export", headers=as_role(Role.ANALYST)).status_code == 403
