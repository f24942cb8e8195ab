"""Microsoft 365 Defender alerts (Graph `security/alerts_v2`) are collected by lastUpdateDateTime
window and become findings of the alert's severity that name the user and address of its
evidence (the account takeover's Defender for Office 365 forwarding alert)."""

from __future__ import annotations

from sqlmodel import select

from collectors import collect_once, connections_from_simulator
from collectors.connections import sync_connections
from collectors.streams.base import stream_spec
from core.db import Database
from core.models import Event, Finding
from core.settings import Settings
from detectors.pipeline import detect_new


def test_the_defender_alert_of_the_takeover_is_stored_and_becomes_a_high_finding_on_the_victim(
    db: Database, settings: Settings, settled_simulator
) -> None:
    # given the account takeover, whose forwarding rule raises a Defender for Office 365 alert
    sim = settled_simulator("account_takeover", users=20, days=3)
    story = sim.truth["stories"][0]
    [step] = [s for s in story["steps"] if s["id"] == "defender_alert"]
    assert stream_spec("m365", "security_alerts").enabled_by_default  # runs without configuration
    # when only that stream is collected (pages of one alert: @odata.nextLink is followed), then detected
    connections = connections_from_simulator(
        sim.info, providers=["m365"], streams={"m365": ["security_alerts"]}
    )
    connections[0].config["page_size"] = 1
    sync_connections(db, connections, source="simulator")
    report = collect_once(db, settings)
    assert report.ok, [r.error for r in report.failures]
    with db.session(readonly=True) as session:
        events = session.exec(select(Event).where(Event.stream == "security_alerts")).all()
    # then the alert is stored once, as the documented resource, by the victim from the attacker's IP
    assert {e.provider_event_id for e in events} == {e["id"] for e in step["events"]}
    [alert] = events
    assert alert.raw["severity"] == "high" and alert.raw["serviceSource"] == "microsoftDefenderForOffice365"
    assert {e["@odata.type"] for e in alert.raw["evidence"]} >= {
        "#microsoft.graph.security.userEvidence",
        "#microsoft.graph.security.ipEvidence",
    }
    assert alert.actor in story["people"] and alert.ip in story["attacker_ips"]
    detect_new(db, settings, with_anomaly=False)
    with db.session(readonly=True) as session:
        [finding] = session.exec(select(Finding).where(Finding.rule_id == "m365_security_alert_high")).all()
    assert finding.severity == "high" and "Suspicious email forwarding activity" in finding.title
    assert finding.entities["people"] == [alert.actor] and alert.ip in finding.entities["ips"]
    assert finding.evidence_event_ids == [alert.id]
