"""Office 365 Management Activity API behaviour against its published reference
(tests/simulator/data/management_api.json names the source), through msal + requests."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

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
