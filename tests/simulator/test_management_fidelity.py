"""Office 365 Management Activity API behaviour against its published reference
(tests/simulator/data/management_api.json names the source), through msal + requests."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from simulator.render import m365 as m365_render
from simulator.render import render
from simulator.scenario import available_scenarios
from simulator.world import build_world
from tests.simulator.conftest import MANAGE_SCOPE
from tests.simulator.test_management_api import iso, list_content

SCHEMA = json.loads((Path(__file__).parent / "data" / "management_api.json").read_text())
START = "2026-03-02T00:00:00Z"


def records(session, sim, content_type: str) -> list[dict]:
    end = datetime.fromisoformat(sim.truth["end"].replace("Z", "+00:00"))
    out = []
    for day in range(6, -1, -1):
        blobs, _ = list_content(
            session, sim.info, content_type, end - timedelta(days=day + 1), end - timedelta(days=day)
        )
        for blob in blobs:
            out.extend(session.get(blob["contentUri"]).json())
    return out


def test_records_carry_the_common_schema_and_entra_logons_as_documented(make_simulator, graph):
    sim = make_simulator(start=START)
    session = graph(sim.info, scopes=MANAGE_SCOPE)
    feed = sim.info["m365.management_feed_url"]
    for content_type in ("Audit.AzureActiveDirectory", "Audit.Exchange"):
        assert session.post(f"{feed}/subscriptions/start", params={"contentType": content_type}).ok

    entra = records(session, sim, "Audit.AzureActiveDirectory")
    exchange = records(session, sim, "Audit.Exchange")

    for record in entra + exchange:
        assert set(SCHEMA["common_mandatory"]) <= set(record), record["Operation"]
    logons = [r for r in entra if r["RecordType"] == 15]
    failed = [r for r in logons if r["Operation"] == "UserLoginFailed"]
    assert logons and failed
    assert {r["ClientIP"] for r in entra} == {""}  # Entra ID records name the caller elsewhere
    assert all(r["ActorIpAddress"] for r in logons)
    for record in failed:
        assert record["ErrorCode"] == "50126" and record["LogonError"] == "InvalidUserNameOrPassword"
    assert all(r["ErrorCode"] == "0" and "LogonError" not in r for r in logons if r not in failed)
    assert all(r["ClientIP"] for r in exchange if r["Operation"] == "New-InboxRule")


def test_starting_an_enabled_subscription_is_refused_as_the_service_does(simulator, graph):
    info = simulator.info
    session = graph(info, scopes=MANAGE_SCOPE)
    start = f"{info['m365.management_feed_url']}/subscriptions/start"

    first = session.post(start, params={"contentType": "Audit.General"})
    again = session.post(start, params={"contentType": "Audit.General"})
    with_webhook = session.post(
        start,
        params={"contentType": "Audit.General"},
        json={"webhook": {"address": "https://127.0.0.1:9/hook", "authId": "x", "expiration": ""}},
    )

    assert first.status_code == 200
    assert first.json() == {"contentType": "Audit.General", "status": "enabled", "webhook": None}
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "AF20024"
    assert with_webhook.status_code == 200 and with_webhook.json()["webhook"]["authId"] == "x"
    listed = session.get(f"{info['m365.management_feed_url']}/subscriptions/list").json()
    assert [s["contentType"] for s in listed] == ["Audit.General"]


def test_a_new_subscription_lists_its_first_blobs_only_after_the_configured_delay(make_simulator, graph):
    sim = make_simulator(start=START, lag={"m365:first_content": "12h"})
    session = graph(sim.info, scopes=MANAGE_SCOPE)
    feed = sim.info["m365.management_feed_url"]
    end = datetime.fromisoformat(sim.truth["end"].replace("Z", "+00:00"))
    window = {
        "contentType": "Audit.Exchange",
        "startTime": iso(end - timedelta(hours=24)),
        "endTime": iso(end),
    }
    assert session.post(f"{feed}/subscriptions/start", params={"contentType": "Audit.Exchange"}).ok

    before = session.get(f"{feed}/subscriptions/content", params=window)
    sim.advance(11 * 3600)
    still = graph(sim.info, scopes=MANAGE_SCOPE).get(f"{feed}/subscriptions/content", params=window)
    sim.advance(3600)
    after = graph(sim.info, scopes=MANAGE_SCOPE).get(f"{feed}/subscriptions/content", params=window)

    assert before.status_code == still.status_code == after.status_code == 200
    assert before.json() == still.json() == []
    assert after.json()  # then the history, as far as the window reaches
    assert {b["contentType"] for b in after.json()} == {"Audit.Exchange"}


EDISCOVERY = str(Path(__file__).parent / "data" / "ediscovery_export.yaml")


def test_audit_general_carries_teams_and_compliance_records(make_simulator, graph):
    # given a story that exports the CFO's mailbox through a content search and adds an outside
    # guest to a team, over the background's Teams sign-ins
    sim = make_simulator(EDISCOVERY, start=START)
    session = graph(sim.info, scopes=MANAGE_SCOPE)
    feed = sim.info["m365.management_feed_url"]
    assert session.post(f"{feed}/subscriptions/start", params={"contentType": "Audit.General"}).ok
    steps = {s["id"]: s for s in sim.truth["stories"][0]["steps"]}

    # when the Audit.General content is read
    general = records(session, sim, "Audit.General")

    # then it is Teams and compliance-portal records only, each with the common schema
    assert {(r["Workload"], r["RecordType"]) for r in general} == set(SCHEMA["general_content_types"].items())
    assert all(set(SCHEMA["common_mandatory"]) <= set(r) for r in general)
    sessions = [r for r in general if r["Operation"] == "TeamsSessionStarted"]
    assert len(sessions) > 10 and all(r["ClientIP"] for r in sessions)
    # the guest is a Teams member with the guest role, in the story's record
    (added,) = [r for r in general if r["Operation"] == "MemberAdded"]
    assert added["Id"] == steps["guest"]["events"][0]["id"]
    assert set(SCHEMA["teams_member_fields"]) <= set(added)
    assert added["Members"] == [
        {
            "UPN": "audit-review@mailbox.example",
            "Role": SCHEMA["teams_member_roles"]["guest"],
            "DisplayName": "Audit Review",
        }
    ]
    # the content search was created, started, exported and downloaded, in that order, from abroad
    search = sorted((r for r in general if r["RecordType"] == 24), key=lambda r: r["CreationTime"])
    assert [r["Operation"] for r in search] == SCHEMA["discovery_operations"]
    assert {r["Id"] for r in search} == {e["id"] for e in steps["search"]["events"]}
    assert {r["ObjectId"] for r in search} == {"Q3 board"}
    (cfo,) = [p for p in sim.truth["stories"][0]["people"] if p != search[0]["UserId"]]
    assert all(r["ExchangeLocations"] == [cfo] for r in search)
    assert {r["ClientIP"] for r in search} == set(sim.truth["stories"][0]["attacker_ips"])


@pytest.mark.parametrize("name", available_scenarios())
def test_an_hours_records_are_sorted_into_content_types_as_their_rendered_workload_says(name):
    """The listings and blobs sort records by content type without rendering them (the record's
    kind decides); raw records and story extras with their own Workload are rendered to know."""
    world = build_world(name, start="2026-03-02T00:00:00Z", users=20, days=2)
    records = list(world.store.all_records("m365:unified_audit"))

    assert records
    assert [m365_render.record_content_type(world.ctx, r) for r in records] == [
        m365_render.content_type(render(world.ctx, "m365:unified_audit", r)) for r in records
    ]
