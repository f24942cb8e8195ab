"""slack_sdk WebClient and AuditLogsClient against the simulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler


def test_users_list_pages_with_the_cursor(simulator, slack):
    client = slack(simulator.info)

    pages = [
        list(page["members"]) for page in client.users_list(limit=15)
    ]  # the response object is reused per page

    members = [m for page in pages for m in page]
    assert len(pages) >= 3
    assert len({m["id"] for m in members}) == len(members)
    assert all(m["profile"]["email"].endswith("@northwind.example") for m in members)


def test_channel_history_pages_newest_first_and_threads_have_replies(make_simulator, slack):
    sim = make_simulator(
        "account_takeover", start="2026-03-02T00:00:00Z"
    )  # a fixed week: a known number of messages
    client = slack(sim.info)
    channel = next(
        c
        for c in client.conversations_list(types="public_channel,private_channel")["channels"]
        if c["name"] == "security-ops"
    )
    thread = next(c for c in sim.truth["stories"][0]["conversations"] if c["stream"] == "messages")

    pages = [list(page["messages"]) for page in client.conversations_history(channel=channel["id"], limit=2)]
    messages = [m for page in pages for m in page]
    parent = next(m for m in messages if f"{channel['id']}:{m['ts']}" == thread["id"])
    replies = client.conversations_replies(channel=channel["id"], ts=parent["ts"])["messages"]

    assert len(pages) >= 3
    assert [m["ts"] for m in messages] == sorted((m["ts"] for m in messages), reverse=True)
    assert replies[0]["ts"] == parent["ts"] and len(replies) == 1 + parent["reply_count"]
    assert all(r["thread_ts"] == parent["ts"] for r in replies)


def test_rate_limit_429_is_retried_with_the_retry_handler(make_simulator, slack):
    sim = make_simulator(faults="429=1@slack:users.list,retry_after=0,max_consecutive=1")
    plain = slack(sim.info)
    patient = slack(sim.info, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)])

    with pytest.raises(SlackApiError) as limited:
        plain.users_list(limit=5)
    response = patient.users_list(limit=5)

    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "0"
    assert response["ok"]


def test_admin_methods_refuse_the_bot_token(simulator, slack):
    with pytest.raises(SlackApiError) as refused:
        slack(simulator.info).admin_users_session_reset(user_id="U123")

    assert refused.value.response["error"] == "not_allowed_token_type"


def test_chat_post_message_sends_json_and_appears_in_history(simulator, slack):
    client = slack(simulator.info)
    channel = next(c for c in client.conversations_list()["channels"] if c["name"] == "general")

    posted = client.chat_postMessage(channel=channel["id"], text="tenantguard: incident INC-1 opened")
    history = client.conversations_history(channel=channel["id"], limit=1)["messages"]

    assert history[0]["ts"] == posted["ts"]
    assert simulator.changes[-1]["action"] == "post_message"


def test_audit_logs_page_with_cursor_filters_and_count_every_entry_once(simulator, audit_logs):
    client = audit_logs(simulator.info)
    entries, pages, cursor = [], 0, None
    while True:
        response = client.logs(limit=100, cursor=cursor)
        assert response.status_code == 200
        entries.extend(response.body["entries"])
        pages += 1
        cursor = response.body["response_metadata"]["next_cursor"]
        if not cursor:
            break

    logins = client.logs(limit=50, action="user_login").body["entries"]

    setup = [e for e in entries if e["action"].startswith("pref.")]  # the workspace's setup, last
    assert pages >= 3
    assert len({e["id"] for e in entries}) == len(entries)
    assert len(entries) == simulator.events("slack:audit")["count"] + len(setup)
    assert entries[-len(setup) :] == setup and len(setup) == 7
    assert [e["date_create"] for e in entries] == sorted((e["date_create"] for e in entries), reverse=True)
    assert logins and all(e["action"] == "user_login" for e in logins)


def test_audit_logs_oldest_and_latest_are_inclusive_seconds(make_simulator, audit_logs):
    sim = make_simulator("slack_session_theft")
    client = audit_logs(sim.info)
    step = next(s for s in sim.truth["stories"][0]["steps"] if s["id"] == "hijacked_login")
    entries = client.logs(action="user_login,anomaly", limit=9999).body["entries"]
    login = next(e for e in entries if e["id"] == step["events"][0]["id"])

    exact = client.logs(oldest=login["date_create"], latest=login["date_create"], action="user_login").body[
        "entries"
    ]

    assert login["id"] in {e["id"] for e in exact}
    assert login["context"]["ip_address"] in sim.truth["stories"][0]["attacker_ips"]


def test_audit_logs_report_429_and_401_as_status_codes(make_simulator, audit_logs):
    sim = make_simulator(faults="429=1@slack:audit,retry_after=1")
    client = audit_logs(sim.info)

    limited = client.logs(limit=5)
    unauthenticated = audit_logs(sim.info, token="xoxp-not-a-token").logs(limit=5)

    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    assert unauthenticated.status_code == 401
    assert unauthenticated.body["error"] == "invalid_authentication"


def test_audit_logs_malformed_page_then_a_good_one(make_simulator, audit_logs):
    sim = make_simulator(faults="malformed=1@slack:audit,max_consecutive=1")
    client = audit_logs(sim.info)

    with pytest.raises(json.JSONDecodeError):
        client.logs(limit=5)
    good = client.logs(limit=5)

    assert len(good.body["entries"]) == 5


def test_team_settings_info_returns_the_team_as_slack_documents_it_and_no_security_settings(simulator, slack):
    client = slack(simulator.info, token="slack.admin_token")
    team_id = client.team_info()["team"]["id"]

    team = client.admin_teams_settings_info(team_id=team_id)["team"]
    with pytest.raises(SlackApiError) as unknown:
        client.admin_teams_settings_info(team_id="T0NOTOURS")

    # the fields of Slack's documented response (id, name, domain, email_domain, icon, enterprise_id,
    # enterprise_name, default_channels) plus those of the SDKs' typed model, nothing else
    documented = {"id", "name", "domain", "email_domain", "icon", "enterprise_id", "enterprise_name"}
    typed = {"default_channels", "enterprise_domain", "is_verified", "url", "avatar_base_url"}
    assert documented <= set(team) <= documented | typed
    assert team["id"] == team_id and team["default_channels"][0].startswith("C")
    assert unknown.value.response["error"] == "team_not_found"


SETTINGS_DRIFT = str(Path(__file__).parent / "data" / "slack_settings_drift.yaml")


def test_security_settings_are_the_newest_pref_event_of_each_in_the_audit_log(make_simulator, audit_logs):
    # given a tenant set up with public file links off and 12-hour sessions, whose admin later turns
    # the two-factor and SSO requirements off
    sim = make_simulator(SETTINGS_DRIFT)
    client = audit_logs(sim.info)
    change = sim.truth["stories"][0]["steps"][0]["events"][0]

    # when the audit log is asked for the newest event of each setting's action
    newest = {
        action: client.logs(action=action, limit=1).body["entries"]
        for action in (
            "pref.two_factor_auth_changed",
            "pref.sso_setting_changed",
            "pref.session_duration_changed",
            "pref.disallow_public_file_urls",
        )
    }
    history = client.logs(action="pref.two_factor_auth_changed", limit=10).body["entries"]

    # then each is one workspace event by a person carrying the previous and new values: the story's
    # changes for 2FA and SSO, the workspace's setup (before the scenario) for the others
    assert all(len(entries) == 1 for entries in newest.values())
    assert all(
        e[0]["entity"]["type"] == "workspace" and e[0]["actor"]["type"] == "user" for e in newest.values()
    )
    assert newest["pref.two_factor_auth_changed"][0]["id"] == change["id"]
    assert newest["pref.two_factor_auth_changed"][0]["details"] == {
        "new_value": "optional",
        "previous_value": "required",
    }
    assert [e["details"]["new_value"] for e in history] == ["optional", "required"]
    assert newest["pref.session_duration_changed"][0]["details"]["new_value"] == "12"
    assert newest["pref.disallow_public_file_urls"][0]["details"]["new_value"] == "true"
    assert newest["pref.sso_setting_changed"][0]["details"]["new_value"] == "optional"
