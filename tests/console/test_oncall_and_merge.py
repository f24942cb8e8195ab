"""The on-call board (drag-and-drop and keyboard overrides) and incident merge/split, in a real browser.

Given the console's database with an on-call document applied through the API (three responders on
a daily rotation in Europe/Paris, handing off at 09:00), when an admin drags a day's block onto
another person's row, or hands it over with the keyboard alone, then the schedule gains that
override through the same store function the API's override route calls, audited under the admin's
name, and the API's coverage answers the new person. An analyst sees the board without handles and
is refused when posting anyway. On the incident page an analyst merges one incident into another
and splits a finding off into a new incident (timeline.lifecycle, as the API), which a viewer may not.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from sqlmodel import col, select

from core.audit import AuditAction
from core.models import AuditRecord, Finding, Incident
from oncall.store import get_schedule
from tests.console.conftest import (
    VIEWPORTS,
    ConsoleServer,
    axe_violations,
    post_behind_the_form,
    shoot,
    sign_in,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
# A week long ago enough and far enough ahead that nothing else writes there: the board is a pure
# function of the stored schedule, so fixed dates make it deterministic.
MONDAY = "2030-01-07"
BOARD = f"/console/oncall/primary?start={MONDAY}&days=7"
DOCUMENT = {
    "responders": [
        {"name": "alice", "email": "alice@example.com"},
        {"name": "bob", "email": "bob@example.com"},
        {"name": "carol", "email": "carol@example.com"},
    ],
    "schedules": [
        {
            "name": "primary",
            "timezone": "Europe/Paris",
            "layers": [
                {
                    "name": "days",
                    "users": ["alice", "bob", "carol"],
                    "rotation": "daily",
                    "start": "2030-01-07T09:00:00",
                }
            ],
        }
    ],
}


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


@pytest.fixture(scope="module")
def oncall(console: ConsoleServer) -> ConsoleServer:
    console.api("PUT", "/oncall/config", "admin", orjson.dumps(DOCUMENT))
    return console


def _overrides(console: ConsoleServer) -> list[tuple[str, str, str]]:
    with console.db.session(readonly=True) as session:
        schedule = get_schedule(session, "primary")
    return [(o.user, o.start.isoformat(), o.end.isoformat()) for o in schedule.overrides]


def _on_call(console: ConsoleServer, at: str) -> str:
    answer = console.api("GET", f"/oncall/schedules/primary/now?at={at}", "viewer")
    return str(answer["on_call"])


def test_an_admin_drags_a_shift_to_another_person_and_the_schedule_has_the_override(
    oncall: ConsoleServer, new_page: Any
) -> None:
    expect = _expect()
    page = new_page()
    sign_in(page, oncall, "admin")
    page.goto(BOARD)
    # Monday 09:00 Paris (08:00 UTC) to midnight is alice's, the first of the rotation
    block = page.get_by_test_id("lane-alice").get_by_test_id("shift-20300107T0800-alice")
    expect(block).to_contain_text("09:00–24:00")
    shoot(page, "oncall")
    assert _on_call(oncall, "2030-01-07T12:00:00Z") == "alice"
    # when it is dropped on bob's row
    block.drag_to(page.get_by_test_id("lane-bob").locator("th"))
    expect(page.get_by_role("status")).to_contain_text("bob is on call Mon 07 Jan 09:00–Tue 08 Jan 00:00")
    # then bob has it on the board, in the stored schedule, in the API's answer and in the audit chain
    expect(page.get_by_test_id("lane-bob").get_by_test_id("shift-20300107T0800-bob")).to_be_visible()
    expect(page.get_by_test_id("lane-alice").get_by_test_id("shift-20300107T0800-alice")).to_have_count(0)
    assert _overrides(oncall) == [("bob", "2030-01-07T08:00:00+00:00", "2030-01-07T23:00:00+00:00")]
    assert _on_call(oncall, "2030-01-07T12:00:00Z") == "bob"
    with oncall.db.session(readonly=True) as session:
        record = session.exec(
            select(AuditRecord)
            .where(AuditRecord.action == AuditAction.ONCALL_DEFINITION_UPDATED.value)
            .order_by(col(AuditRecord.seq).desc())
        ).first()
    assert record is not None and record.actor == "principal:admin-1"
    assert record.details["added"] == [
        {"user": "bob", "start": "2030-01-07T08:00:00Z", "end": "2030-01-07T23:00:00Z"}
    ]
    assert record.details["reason"] == "moved on the on-call board"


def test_a_shift_is_handed_over_with_the_keyboard_alone(oncall: ConsoleServer, new_page: Any) -> None:
    expect = _expect()
    page = new_page()
    sign_in(page, oncall, "admin")
    page.goto(BOARD)
    # Wednesday 09:00 Paris is carol's; focus its block, open it, choose bob, submit
    block = page.get_by_test_id("lane-carol").get_by_test_id("shift-20300109T0800-carol")
    summary = block.locator("summary")
    summary.focus()
    page.keyboard.press("Enter")
    choice = block.get_by_label("Hand to")
    expect(choice).to_be_visible()
    page.keyboard.press("Tab")
    expect(choice).to_be_focused()
    expect(choice).to_have_value("alice")  # the first of the others (carol, the holder, is not offered)
    page.keyboard.press("ArrowDown")
    expect(choice).to_have_value("bob")
    page.keyboard.press("Tab")
    page.keyboard.type("bob covers carol's Wednesday")
    page.keyboard.press("Tab")
    expect(block.get_by_role("button", name="Hand over")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("bob is on call Wed 09 Jan 09:00")
    assert ("bob", "2030-01-09T08:00:00+00:00", "2030-01-09T23:00:00+00:00") in _overrides(oncall)
    assert _on_call(oncall, "2030-01-09T12:00:00Z") == "bob"


def test_an_analyst_sees_the_board_but_may_not_override(oncall: ConsoleServer, new_page: Any) -> None:
    expect = _expect()
    page = new_page()
    sign_in(page, oncall, "analyst")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="On call").click()
    page.get_by_role("link", name="primary").click()
    expect(page.get_by_test_id("board")).to_be_visible()
    page.goto(BOARD)
    expect(page.get_by_test_id("lane-bob").get_by_test_id("shift-20300108T0800-bob")).to_be_visible()
    expect(page.locator(".shift[draggable]")).to_have_count(0)
    expect(page.get_by_role("button", name="Hand over")).to_have_count(0)
    before = _overrides(oncall)
    refused = post_behind_the_form(
        page,
        "/console/oncall/primary/overrides",
        {"user": "bob", "start": "2030-01-10T08:00:00+00:00", "end": "2030-01-10T23:00:00+00:00"},
    )
    assert refused.status == 403 and "oncall:write" in refused.text()
    assert _overrides(oncall) == before


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_the_board_has_no_axe_violations(oncall: ConsoleServer, new_page: Any, viewport: str) -> None:
    expect = _expect()
    width, height = VIEWPORTS[viewport]
    page = new_page(width=width, height=height)
    sign_in(page, oncall, "admin")
    for path in ("/console/oncall", BOARD):
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        page.locator("details").evaluate_all("all => all.forEach(d => d.open = true)")
        assert axe_violations(page) == "", f"{path} at {viewport}"
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than a {width}px screen"


def _incidents_with_findings(console: ConsoleServer) -> list[tuple[int, int]]:
    """(incident id, finding count) of open incidents, most findings first."""
    items = console.api("GET", "/incidents?status=new&limit=100", "analyst")["items"]
    return sorted(((i["id"], i["finding_count"]) for i in items), key=lambda pair: -pair[1])


def test_an_analyst_merges_an_incident_and_splits_a_finding_off(
    console: ConsoleServer, new_page: Any
) -> None:
    expect = _expect()
    candidates = _incidents_with_findings(console)
    assert len(candidates) >= 2 and candidates[0][1] >= 1, candidates
    (target, _), (source, _) = candidates[0], candidates[-1]
    page = new_page()
    sign_in(page, console, "analyst")
    page.goto(f"/console/incidents/{target}")
    # when the analyst merges the other incident into this one
    page.get_by_label("Merge incidents into this one").fill(f"#{source}")
    page.get_by_label("Reason for the merge").fill("same person, same hour")
    page.get_by_role("button", name="Merge", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text(f"merged #{source} into this incident")
    with console.db.session(readonly=True) as session:
        merged = session.get(Incident, source)
        assert merged is not None and merged.status == "duplicate" and merged.merged_into_id == target
        moved = session.exec(select(Finding.id).where(Finding.incident_id == target)).all()
    assert console.api("GET", f"/incidents/{source}", "viewer")["merged_into_id"] == target
    expect(page.locator(".timeline")).to_contain_text(
        f"#{source} merged into this one by principal:analyst-1"
    )
    shoot(page, "incident-merge")
    page.goto(f"/console/incidents/{source}")
    expect(page.get_by_test_id("merged-into")).to_contain_text(f"incident #{target}")
    # and splits one finding off into a new incident
    page.goto(f"/console/incidents/{target}")
    finding = sorted(f for f in moved if f is not None)[0]
    page.get_by_text("Split findings off into a new incident").click()
    page.get_by_role("checkbox", name=re.compile(rf"^#{finding} ")).check()
    page.get_by_label("Reason for the split").fill("unrelated sign-in")
    page.get_by_role("button", name="Split off").click()
    expect(page.get_by_role("status")).to_contain_text(f"split from incident #{target}: findings #{finding}")
    with console.db.session(readonly=True) as session:
        row = session.get(Finding, finding)
        assert row is not None and row.incident_id not in (None, target)
        created = session.get(Incident, row.incident_id)
        assert created is not None and created.created_by == "principal:analyst-1"
        split = session.exec(
            select(AuditRecord).where(
                AuditRecord.action == AuditAction.INCIDENT_SPLIT.value, AuditRecord.object_id == str(target)
            )
        ).one()
    assert split.actor == "principal:analyst-1" and split.details["to"] == created.id
    expect(page).to_have_url(re.compile(rf"/console/incidents/{created.id}\?notice="))


def test_a_viewer_may_not_merge_or_split(console: ConsoleServer, new_page: Any) -> None:
    expect = _expect()
    (target, _), (source, _) = _incidents_with_findings(console)[:2]
    page = new_page()
    sign_in(page, console, "viewer")
    page.goto(f"/console/incidents/{target}")
    expect(page.get_by_test_id("status")).to_be_visible()
    expect(page.get_by_role("heading", name="Merge and split")).to_have_count(0)
    refused = post_behind_the_form(page, f"/console/incidents/{target}/merge", {"incident_ids": str(source)})
    assert refused.status == 403 and "incidents:write" in refused.text()
    with console.db.session(readonly=True) as session:
        untouched = session.get(Incident, source)
        assert untouched is not None and untouched.merged_into_id is None
