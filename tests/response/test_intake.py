"""Alert intake through the API: given a configured Standard Webhooks secret, when a monitoring tool
posts signed alerts (generic and PagerDuty Events v2), then they become one finding per dedup key,
a resolve resolves it, and unsigned or tampered requests are refused and audited."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from sqlmodel import select
from standardwebhooks import Webhook

from core.models import AuditRecord, Finding
from tests.response.conftest import INTAKE_SECRET


def signed(
    body: dict, *, secret: str = INTAKE_SECRET, message_id: str = "msg_1", at: int | None = None
) -> tuple[bytes, dict]:
    raw = json.dumps(body).encode()
    moment = at or int(time.time())
    key = secret if secret.startswith("whsec_") else secret.encode()
    signature = Webhook(key).sign(message_id, datetime.fromtimestamp(moment, tz=UTC), raw.decode())
    return raw, {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(moment),
        "webhook-signature": signature,
    }


@pytest.fixture
def intake(api, monkeypatch):
    monkeypatch.setenv("TG_TEST_INTAKE_SECRET", INTAKE_SECRET)
    return api


def test_signed_alerts_fold_by_dedup_key_and_resolve(intake, db) -> None:
    alert = {
        "title": "Database replica lag above 5 minutes",
        "severity": "critical",
        "dedup_key": "db-7-lag",
        "source": "grafana",
        "entities": {"ips": ["203.0.113.7"], "nonsense": ["x"]},
    }
    first = intake.post("/response/alerts", content=signed(alert)[0], headers=signed(alert)[1])
    assert first.status_code == 202, first.text
    assert first.json()["created"] is True
    body, headers = signed(alert, message_id="msg_2")
    again = intake.post("/response/alerts", content=body, headers=headers)
    assert (again.json()["finding_id"], again.json()["created"]) == (first.json()["finding_id"], False)
    pagerduty = {
        "routing_key": "R0UTING",
        "event_action": "trigger",
        "dedup_key": "disk-full",
        "payload": {"summary": "Disk full on build-3", "severity": "warning", "source": "nagios"},
    }
    body, headers = signed(pagerduty, message_id="msg_3")
    assert intake.post("/response/alerts", content=body, headers=headers).status_code == 202
    body, headers = signed({**alert, "action": "resolve"}, message_id="msg_4")
    assert intake.post("/response/alerts", content=body, headers=headers).json()["action"] == "resolve"
    with db.session(readonly=True) as session:
        findings = {f.dedup_key: f for f in session.exec(select(Finding)).all()}
    assert set(findings) == {"alert:grafana:db-7-lag", "alert:pagerduty:disk-full"}
    lag = findings["alert:grafana:db-7-lag"]
    assert (lag.severity, lag.count, lag.status, lag.rule_id) == ("critical", 2, "resolved", "alert:grafana")
    assert lag.entities == {"ips": ["203.0.113.7"], "apps": ["alert-source:grafana"]}
    assert findings["alert:pagerduty:disk-full"].severity == "medium"


@pytest.mark.parametrize(
    "tamper",
    ["unsigned", "wrong-secret", "stale", "changed-body"],
)
def test_unsigned_tampered_or_stale_alerts_are_refused_and_audited(intake, db, tamper: str) -> None:
    alert = {"title": "Something", "severity": "high"}
    body, headers = signed(alert)
    if tamper == "unsigned":
        headers = {"content-type": "application/json"}
    elif tamper == "wrong-secret":
        body, headers = signed(alert, secret="another-secret")
    elif tamper == "stale":
        body, headers = signed(alert, at=int(time.time()) - 3600)
    else:
        body = body.replace(b"Something", b"Something else")
    answer = intake.post("/response/alerts", content=body, headers=headers)
    assert answer.status_code == 401, answer.text
    with db.session(readonly=True) as session:
        assert session.exec(select(Finding)).first() is None
        [refusal] = session.exec(
            select(AuditRecord).where(AuditRecord.action == "response.alert.refused")
        ).all()
    assert refusal.details["reason"]


def test_a_bad_alert_names_the_field(intake) -> None:
    body, headers = signed({"title": "x", "severity": "apocalyptic"})
    answer = intake.post("/response/alerts", content=body, headers=headers)
    assert answer.status_code == 401 and "severity" in answer.json()["detail"]


def test_an_alertmanager_webhook_fires_and_resolves_each_alert(intake, db) -> None:
    def group(status: str) -> dict:
        return {
            "version": "4",
            "groupKey": '{}:{alertname="HighErrorRate"}',
            "status": status,
            "receiver": "tenantguard",
            "alerts": [
                {
                    "status": status,
                    "labels": {
                        "alertname": "HighErrorRate",
                        "severity": "critical",
                        "job": "payments",
                        "instance": "10.0.0.5:9090",
                    },
                    "annotations": {"summary": "Payments error rate above 20%"},
                    "fingerprint": "a1b2c3",
                },
                {
                    "status": status,
                    "labels": {"alertname": "HighLatency", "severity": "warning", "job": "payments"},
                    "annotations": {},
                    "fingerprint": "d4e5f6",
                },
            ],
        }

    body, headers = signed(group("firing"), message_id="am_1")
    fired = intake.post("/response/alerts", content=body, headers=headers)
    assert fired.status_code == 202, fired.text
    assert [a["created"] for a in fired.json()["alerts"]] == [True, True]
    body, headers = signed(group("resolved"), message_id="am_2")
    assert [
        a["action"] for a in intake.post("/response/alerts", content=body, headers=headers).json()["alerts"]
    ] == [
        "resolve",
        "resolve",
    ]
    with db.session(readonly=True) as session:
        findings = {f.dedup_key: f for f in session.exec(select(Finding)).all()}
    assert set(findings) == {"alert:payments:a1b2c3", "alert:payments:d4e5f6"}
    error_rate = findings["alert:payments:a1b2c3"]
    assert (error_rate.title, error_rate.severity, error_rate.status) == (
        "Payments error rate above 20%",
        "critical",
        "resolved",
    )
    assert (
        error_rate.entities["ips"] == ["10.0.0.5"]
        and findings["alert:payments:d4e5f6"].title == "HighLatency"
    )
