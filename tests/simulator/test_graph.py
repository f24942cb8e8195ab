"""Microsoft Graph through requests (+ urllib3 Retry), with tokens from msal."""

from __future__ import annotations

import json

import pytest
import requests


def all_pages(session: requests.Session, url: str, params: dict | None = None) -> list[list[dict]]:
    pages = []
    response = session.get(url, params=params)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["value"])
        if "@odata.nextLink" not in body:
            return pages
        response = session.get(body["@odata.nextLink"])


def story_step(truth: dict, step_id: str) -> dict:
    return next(s for story in truth["stories"] for s in story["steps"] if s["id"] == step_id)


def test_sign_ins_page_newest_first_through_absolute_next_links(simulator, graph):
    info = simulator.info
    session = graph(info)

    pages = all_pages(session, f"{info['m365.graph_base_url']}/auditLogs/signIns", {"$top": "200"})

    items = [i for page in pages for i in page]
    assert len(pages) >= 3
    assert [i["createdDateTime"] for i in items] == sorted(
        (i["createdDateTime"] for i in items), reverse=True
    )
    assert len({i["id"] for i in items}) == len(items)
    assert all(i["isInteractive"] for i in items)  # unfiltered: interactive sign-ins only
    others = all_pages(
        session,
        f"{info['m365.graph_beta_url']}/auditLogs/signIns",
        {"$top": "999", "$filter": "signInEventTypes/any(t: t ne 'interactiveUser')"},
    )
    non_interactive = [i for page in others for i in page]
    assert len(items) + len(non_interactive) == simulator.events("m365:signins")["count"]


def test_next_links_point_back_at_the_simulator_and_keep_the_filter(simulator, graph):
    info = simulator.info
    session = graph(info)

    body = session.get(
        f"{info['m365.graph_base_url']}/auditLogs/signIns",
        params={"$top": "3", "$filter": "status/errorCode eq 50126"},
    ).json()

    assert body["@odata.nextLink"].startswith(info["m365.graph_base_url"] + "/auditLogs/signIns?")
    assert "errorCode" in body["@odata.nextLink"]
    assert all(i["status"]["errorCode"] == 50126 for i in body["value"])


def test_the_password_spray_is_found_with_a_time_and_error_filter(simulator, graph):
    info = simulator.info
    spray = story_step(simulator.truth, "spray")
    spray_ids = {e["id"] for e in spray["events"] if e["stream"] == "signins"}
    at = spray["at"][:19] + "Z"

    pages = all_pages(
        graph(info),
        f"{info['m365.graph_base_url']}/auditLogs/signIns",
        {
            "$filter": f"createdDateTime ge {at} and status/errorCode eq 50126",
            "$top": "10",
            "$orderby": "createdDateTime asc",
        },
    )

    found = [i for page in pages for i in page]
    assert spray_ids <= {i["id"] for i in found}
    attacker = {i["location"]["countryOrRegion"] for i in found if i["id"] in spray_ids}
    assert attacker == {"RU"}
    assert [i["createdDateTime"] for i in found] == sorted(i["createdDateTime"] for i in found)


def test_sign_ins_of_one_user_come_from_the_per_user_path(simulator, graph):
    info = simulator.info
    victim = simulator.truth["stories"][0]["people"]

    pages = all_pages(
        graph(info),
        f"{info['m365.graph_base_url']}/auditLogs/signIns",
        {"$filter": f"userPrincipalName eq '{victim[0]}'", "$top": "50"},
    )

    assert {i["userPrincipalName"] for page in pages for i in page} <= set(victim)


def test_v1_sign_ins_carry_user_agent_and_omit_only_beta_only_fields(simulator, graph):
    info = simulator.info
    session = graph(info)

    v1 = session.get(f"{info['m365.graph_base_url']}/auditLogs/signIns", params={"$top": "1"}).json()[
        "value"
    ][0]
    beta = session.get(f"{info['m365.graph_beta_url']}/auditLogs/signIns", params={"$top": "1"}).json()[
        "value"
    ][0]

    assert v1["userAgent"] and v1["signInEventTypes"] == ["interactiveUser"]
    assert "authenticationRequirement" in v1 and v1["sessionId"]
    assert "mfaDetail" not in v1  # beta only
    assert "mfaDetail" in beta
    assert v1["id"] == beta["id"]


def test_throttling_429_with_retry_after_is_retried_by_urllib3(make_simulator, graph):
    sim = make_simulator(faults="429=1@m365:signins,retry_after=0,max_consecutive=2")
    session = graph(sim.info, retries=3)

    response = session.get(f"{sim.info['m365.graph_base_url']}/auditLogs/signIns", params={"$top": "5"})

    assert response.status_code == 200
    attempts = [r for r in sim.requests if r["path"].endswith("/auditLogs/signIns")]
    assert [r["status"] for r in attempts] == [429, 429, 200]


def test_a_429_carries_retry_after_and_graph_error_shape(make_simulator, graph):
    sim = make_simulator(faults="429=1@m365:signins,retry_after=1")

    response = graph(sim.info).get(f"{sim.info['m365.graph_base_url']}/auditLogs/signIns")

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "TooManyRequests"


