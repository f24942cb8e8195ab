"""Fault specs: parsing, determinism, retries that get through, duplicates and late arrivals."""

from __future__ import annotations

import pytest
import requests

from simulator.errors import FaultSpecError
from simulator.faults import Faults, parse_faults


def test_a_spec_string_parses_into_rules_with_arguments_and_scopes():
    spec = parse_faults(
        "429=0.1,500=0.05,malformed=0.01,slow=0.02:1.5,403=m365:signins,late=0.05:3600@google,retry_after=0:2"
    )

    rules = {(r.kind, r.probability, r.arg, r.scope) for r in spec.rules}

    assert ("slow", 0.02, 1.5, None) in rules
    assert ("403", 1.0, None, "m365:signins") in rules
    assert ("late", 0.05, 3600.0, "google") in rules
    assert spec.retry_after == (0, 2)


@pytest.mark.parametrize("bad", ["429", "teapot=0.5", "429=2", "slow=abc:1"])
def test_bad_specs_are_refused_naming_the_item(bad):
    with pytest.raises(FaultSpecError) as refused:
        parse_faults(bad)

    assert bad.split("=")[0] in str(refused.value)


def test_decisions_are_deterministic_for_the_same_seed_and_requests():
    def run(seed: int) -> list[int | None]:
        faults = Faults()
        faults.set(parse_faults("429=0.3,500=0.2", seed=seed))
        return [faults.decide(f"GET /x?page={i % 7}", "m365", "signins", "/x").status for i in range(60)]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_a_request_succeeds_after_max_consecutive_failures():
    faults = Faults()
    faults.set(parse_faults("500=1,max_consecutive=3"))

    statuses = [faults.decide("GET /same", "google", "reports", "/same").status for _ in range(5)]

    assert statuses == [500, 500, 500, None, 500]


def test_token_endpoints_are_only_faulted_when_named():
    faults = Faults()
    faults.set(parse_faults("500=1"))

    assert faults.decide("POST /token", "m365", "token", "/t").status is None
    faults.set(parse_faults("500=1@m365:token"))
    assert faults.decide("POST /token", "m365", "token", "/t").status == 500


def test_faults_can_be_changed_through_the_admin_endpoint(simulator):
    admin = simulator.info["admin_url"]
    session = requests.Session()
    session.trust_env = False

    bad = session.post(f"{admin}/faults", json={"spec": "nonsense=1"})
    good = session.post(f"{admin}/faults", json={"spec": "503=1@slack,retry_after=0"})
    users = session.post(
        f"{simulator.info['slack.base_url']}users.list",
        headers={"Authorization": f"Bearer {simulator.info['slack.bot_token']}"},
    )

    assert bad.status_code == 400 and "nonsense" in bad.json()["error"]
    assert good.json()["spec"] == "503=1@slack,retry_after=0"
    assert users.status_code == 503 and users.json() == {"ok": False, "error": "service_unavailable"}
    assert session.get(f"{admin}/faults").json()["fired"]["503"] == 1


def test_slow_responses_take_at_least_the_asked_time(make_simulator, graph):
    sim = make_simulator(faults="slow=1:0.3@m365:users")
    session = graph(sim.info)

    response = session.get(f"{sim.info['m365.graph_base_url']}/users")

    assert response.status_code == 200
    assert response.elapsed.total_seconds() >= 0.3


def test_duplicate_pages_repeat_the_previous_last_item(make_simulator, graph):
    sim = make_simulator(faults="duplicate=1@m365:signins")
    session = graph(sim.info)
    first = session.get(f"{sim.info['m365.graph_base_url']}/auditLogs/signIns", params={"$top": "4"}).json()

    second = session.get(first["@odata.nextLink"]).json()

    assert second["value"][0]["id"] == first["value"][-1]["id"]
    assert not {i["id"] for i in second["value"][1:]} & {i["id"] for i in first["value"]}


def test_late_events_are_hidden_until_the_clock_passes_their_delay(make_simulator):
    sim = make_simulator(
        faults="late=0.5:7200@slack:audit", start="2026-03-04T18:00:00Z"
    )  # ends on a busy Wednesday
    all_ids = sim.events("slack:audit")
    visible_now = sim.events("slack:audit", visible=True)

    sim.advance(7200)
    visible_later = sim.events("slack:audit", visible=True)

    assert visible_now["count"] < all_ids["count"]
    assert visible_later["count"] == all_ids["count"]
    assert set(visible_now["ids"]) <= set(visible_later["ids"])
