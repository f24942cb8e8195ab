"""The google_delegated_admin scenario through google-api-python-client (Reports, Cloud Identity
policies), and end to end: one P1/P2 incident for the story, none for the announced trip."""

from __future__ import annotations

import pytest

from tests.scenario_run import run_and_score
from tests.simulator.test_google import REPORTS, activities

START = "2026-03-02T00:00:00Z"
TWOSV = "settings/security.two_step_verification_enforcement"


def test_a_delegated_admin_grants_super_admin_and_2sv_goes_off_for_one_ou(make_simulator, google):
    sim = make_simulator("google_delegated_admin", start=START)
    reports = google(sim.info, "admin", "reports_v1", scopes=REPORTS)
    truth = sim.truth

    admin, _ = activities(reports, userKey="all", applicationName="admin", maxResults=500)
    policies = google(sim.info, "cloudidentity", "v1").policies().list().execute()["policies"]

    grant_ids = {
        e["id"].split("/")[1]
        for s in truth["stories"]
        for st in s["steps"]
        if st["id"] == "super_admin"
        for e in st["events"]
    }
    [grant] = [a for a in admin if a["id"]["uniqueQualifier"] in grant_ids]
    assign = next(e for e in grant["events"] if e["name"] == "ASSIGN_ROLE")
    params = {p["name"]: p.get("value") for p in assign["parameters"]}
    assert params["ROLE_NAME"] == "_SEED_ADMIN_ROLE"
    granted = params["USER_EMAIL"]
    assert grant["actor"]["email"] != granted  # the delegated admin, not the new super admin
    [off] = [
        e
        for a in admin
        for e in a["events"]
        if e["name"] == "ENFORCE_STRONG_AUTHENTICATION" and a["actor"]["email"] == granted
    ]
    assert {p["name"]: p.get("value") for p in off["parameters"]}["ORG_UNIT_NAME"] == "/Sales"
    twosv = sorted(
        (p for p in policies if p["setting"]["type"] == TWOSV), key=lambda p: p["policyQuery"]["sortOrder"]
    )
    assert len(twosv) == 2
    root, sales = twosv
    assert root["setting"]["value"].get("enforcedFrom")  # the root still enforces 2SV
    assert "enforcedFrom" not in sales["setting"]["value"]
    assert sales["policyQuery"]["orgUnit"] != root["policyQuery"]["orgUnit"]


def test_the_new_super_admin_takes_out_the_helpdesk_account_as_the_takeout_application_records_it(
    make_simulator, google
):
    # given the story, the Reports API read through google-api-python-client
    sim = make_simulator("google_delegated_admin", start=START)
    reports = google(sim.info, "admin", "reports_v1", scopes=REPORTS)
    story = sim.truth["stories"][0]
    step = next(s for s in story["steps"] if s["id"] == "takeout")

    # when the takeout application's activities are listed
    items, _ = activities(reports, userKey="all", applicationName="takeout", maxResults=100)
    started, _ = activities(
        reports, userKey="all", applicationName="takeout", eventName="STARTED_USER_TAKEOUT"
    )

    # then the three documented USER_TAKEOUT events are there, oldest last, and are the truth's
    events = [(a, e) for a in items for e in a["events"]]
    assert [e["name"] for _, e in events] == [
        "DOWNLOADED_USER_TAKEOUT",
        "COMPLETED_USER_TAKEOUT",
        "STARTED_USER_TAKEOUT",
    ]
    assert {f"{a['id']['time']}/{a['id']['uniqueQualifier']}/0" for a, _ in events} == {
        e["id"] for e in step["events"]
    }
    assert all(e["type"] == "USER_TAKEOUT" and a["id"]["applicationName"] == "takeout" for a, e in events)
    params = {p["name"]: p.get("value", p.get("intValue")) for p in events[1][1]["parameters"]}
    # by the account the delegated admin made super admin, of the helpdesk account, from the attacker
    assert events[1][0]["actor"]["email"] != params["USER_EMAIL"]
    assert params["INITIATED_BY"] == "ADMIN" and params["TAKEOUT_STATUS"] == "COMPLETED"
    assert params["TAKEOUT_DESTINATION"] == "EMAIL" and params["PRODUCTS_REQUESTED"] == "Mail,Drive"
    assert int(params["COMPLETION_TIME"]) > 0
    assert len({p["value"] for _, e in events for p in e["parameters"] if p["name"] == "TAKEOUT_ID"}) == 1
    assert {a["ipAddress"] for a, _ in events} == set(story["attacker_ips"])
    assert [e["name"] for a in started for e in a["events"]] == ["STARTED_USER_TAKEOUT"]


@pytest.mark.one_backend
@pytest.mark.slow
def test_the_delegated_admin_story_becomes_one_incident_and_the_trip_none(db, settings, settled_simulator):
    handle = settled_simulator("google_delegated_admin")
    result = run_and_score(db, settings, handle)
    assert result["stories_split"] == result["stories_merged"] == 0
    assert result["exactly_one_incident"] == result["stories"] == 1
    assert all(story["priorities"][0] in ("P1", "P2") for story in result["per_story"])
    assert {"P1", "P2"}.isdisjoint(result["unmatched_incidents"]["by_priority"])
    assert result["decoys"]["at_p1_p2"] == 0, result["decoys"]
    assert result["conversations"]["correct"] == result["conversations"]["expected"]
