"""The Reports API `gmail` (Gmail log events, stored as stream `gmail_log`: `gmail` is the Gmail
API message stream) and `mobile` (device events) applications are collected like the other
Reports applications, their nested message values readable by rules, and the shipped rules fire
on the story's compromised device, wipe and malware mail (not on the clean lookalikes)."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

from collectors import collect_once, connections_from_simulator
from collectors.connections import sync_connections
from core.db import Database
from core.models import Event, Finding
from core.settings import Settings
from detectors.pipeline import detect_new

SCENARIO = """
id: gmail_mobile_check
title: A phone is compromised and wiped; malware and phishing mail is opened
defaults: {users: 12, days: 2, seed: 5}
stories:
  - id: device-and-mail
    title: Compromised phone and malware mail
    kind: test
    when: {days_before_end: 1, utc: "10:00"}
    actors:
      victim: {pick: member}
      attacker: {country: BR, network: hosting, ips: 1}
    steps:
      - id: phone
        action: google.mobile_device
        with: {user: victim, events: [register, compromised, wipe], device_type: ANDROID}
      - id: malware_mail
        after: 1h
        action: google.gmail_delivery
        with: {user: victim, from: home, events: [received, opened], attachment: {file_name: invoice.zip, malware_family: Emotet}}
      - id: phishing_mail
        after: 2h
        action: google.gmail_delivery
        with: {user: victim, from: home, sender: it-desk@login-northwind.example, events: [received, opened], spam: phishing}
      - id: clean_mail
        after: 3h
        action: google.gmail_delivery
        with: {user: victim, from: home, sender: ann@partner.example, events: [received, opened], attachment: {file_name: report.pdf}}
"""


def test_gmail_log_and_mobile_streams_store_the_documented_events_and_the_rules_fire(
    db: Database, settings: Settings, settled_simulator, tmp_path: Path
) -> None:
    # given a story with a phone compromised then wiped, and malware, phishing and clean mail
    path = tmp_path / "gmail_mobile_check.yaml"
    path.write_text(SCENARIO)
    sim = settled_simulator(str(path), days=2)
    story = sim.truth["stories"][0]
    expected = {e["id"] for s in story["steps"] for e in s["events"]}
    # when only the Google gmail_log and mobile streams are collected, then detection runs
    sync_connections(
        db,
        connections_from_simulator(
            sim.info, providers=["google"], streams={"google": ["gmail_log", "mobile"]}
        ),
        source="simulator",
    )
    report = collect_once(db, settings)
    assert report.ok, [r.error for r in report.failures]
    with db.session(readonly=True) as session:
        events = session.exec(select(Event).where(Event.provider == "google")).all()
    # then every event of the story is stored, under its stream, actor the victim
    assert {e.provider_event_id for e in events} == expected
    assert {e.stream for e in events} == {"gmail_log", "mobile"}
    mobile = sorted(e.action for e in events if e.stream == "mobile")
    assert mobile == ["DEVICE_ACTION_EVENT", "DEVICE_COMPROMISED_EVENT", "DEVICE_REGISTER_UNREGISTER_EVENT"]
    opened = [
        e
        for e in events
        if e.stream == "gmail_log" and str(e.raw["parameters"]["event_info"]["mail_event_type"]) == "7"
    ]
    assert len(opened) == 3
    # the nested message values are objects (and lists of objects) in the stored record
    malware = [
        e
        for e in opened
        if e.raw["parameters"]["message_info"].get("attachment", [{}])[0].get("malware_family")
    ]
    assert [e.raw["parameters"]["message_info"]["attachment"][0]["malware_family"] for e in malware] == [
        "Emotet"
    ]
    detect_new(db, settings, with_anomaly=False)
    with db.session(readonly=True) as session:
        findings = session.exec(select(Finding)).all()
    fired = {f.rule_id for f in findings}
    assert {
        "google_mobile_new_device",
        "google_mobile_device_compromised",
        "google_mobile_device_wiped",
        "google_gmail_malware_attachment",
        "google_gmail_phishing_opened",
    } <= fired
    victim = story["people"][0] if story.get("people") else None
    by_rule = {f.rule_id: f for f in findings}
    assert (
        len([f for f in findings if f.rule_id == "google_gmail_malware_attachment"]) == 1
    )  # not the clean mail
    if victim:
        assert victim in by_rule["google_mobile_device_compromised"].entities["people"]
        assert victim in by_rule["google_gmail_phishing_opened"].entities["people"]