def test_a_malformed_page_is_followed_by_a_good_one_when_retried(make_simulator, graph):
    sim = make_simulator(faults="malformed=1@m365:directory_audits,max_consecutive=1")
    session = graph(sim.info)
    url = f"{sim.info['m365.graph_base_url']}/auditLogs/directoryAudits"

    first = session.get(url)
    with pytest.raises(json.JSONDecodeError):
        first.json()
    second = session.get(url)

    assert first.status_code == 200
    assert second.json()["value"]


def test_403_for_a_missing_permission_stays_until_cleared(make_simulator, graph):
    sim = make_simulator(faults="403=m365:signins")
    session = graph(sim.info)
    url = f"{sim.info['m365.graph_base_url']}/auditLogs/signIns"

    statuses = [session.get(url).status_code for _ in range(4)]
    sim.set_faults("")

    assert statuses == [403] * 4
    assert session.get(url).status_code == 200


def test_users_list_pages_and_selects_sign_in_activity(simulator, graph):
    info = simulator.info

    pages = all_pages(
        graph(info),
        f"{info['m365.graph_base_url']}/users",
        {"$select": "id,userPrincipalName,accountEnabled,signInActivity", "$top": "15"},
    )

    users = [u for page in pages for u in page]
    assert len(pages) >= 3
    assert len(users) == len({u["id"] for u in users})
    assert set(users[0]) == {"id", "userPrincipalName", "accountEnabled", "signInActivity"}
    assert any(u["signInActivity"]["lastSignInDateTime"] for u in users)


def test_users_delta_returns_only_changed_users_after_a_write(simulator, graph):
    info = simulator.info
    session = graph(info)
    base = info["m365.graph_base_url"]
    pages = []
    body = session.get(f"{base}/users/delta", params={"$select": "id,accountEnabled", "$top": "20"}).json()
    pages.append(body["value"])
    while "@odata.nextLink" in body:
        body = session.get(body["@odata.nextLink"]).json()
        pages.append(body["value"])
    delta_link = body["@odata.deltaLink"]
    victim = simulator.truth["stories"][0]["people"][0]

    assert session.patch(f"{base}/users/{victim}", json={"accountEnabled": False}).status_code == 204
    changed = session.get(delta_link).json()

    assert len(pages) >= 2
    assert sum(len(p) for p in pages) == len({u["id"] for p in pages for u in p})
    assert [u["accountEnabled"] for u in changed["value"]] == [False]
    assert "@odata.deltaLink" in changed


def test_a_bad_filter_is_a_400_naming_the_problem(simulator, graph):
    info = simulator.info

    response = graph(info).get(
        f"{info['m365.graph_base_url']}/auditLogs/signIns", params={"$filter": "createdDateTime foo 3"}
    )

    assert response.status_code == 400
    assert "foo" in response.json()["error"]["message"]


def test_registration_details_filter_finds_admins(simulator, graph):
    info = simulator.info

    body = (
        graph(info)
        .get(
            f"{info['m365.graph_base_url']}/reports/authenticationMethods/userRegistrationDetails",
            params={"$filter": "isAdmin eq true"},
        )
        .json()
    )

    assert body["value"]
    assert all(u["isAdmin"] for u in body["value"])


def test_story_conversations_are_in_outlook_and_teams(simulator, graph):
    info = simulator.info
    session = graph(info)
    story = simulator.truth["stories"][0]
    wanted = {c["id"] for c in story["conversations"]}
    victim = next(r["target"]["user"] for r in story["remediation"] if r["action"] == "revoke_sessions")

    mail = all_pages(session, f"{info['m365.graph_base_url']}/users/{victim}/messages", {"$top": "5"})
    chats = session.get(f"{info['m365.graph_base_url']}/users/{victim}/chats/getAllMessages").json()["value"]

    mail_ids = {m["id"] for page in mail for m in page}
    assert {c["id"] for c in story["conversations"] if c["stream"] == "mail"} <= mail_ids
    assert {c["id"] for c in story["conversations"] if c["stream"] == "teams_messages"} == {
        m["id"] for m in chats
    } & wanted
    subjects = {m["subject"] for page in mail for m in page if m["id"] in wanted}
    assert any(s.startswith("Did you just sign in from") for s in subjects)


def test_concurrent_readers_page_the_same_stream_consistently(simulator, graph):
    from concurrent.futures import ThreadPoolExecutor

    info = simulator.info
    token_session = graph(info)

    def read_all(_: int) -> list[str]:
        session = requests.Session()
        session.trust_env = False
        session.headers.update(token_session.headers)
        pages = all_pages(session, f"{info['m365.graph_base_url']}/auditLogs/directoryAudits", {"$top": "7"})
        return [i["id"] for page in pages for i in page]

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(read_all, range(6)))

    assert all(r == results[0] for r in results)
    assert len(results[0]) == len(set(results[0])) == simulator.events("m365:directory_audits")["count"]
