"""End to end on the simulator: each attack story becomes exactly one incident with its conversations."""

from __future__ import annotations

import pytest

from tests.scenario_run import run_and_score

pytestmark = pytest.mark.one_backend  # the grouping's answer, not the storage's: SQLite suite only


@pytest.mark.slow
@pytest.mark.parametrize(
    "scenario", ["account_takeover", "okta_mfa_fatigue", "okta_support_impersonation", "quiet_week"]
)
def test_a_scenario_becomes_one_incident_per_story_with_its_conversations(
    db, settings, make_simulator, scenario
) -> None:
    # given a tenant in the simulator with an attack story (or only look-alikes)
    handle = make_simulator(scenario)
    # when the product collects, detects, resolves people and builds incidents
    result = run_and_score(db, settings, handle)
    # then every story is exactly one incident carrying its messages and no others
    assert result["stories_split"] == result["stories_merged"] == 0
    assert result["exactly_one_incident"] == result["stories"]
    assert (
        result["conversations"]["correct"]
        == result["conversations"]["expected"]
        == result["conversations"]["attached"]
    )
    assert all(story["priorities"] == ["P1"] for story in result["per_story"])
    assert {"P1", "P2"}.isdisjoint(result["unmatched_incidents"]["by_priority"])


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["business_travel", "new_office"])
def test_travel_and_a_new_office_page_nobody(db, settings, make_simulator, scenario) -> None:
    # given a week of ordinary travel, or a dozen people on a new office's first morning
    handle = make_simulator(scenario)
    assert handle.truth["decoys"] and not handle.truth["stories"]
    # when the product collects, detects, resolves people and builds incidents
    result = run_and_score(db, settings, handle)
    # then nothing is urgent, and none of the travellers or movers is an incident
    assert {"P1", "P2"}.isdisjoint(result["by_priority"]), result["by_priority"]
    assert result["decoys"]["with_incident"] == 0, result["decoys"]
