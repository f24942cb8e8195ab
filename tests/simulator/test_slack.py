"""slack_sdk WebClient and AuditLogsClient against the simulator."""

from __future__ import annotations

import json

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

    assert pages >= 3
    assert len({e["id"] for e in entries}) == len(entries) == simulator.events("slack:audit")["count"]
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
