"""The token_theft scenario: what its techniques look like through the APIs (msal + requests), and
that the product turns the story into exactly one P1 incident while the look-alike stays quiet."""

from __future__ import annotations

import pytest

from tests.scenario_run import run_and_score
from tests.simulator.conftest import MANAGE_SCOPE
from tests.simulator.test_management_fidelity import records

START = "2026-03-02T00:00:00Z"


def step(truth: dict, step_id: str) -> dict:
    return next(s for story in truth["stories"] for s in story["steps"] if s["id"] == step_id)


def test_device_code_tokens_are_replayed_under_the_same_session_from_another_network(make_simulator, graph):
    sim = make_simulator("token_theft", start=START)
    info = sim.info
    session = graph(info)
    truth = sim.truth
    url = f"{info['m365.graph_beta_url']}/auditLogs/signIns"
    device_ids = {e["id"] for e in step(truth, "device_code")["events"] if e["stream"] == "signins"}
    replay_ids = {e["id"] for e in step(truth, "replay")["events"]}
    [device_id] = device_ids
    victim = session.get(url, params={"$filter": f"id eq '{device_id}'"}).json()["value"][0][
        "userPrincipalName"
    ]

    mine = session.get(url, params={"$filter": f"userPrincipalName eq '{victim}'", "$top": "999"}).json()
    refreshes = session.get(
        url,
        params={
            "$filter": f"userPrincipalName eq '{victim}' and signInEventTypes/any(t: t eq 'nonInteractiveUser')",
            "$top": "999",
        },
    ).json()

    [phished] = [i for i in mine["value"] if i["id"] in device_ids]
    assert phished["authenticationProtocol"] == "deviceCode"
    assert phished["originalTransferMethod"] == "deviceCodeFlow"
    replayed = [i for i in refreshes["value"] if i["id"] in replay_ids]
    assert len(replayed) == len(replay_ids) == 14
    assert {i["sessionId"] for i in replayed} == {phished["sessionId"]}
    assert {i["ipAddress"] for i in replayed} != {phished["ipAddress"]}
    assert {i["location"]["countryOrRegion"] for i in replayed} == {"NL"}
    # the victim's own refreshes never carry the phished session
    own = [i for i in refreshes["value"] if i["id"] not in replay_ids]
    assert own and phished["sessionId"] not in {i["sessionId"] for i in own}


def test_pim_activation_and_app_only_writes_as_the_services_log_them(make_simulator, graph):
    sim = make_simulator("token_theft", start=START)
    info = sim.info
    truth = sim.truth
    session = graph(info)
    pim_ids = {e["id"] for e in step(truth, "pim")["events"] if e["stream"] == "directory_audits"}

    audits = session.get(
        f"{info['m365.graph_base_url']}/auditLogs/directoryAudits",
        params={"$filter": "loggedByService eq 'PIM'"},
    ).json()["value"]
    manage = graph(info, scopes=MANAGE_SCOPE)
    assert manage.post(
        f"{info['m365.management_feed_url']}/subscriptions/start", params={"contentType": "Audit.Exchange"}
    ).ok
    exchange = records(manage, sim, "Audit.Exchange")

    assert {a["id"] for a in audits} == pim_ids
    assert [a["activityDisplayName"] for a in sorted(audits, key=lambda a: a["activityDateTime"])] == [
        "Add member to role requested (PIM activation)",
        "Add member to role completed (PIM activation)",
    ]
    consented = next(
        sp
        for sp in session.get(f"{info['m365.graph_base_url']}/servicePrincipals").json()["value"]
        if sp["displayName"] == "Mail Archiver Pro"
    )
    app_writes = {e["id"] for e in step(truth, "app_writes")["events"]}
    [rule] = [r for r in exchange if r["Id"] in app_writes and r["Operation"] == "New-InboxRule"]
    cfo = rule["UserId"]
    sends = [r for r in exchange if r["Operation"] == "Send" and r.get("AppId") == consented["appId"]]
    assert rule["AppId"] == consented["appId"]
    assert {"Name": "ForwardTo", "Value": "ap-archive@mailbox-sync.example"} in rule["Parameters"]
    assert len(sends) == 6 and {r["UserId"] for r in sends} == {cfo}
    grant = next(r for r in exchange if r["Operation"] == "Add-MailboxPermission")
    assert grant["ObjectId"] == cfo
    rules = session.get(f"{info['m365.graph_base_url']}/users/{cfo}/mailFolders/inbox/messageRules").json()
    assert any(r["actions"].get("forwardTo") for r in rules["value"])


@pytest.mark.one_backend
@pytest.mark.slow
def test_the_token_theft_story_becomes_one_p1_incident_and_the_lookalike_none(
    db, settings, settled_simulator
):
    handle = settled_simulator("token_theft")
    result = run_and_score(db, settings, handle)
    assert result["stories_split"] == result["stories_merged"] == 0
    assert result["exactly_one_incident"] == result["stories"] == 1
    assert all(story["priorities"] == ["P1"] for story in result["per_story"])
    assert {"P1", "P2"}.isdisjoint(result["unmatched_incidents"]["by_priority"])
    assert result["conversations"]["correct"] == result["conversations"]["expected"]
