"""The compliance officer's pages in a real browser, against the real `tenantguard serve` process.

Given the console's database (two simulator tenants after one cycle: posture evaluated on their
configuration snapshots) and one principal per role, when a compliance officer works through the
compliance pages, then reports show each failing control's evidence, exceptions need a second
person's approval (refused on one's own request, server side), legal holds are placed and released,
every change is in the database and the audit chain under the person's name, and the evidence
package and open-format exports download and verify. Roles without the permission see no form, and
the server refuses them when they post anyway.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlmodel import select

from compliance.evidence import verify_package
from compliance.frameworks import Framework
from compliance.report import build_report
from core.audit import AuditAction
from core.models import AuditRecord, ComplianceException, LegalHold
from tests.console.conftest import (
    VIEWPORTS,
    ConsoleServer,
    axe_violations,
    post_behind_the_form,
    shoot,
    sign_in,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def _failing(console: ConsoleServer) -> tuple[Framework, str, str, int, str]:
    """A framework, control, check, tenant and failing object the stored snapshots give (read as
    the report reads them), so the browser can be asked to show that very evidence."""
    with console.db.session(readonly=True) as session:
        for framework in (Framework.CIS_M365, Framework.SCUBA_M365, Framework.CIS_GWS, Framework.SOC2):
            report = build_report(session, framework)
            for control in report.controls:
                if control.status.value != "fail":
                    continue
                for check in control.checks:
                    failing = check.status == "fail" and not check.excepted and check.failing_object_ids
                    if failing and check.connection_id:
                        return (
                            framework,
                            control.control_id,
                            check.check_id,
                            check.connection_id,
                            check.failing_object_ids[0],
                        )
    raise AssertionError("no failing control in any report of the simulator tenants")


def _audit(console: ConsoleServer, action: AuditAction, actor: str) -> list[AuditRecord]:
    with console.db.session(readonly=True) as session:
        return list(
            session.exec(
                select(AuditRecord).where(AuditRecord.action == action.value, AuditRecord.actor == actor)
            ).all()
        )


def test_a_compliance_officer_reads_a_failing_controls_evidence_and_downloads_the_report(
    console: ConsoleServer, new_page: Any, tmp_path: Path
) -> None:
    expect = _expect()
    framework, control_id, check_id, connection_id, failing_object = _failing(console)
    page = new_page(accept_downloads=True)
    sign_in(page, console, "compliance_officer")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Compliance").click()
    expect(page.get_by_role("heading", name="Framework reports")).to_be_visible()
    shoot(page, "compliance")
    # when they open the framework's report for one tenant through the form
    page.get_by_label("Framework", exact=True).select_option(framework.value)
    page.get_by_label("Tenant", exact=True).select_option(str(connection_id))
    page.get_by_role("button", name="Open report").click()
    expect(page).to_have_url(re.compile(rf"/console/compliance/frameworks/{framework.value}\?connection_id="))
    # then the failing control is open, its check failing on that tenant, with the failing object
    control = page.get_by_test_id(f"control-{control_id}")
    expect(control).to_have_attribute("data-status", "fail")
    row = control.get_by_test_id(f"check-{check_id}-{connection_id}")
    expect(row.locator(".status")).to_have_text("fail")
    row.locator("details.evidence > summary").click()
    expect(row.locator("details.evidence")).to_contain_text(failing_object)
    expect(row.locator("details.evidence")).to_contain_text("fails")
    shoot(page, "compliance-report")
    # and the CSV download is the stage's rendering, recorded as an export by this person
    before = len(_audit(console, AuditAction.COMPLIANCE_REPORT_EXPORTED, "principal:compliance_officer-1"))
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    path = tmp_path / "report.csv"
    download.value.save_as(path)
    text = path.read_text()
    assert text.startswith("framework,at,control_id")
    assert f"{control_id}," in text and check_id in text
    after = _audit(console, AuditAction.COMPLIANCE_REPORT_EXPORTED, "principal:compliance_officer-1")
    assert len(after) == before + 1 and after[-1].details["format"] == "csv"
    assert after[-1].details["tenant"] == connection_id


def test_an_exception_needs_a_second_compliance_officer(console: ConsoleServer, new_page: Any) -> None:
    expect = _expect()
    framework, control_id, check_id, connection_id, _ = _failing(console)
    asker = new_page()
    sign_in(asker, console, "compliance_officer")
    asker.goto("/console/compliance/exceptions")
    # when the officer asks to accept the failing check on that tenant
    asker.get_by_label("Posture check").select_option(check_id)
    asker.get_by_label("Tenant", exact=True).select_option(str(connection_id))
    asker.get_by_label("Owner").fill("it-security@example.com")
    asker.get_by_label("Reason").fill("Compensating control: conditional access blocks legacy clients.")
    asker.get_by_role("button", name="Request exception").click()
    expect(asker.get_by_role("status")).to_contain_text("requested")
    with console.db.session(readonly=True) as session:
        row = session.exec(select(ComplianceException).where(ComplianceException.check_id == check_id)).one()
    assert row.requested_by == "principal:compliance_officer-1" and row.approved_at is None
    assert row.connection_id == connection_id
    line = asker.get_by_test_id(f"exception-{row.id}")
    expect(line.get_by_test_id("exception-state")).to_have_text("pending")
    # then approving their own request is refused by the server (four eyes)
    line.get_by_role("button", name=f"Approve exception {row.id}").click()
    expect(asker.get_by_role("alert")).to_contain_text("four eyes")
    expect(asker.get_by_test_id(f"exception-{row.id}").get_by_test_id("exception-state")).to_have_text(
        "pending"
    )
    shoot(asker, "compliance-exceptions")
    # and a second compliance officer approves it: in force, and the report shows it excepted
    second = new_page()
    sign_in(second, console, "compliance_officer-2")
    second.goto("/console/compliance/exceptions")
    second.get_by_role("button", name=f"Approve exception {row.id}").click()
    expect(second.get_by_role("status")).to_contain_text(f"exception {row.id} approved")
    expect(second.get_by_test_id(f"exception-{row.id}").get_by_test_id("exception-state")).to_have_text(
        "active"
    )
    with console.db.session(readonly=True) as session:
        approved = session.get(ComplianceException, row.id)
        assert approved is not None and approved.approved_by == "principal:compliance_officer-2"
    assert [
        r.object_id
        for r in _audit(console, AuditAction.COMPLIANCE_EXCEPTION_APPROVED, "principal:compliance_officer-2")
    ] == [str(row.id)]
    assert _audit(console, AuditAction.COMPLIANCE_EXCEPTION_APPROVED, "principal:compliance_officer-1") == []
    second.goto(f"/console/compliance/frameworks/{framework.value}?connection_id={connection_id}")
    check = second.get_by_test_id(f"control-{control_id}").get_by_test_id(f"check-{check_id}-{connection_id}")
    expect(check.locator(".status")).to_have_text("excepted")
    expect(check).to_contain_text(f"exception #{row.id} (active)")


def test_an_auditor_reads_but_may_not_request_approve_or_hold(console: ConsoleServer, new_page: Any) -> None:
    expect = _expect()
    page = new_page()
    sign_in(page, console, "auditor")
    page.goto("/console/compliance/exceptions")
    expect(page.get_by_role("heading", name="Exceptions", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Request exception")).to_have_count(0)
    with console.db.session(readonly=True) as session:
        before = len(session.exec(select(ComplianceException)).all())
    refused = post_behind_the_form(
        page,
        "/console/compliance/exceptions",
        {"check_id": "m365-mfa-admins", "owner": "x", "reason": "because I said so", "expires": "2099-01-01"},
    )
    assert refused.status == 403 and "compliance:write" in refused.text()
    page.goto("/console/compliance/retention")
    expect(page.get_by_role("heading", name="Legal holds", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Place hold")).to_have_count(0)
    refused = post_behind_the_form(
        page, "/console/compliance/holds", {"kind": "person", "target": "a@example.com", "reason": "case 1"}
    )
    assert refused.status == 403 and "legal_hold:write" in refused.text()
    with console.db.session(readonly=True) as session:
        assert len(session.exec(select(ComplianceException)).all()) == before
        assert session.exec(select(LegalHold).where(LegalHold.target == "a@example.com")).first() is None
    # and an analyst may not open the compliance pages at all
    analyst = new_page()
    sign_in(analyst, console, "analyst")
    expect(
        analyst.get_by_role("navigation", name="Main").get_by_role("link", name="Compliance")
    ).to_have_count(0)
    response = analyst.goto("/console/compliance")
    assert response is not None and response.status == 403


def test_a_compliance_officer_places_and_releases_a_legal_hold(console: ConsoleServer, new_page: Any) -> None:
    expect = _expect()
    incident_id = console.api("GET", "/incidents?priority=P1&limit=1", "compliance_officer")["items"][0]["id"]
    page = new_page()
    sign_in(page, console, "compliance_officer")
    page.goto("/console/compliance/retention")
    expect(page.get_by_test_id("retention-incidents")).to_contain_text("730 days")
    expect(page.get_by_test_id("retention-events")).to_contain_text("kept for ever")
    page.get_by_label("What", exact=True).select_option("incident")
    page.get_by_label("Incident number or the person's e-mail address").fill(str(incident_id))
    page.get_by_label("Matter or case").fill("Litigation 2026-114: preserve the takeover incident")
    page.get_by_role("button", name="Place hold").click()
    expect(page.get_by_role("status")).to_contain_text(f"placed on incident {incident_id}")
    with console.db.session(readonly=True) as session:
        hold = session.exec(
            select(LegalHold).where(LegalHold.kind == "incident", LegalHold.target == str(incident_id))
        ).one()
    assert hold.placed_by == "principal:compliance_officer-1" and hold.released_at is None
    assert [
        r.object_id for r in _audit(console, AuditAction.LEGAL_HOLD_PLACED, "principal:compliance_officer-1")
    ] == [str(hold.id)]
    # the API sees the same hold in force
    listed = console.api("GET", "/compliance/holds?active=true", "auditor")
    assert [h["id"] for h in listed] == [hold.id]
    line = page.get_by_test_id(f"hold-{hold.id}")
    expect(line.get_by_test_id("hold-state")).to_have_text("in force")
    shoot(page, "compliance-retention")
    # placing the same hold twice is refused with a reason
    page.get_by_label("What", exact=True).select_option("incident")
    page.get_by_label("Incident number or the person's e-mail address").fill(str(incident_id))
    page.get_by_label("Matter or case").fill("the same matter again")
    page.get_by_role("button", name="Place hold").click()
    expect(page.get_by_role("alert")).to_contain_text(f"already on legal hold #{hold.id}")
    # when it is released, with a reason
    line = page.get_by_test_id(f"hold-{hold.id}")
    line.get_by_label(f"Why hold {hold.id} is released").fill("matter settled")
    line.get_by_role("button", name=f"Release hold {hold.id}").click()
    expect(page.get_by_test_id(f"hold-{hold.id}").get_by_test_id("hold-state")).to_contain_text("released")
    with console.db.session(readonly=True) as session:
        released = session.get(LegalHold, hold.id)
        assert released is not None and released.release_reason == "matter settled"
        assert released.released_by == "principal:compliance_officer-1"
    assert console.api("GET", "/compliance/holds?active=true", "auditor") == []


def test_an_auditor_downloads_an_evidence_package_that_verifies_and_the_open_format_exports(
    console: ConsoleServer, new_page: Any, tmp_path: Path
) -> None:
    expect = _expect()
    page = new_page(accept_downloads=True)
    sign_in(page, console, "auditor")
    page.goto("/console/compliance")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download evidence package").click()
    package = tmp_path / download.value.suggested_filename
    download.value.save_as(package)
    check = verify_package(package)
    assert check.ok, check.reason
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
    assert {"audit.jsonl", "manifest.json", "manifest.sig", "reports/cis-m365.json"} <= names
    assert any(n.startswith("incidents/") for n in names)
    assert len(_audit(console, AuditAction.COMPLIANCE_EVIDENCE_PACKAGED, "principal:auditor-1")) == 1
    # an altered copy no longer verifies
    altered = tmp_path / "altered.zip"
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(altered, "w") as target:
        for name in source.namelist():
            body = source.read(name)
            target.writestr(name, body + b" " if name == "approvals.jsonl" else body)
    assert not verify_package(altered).ok
    # and the findings export link streams OCSF events
    with page.expect_download() as download:
        page.get_by_role("listitem").filter(has_text="Findings").get_by_role("link", name="OCSF").click()
    findings = tmp_path / "findings.jsonl"
    download.value.save_as(findings)
    events = [orjson.loads(line) for line in findings.read_bytes().splitlines() if line]
    assert events and {e["class_uid"] for e in events} <= {2003, 2004}
    with page.expect_download() as download:
        page.get_by_role("listitem").filter(has_text="Incidents").get_by_role("link", name="CSV").click()
    incidents = tmp_path / "incidents.csv"
    download.value.save_as(incidents)
    assert len(incidents.read_text().splitlines()) > 1
    expect(page.get_by_role("heading", name="Open-format exports")).to_be_visible()


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_the_compliance_pages_have_no_axe_violations(
    console: ConsoleServer, new_page: Any, viewport: str
) -> None:
    expect = _expect()
    width, height = VIEWPORTS[viewport]
    page = new_page(width=width, height=height)
    sign_in(page, console, "compliance_officer")
    for path in (
        "/console/compliance",
        f"/console/compliance/frameworks/{Framework.CIS_M365.value}",
        "/console/compliance/exceptions",
        "/console/compliance/retention",
    ):
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        page.locator("details").evaluate_all("all => all.forEach(d => d.open = true)")
        assert axe_violations(page) == "", f"{path} at {viewport}"
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than a {width}px screen"
