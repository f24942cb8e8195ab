"""The console in a real browser, against the real `tenantguard serve` process.

Given a database the cycle filled from two simulator tenants (an account takeover and an admin
privilege abuse, each one P1 incident with a remediation plan) and one principal per role, when
people sign in and work through the pages, then each sees and may do what the permission matrix
says, and every change is made by the same service functions (and audit chain) as the API's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from core.audit import verify_export
from tests.console.conftest import ConsoleServer, sign_in
from tests.console.conftest import shoot as _shoot

# The first test of a module also starts the simulators, the cycle and serve: allow for a loaded machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


READ = ("Incidents", "Approvals", "On call", "Posture", "People", "Rules", "Metrics")


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def _p1(console: ConsoleServer, words: str) -> int:
    items = console.api("GET", "/incidents?priority=P1&limit=50", "analyst")["items"]
    [incident] = [i for i in items if words in i["title"]]
    return int(incident["id"])


@pytest.mark.parametrize(
    ("role", "links", "can_triage"),
    [
        ("viewer", [*READ], False),
        ("analyst", [*READ], True),
        ("approver", [*READ], True),
        ("auditor", [*READ, "Compliance", "Audit"], False),
        ("compliance_officer", [*READ, "Compliance", "Audit"], False),
        ("admin", [*READ, "Compliance", "Audit"], True),
    ],
)
def test_each_role_sees_and_may_do_what_the_matrix_says(
    console: ConsoleServer, new_page: Any, role: str, links: list[str], can_triage: bool
) -> None:
    expect = _expect()
    page = new_page()
    sign_in(page, console, role)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link")).to_have_text(links)
    page.goto(f"/console/incidents/{_p1(console, 'Privileged role')}")
    lifecycle = page.get_by_role("heading", name="Lifecycle")
    expect(page.get_by_test_id("status")).to_be_visible()
    if can_triage:
        expect(lifecycle).to_be_visible()
    else:
        expect(lifecycle).to_have_count(0)
    response = page.goto("/console/audit")
    if "Audit" in links:
        expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    else:
        assert response is not None and response.status == 403
        expect(page.get_by_role("alert")).to_contain_text("audit:export")


def test_an_analyst_triages_an_incident_from_the_queue_to_resolved(
    console: ConsoleServer, new_page: Any
) -> None:
    expect = _expect()
    page = new_page()
    sign_in(page, console, "analyst")
    _shoot(page, "queue")
    # given a P3 in the queue (the simulated stories are P1s, and other tests'), filtered to P3,
    # when the analyst opens its first incident
    from tests.factories import make_finding, make_incident

    low = make_incident(console.db, "Unfamiliar sign-in to review", priority="P3", severity="medium")
    make_finding(console.db, "Sign-in from an unfamiliar country", incident_id=low.id, severity="medium")
    lowest = "P3"
    page.get_by_role("checkbox", name=lowest).check()
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(rf"priority={lowest}"))
    first = page.get_by_role("table").get_by_role("link").first
    title = first.inner_text()
    first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(title.split(" ", 1)[1][:30])
    _shoot(page, "incident")
    # when they assign it to themselves and move it through the lifecycle
    page.get_by_label("Assign to").fill("analyst-1")
    page.get_by_role("button", name="Assign").click()
    expect(page.get_by_test_id("assignee")).to_have_text("analyst-1")
    for status in ("triaged", "contained", "resolved"):
        page.get_by_label("Move to").select_option(status)
        page.get_by_label("Note", exact=True).fill(f"moved to {status} from the console")
        page.get_by_role("button", name="Move", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text(f"moved to {status}")
        expect(page.get_by_test_id("status")).to_have_text(status)
    # then the timeline shows each change by the analyst, and the queue no longer lists it as open
    expect(page.locator(".timeline")).to_contain_text("resolved")
    expect(page.locator(".timeline .actor").first).to_be_visible()
    page.goto("/console/incidents")
    expect(page.get_by_role("table")).not_to_contain_text(title)


def test_the_incident_page_updates_live_when_someone_else_adds_a_note(
    console: ConsoleServer, new_page: Any
) -> None:
    expect = _expect()
    page = new_page()
    sign_in(page, console, "analyst")
    incident_id = _p1(console, "Password spray")
    page.goto(f"/console/incidents/{incident_id}")
    live = page.locator("#live")
    expect(live).to_have_attribute("data-live", "on")  # the event stream is open
    before = int(page.get_by_test_id("timeline-total").inner_text())
    # when another analyst adds a note through the API
    console.api(
        "POST",
        f"/incidents/{incident_id}/notes",
        "analyst-2",
        b'{"text": "Called the user: not travelling."}',
    )
    # then the page shows it without a reload
    expect(live).to_have_attribute("data-updates", "1")
    expect(page.locator(".timeline")).to_contain_text("Called the user")
    assert int(page.get_by_test_id("timeline-total").inner_text()) == before + 1


def test_an_approver_approves_a_step_an_analyst_requested_and_it_runs_against_the_simulator(
    console: ConsoleServer, new_page: Any
) -> None:
    expect = _expect()
    incident_id = _p1(console, "Password spray")
    analyst = new_page()
    sign_in(analyst, console, "analyst")
    analyst.goto(f"/console/incidents/{incident_id}")
    if analyst.get_by_role("button", name="Propose remediation").count():
        analyst.get_by_role("button", name="Propose remediation").click()
        expect(analyst.get_by_role("status")).to_contain_text("remediation proposed")
    # when the approver opens the step in the inbox
    approver = new_page()
    sign_in(approver, console, "approver")
    approver.get_by_role("navigation", name="Main").get_by_role("link", name="Approvals").click()
    _shoot(approver, "approvals")
    approver.get_by_role("link", name="Disable the account").first.click()
    # then it shows the exact calls the step will make, without making them
    calls = approver.get_by_test_id("dry-run-calls")
    expect(calls).to_contain_text("PATCH")
    _shoot(approver, "approval-step")
    changes_before = len(console.simulator.changes)
    approver.get_by_label("Comment").fill("confirmed with the user's manager")
    approver.get_by_role("button", name="Approve").click()
    expect(approver.get_by_test_id("step-status")).to_have_text("approved")
    # and when the analyst runs the approved steps, they run against the simulated tenant
    analyst.once("dialog", lambda dialog: dialog.accept())
    analyst.goto(f"/console/incidents/{incident_id}")
    analyst.get_by_role("button", name="Run approved steps").click()
    expect(analyst.get_by_role("status")).to_contain_text("m365.disable_account")
    expect(analyst.get_by_test_id("step-m365.disable_account").locator(".step-status")).to_have_text(
        "succeeded"
    )
    assert len(console.simulator.changes) > changes_before


def test_an_approver_is_refused_on_their_own_request(console: ConsoleServer, new_page: Any) -> None:
    expect = _expect()
    incident_id = _p1(console, "Privileged role")
    page = new_page()
    sign_in(page, console, "approver")
    page.goto(f"/console/incidents/{incident_id}")
    page.get_by_role("button", name="Propose remediation").click()
    expect(page.get_by_role("status")).to_contain_text("remediation proposed")
    page.get_by_test_id("step-m365.revoke_sessions").get_by_role("link").click()
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("alert")).to_contain_text("cannot approve it")
    expect(page.get_by_test_id("step-status")).to_have_text("proposed")


def test_posture_and_metrics_charts_render_with_data(console: ConsoleServer, new_page: Any) -> None:
    expect = _expect()
    page = new_page()
    sign_in(page, console, "viewer")
    page.goto("/console/posture")
    charts = page.locator("svg.chart")
    expect(charts.first).to_be_visible()
    assert charts.count() >= 2
    assert page.locator("svg.chart rect").count() >= 3
    expect(page.locator("svg.chart desc").first).to_contain_text("%")
    _shoot(page, "posture")
    page.goto("/console/metrics")
    expect(page.get_by_role("img", name="Incidents by priority")).to_contain_text("P1")
    widths = page.locator("svg.chart rect").evaluate_all(
        "rects => rects.map(r => Number(r.getAttribute('width')))"
    )
    assert any(w > 0 for w in widths), widths
    _shoot(page, "metrics")


def test_an_auditor_exports_the_audit_trail_and_it_verifies(
    console: ConsoleServer, new_page: Any, tmp_path: Path
) -> None:
    expect = _expect()
    page = new_page(accept_downloads=True)
    sign_in(page, console, "auditor")
    page.goto("/console/audit")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download JSONL").click()
    export = tmp_path / "audit.jsonl"
    download.value.save_as(export)
    result = verify_export(export)
    assert result.ok and result.records > 5, result
    page.get_by_role("button", name="Verify the live chain").click()
    expect(page.get_by_test_id("verdict")).to_contain_text("Intact")
    page.get_by_label("Export file").set_input_files(export)
    page.get_by_role("button", name="Verify the file").click()
    expect(page.get_by_test_id("verdict")).to_contain_text(f"all {result.records} records verify")
    _shoot(page, "audit")


def test_docs_work_offline(console: ConsoleServer, new_page: Any) -> None:
    expect = _expect()
    page = new_page()
    elsewhere: list[str] = []

    def only_here(route: Any) -> None:
        if route.request.url.startswith(console.base_url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_here)
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("tenantguard")
    assert elsewhere == []


def test_people_and_rules_pages_show_risk_access_and_coverage(console: ConsoleServer, new_page: Any) -> None:
    expect = _expect()
    page = new_page()
    sign_in(page, console, "viewer")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="People").click()
    page.get_by_role("table").get_by_role("link").first.click()
    expect(page.get_by_role("heading", name="Risk factors")).to_be_visible()
    expect(page.get_by_test_id("risk")).not_to_be_empty()
    expect(page.get_by_role("heading", name="What they can access")).to_be_visible()
    _shoot(page, "person")
    page.goto("/console/rules")
    expect(page.get_by_role("img", name="Detection rules by provider")).to_contain_text("m365")
    expect(page.get_by_role("table")).to_contain_text("T1")
