"""Alerts from tools that speak PagerDuty or Alertmanager natively, over real HTTP (uvicorn on
loopback, the `requests` client), authenticated by the routing key as those tools send it.

Given the deployment's routing key, when a tool sends a PagerDuty Events API v2 trigger, repeats
it, acknowledges and resolves it, then one finding exists (count 2), the acknowledgement is on the
audit chain and the resolve resolves it, each answered in PagerDuty's shape; a wrong key or a
malformed event is refused with PagerDuty's `invalid event` answer and audited; Alertmanager's
webhook with `Authorization: Bearer <key>` fires and resolves its alerts, without the key it is 401.
"""

from __future__ import annotations

import requests
from sqlmodel import select

from core.models import AuditRecord, Finding
from pipeline.cycle import run_cycle
from tests.response.conftest import ROUTING_KEY


def _event(action: str, **extra) -> dict:
    return {"routing_key": ROUTING_KEY, "event_action": action, "dedup_key": "db-7-lag", **extra}


TRIGGER = _event(
    "trigger",
    payload={
        "summary": "Replica lag above 5 minutes on db-7",
        "severity": "critical",
        "source": "db-7.internal",
        "custom_details": {"lag_seconds": 340},
    },
)


def _send(url: str, event: dict) -> requests.Response:
    return requests.post(f"{url}/response/pagerduty/v2/enqueue", json=event, timeout=30)


def test_pagerduty_events_trigger_repeat_acknowledge_resolve(live_api, db, settings) -> None:
    first = _send(live_api, TRIGGER)
    assert first.status_code == 202, first.text
    assert first.json() == {"status": "success", "message": "Event processed", "dedup_key": "db-7-lag"}
    assert _send(live_api, TRIGGER).status_code == 202
    # Without a dedup_key PagerDuty makes one and says which: a trigger, then a resolve by that key.
    unkeyed = {k: v for k, v in TRIGGER.items() if k != "dedup_key"} | {
        "payload": {"summary": "Disk full on build-3", "severity": "warning", "source": "nagios"}
    }
    made = _send(live_api, unkeyed).json()["dedup_key"]
    assert made and made != "db-7-lag"
    run_cycle(db, settings, only=["incidents"], notify=False)
    with db.session(readonly=True) as session:
        lag = session.exec(select(Finding).where(Finding.dedup_key == "alert:pagerduty:db-7-lag")).one()
        assert (lag.count, lag.severity, lag.status) == (2, "critical", "open")
        assert lag.incident_id is not None and lag.context["alert_source"] == "db-7.internal"
    # Acknowledge and resolve carry no payload, as PagerDuty's do.
    assert _send(live_api, _event("acknowledge")).status_code == 202
    assert _send(live_api, _event("resolve")).status_code == 202
    assert _send(live_api, _event("resolve", dedup_key=made)).status_code == 202
    with db.session(readonly=True) as session:
        findings = {f.dedup_key: f for f in session.exec(select(Finding)).all()}
        received = session.exec(
            select(AuditRecord).where(AuditRecord.action == "response.alert.received")
        ).all()
    assert findings["alert:pagerduty:db-7-lag"].status == "resolved"
    assert findings[f"alert:pagerduty:{made}"].status == "resolved"
    assert [r.details["action"] for r in received] == [
        "trigger",
        "trigger",
        "trigger",
        "acknowledge",
        "resolve",
        "resolve",
    ]
    assert received[3].object_id == str(lag.id)


def test_a_wrong_routing_key_or_a_malformed_event_is_an_invalid_event(live_api, db) -> None:
    cases = [
        TRIGGER | {"routing_key": "not-ours"},
        {k: v for k, v in TRIGGER.items() if k != "routing_key"},
        TRIGGER | {"event_action": "explode"},
        _event("resolve", dedup_key=""),
        TRIGGER | {"payload": {"summary": "x", "severity": "apocalyptic", "source": "s"}},
    ]
    for event in cases:
        answer = _send(live_api, event)
        assert answer.status_code == 400, (event, answer.text)
        assert answer.json()["status"] == "invalid event" and answer.json()["errors"]
    not_json = requests.post(f"{live_api}/response/pagerduty/v2/enqueue", data=b"{nope", timeout=30)
    assert not_json.status_code == 400
    with db.session(readonly=True) as session:
        assert session.exec(select(Finding)).first() is None
        refusals = session.exec(
            select(AuditRecord).where(AuditRecord.action == "response.alert.refused")
        ).all()
    assert len(refusals) == len(cases) + 1
    assert "routing key" in refusals[0].details["reason"]


def test_alertmanager_with_its_bearer_credential(live_api, db) -> None:
    def group(status: str) -> dict:
        return {
            "version": "4",
            "groupKey": '{}:{alertname="HighErrorRate"}',
            "status": status,
            "receiver": "tenantguard",
            "alerts": [
                {
                    "status": status,
                    "labels": {"alertname": "HighErrorRate", "severity": "critical", "job": "payments"},
                    "annotations": {"summary": "Payments error rate above 20%"},
                    "fingerprint": "a1b2c3",
                }
            ],
        }

    url = f"{live_api}/response/alertmanager"
    unauthenticated = requests.post(url, json=group("firing"), timeout=30)
    assert unauthenticated.status_code == 401
    wrong = requests.post(url, json=group("firing"), headers={"Authorization": "Bearer nope"}, timeout=30)
    assert wrong.status_code == 401
    auth = {"Authorization": f"Bearer {ROUTING_KEY}"}
    fired = requests.post(url, json=group("firing"), headers=auth, timeout=30)
    assert fired.status_code == 202, fired.text
    assert fired.json()["alerts"][0]["created"] is True
    resolved = requests.post(url, json=group("resolved"), headers=auth, timeout=30)
    assert resolved.json()["alerts"][0]["action"] == "resolve"
    with db.session(readonly=True) as session:
        [finding] = session.exec(select(Finding)).all()
    assert (finding.dedup_key, finding.status) == ("alert:payments:a1b2c3", "resolved")
