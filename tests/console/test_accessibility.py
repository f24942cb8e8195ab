"""Accessibility: axe-core (from the axe-playwright-python package) finds nothing on the main pages,
at 1280 px and on a phone, and the queue can be worked with the keyboard alone.

Given the console with data, when each main page is loaded at a desktop and a phone viewport,
then axe reports no violation of WCAG 2.1 A/AA, and nothing is wider than the phone's screen.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.console.conftest import VIEWPORTS, ConsoleServer, shoot, sign_in
from tests.console.conftest import axe_violations as _violations

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
PAGES = [
    "/console/incidents",
    "/console/approvals",
    "/console/posture",
    "/console/people",
    "/console/rules",
    "/console/metrics",
    "/console/audit",
    "/console/oncall",
    "/console/compliance",
    "/console/compliance/exceptions",
    "/console/compliance/retention",
]


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_the_main_pages_have_no_axe_violations(console: ConsoleServer, new_page: Any, viewport: str) -> None:
    from playwright.sync_api import expect

    width, height = VIEWPORTS[viewport]
    page = new_page(width=width, height=height)
    page.goto("/console/login")
    assert _violations(page) == ""
    sign_in(page, console, "admin")
    incident_id = console.api("GET", "/incidents?priority=P1&limit=1", "admin")["items"][0]["id"]
    for path in [*PAGES, f"/console/incidents/{incident_id}"]:
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        assert _violations(page) == "", f"{path} at {viewport}"
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than a {width}px screen"
        if viewport == "phone" and path == PAGES[0]:
            shoot(page, "queue-phone")


def test_an_incident_can_be_opened_with_the_keyboard_alone(console: ConsoleServer, new_page: Any) -> None:
    from playwright.sync_api import expect

    page = new_page()
    sign_in(page, console, "analyst")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    first = page.get_by_role("table").get_by_role("link").first
    first.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("status")).to_be_visible()
