"""Anomaly detection scenarios over stored events: each attack found and explained; ordinary days quiet."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from core.db import Database
from core.models import Finding, PersonBaseline, QuarantinedRecord
from detectors.anomaly import AnomalyConfig, detect_anomalies
from detectors.pipeline import detect_new
from tests.detectors.anomaly.conftest import (
    CHICAGO,
    LAGOS_HOSTING,
    NEW_YORK,
    SAO_PAULO_HOSTING,
    START,
    entra_signin,
    normal_history,
    signin_row,
)

USERS = [f"user{i}@acme.test" for i in range(20)]
ATTACK_DAY = START + timedelta(days=15)  # Tuesday of the third week


def anomaly_findings(db: Database) -> list[Finding]:
    with db.session() as session:
        return list(session.exec(select(Finding).where(Finding.kind == "anomaly")).all())


def medium_plus(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity in ("medium", "high", "critical")]


def test_given_two_ordinary_weeks_then_nothing_medium_or_higher_is_reported(db, settings, tenant) -> None:
    tenant(normal_history(USERS))
    report = detect_anomalies(db, settings)
    assert report.signins > 0 and report.activities > 0
    assert medium_plus(anomaly_findings(db)) == []
    with db.session() as session:
        assert len(session.exec(select(PersonBaseline)).all()) == len(USERS)


def test_given_a_sign_in_from_brazil_40_minutes_after_new_york_then_impossible_travel_explains_itself(
    db, settings, tenant
) -> None:
    tenant(normal_history(USERS))
    home = ATTACK_DAY + timedelta(hours=13)
    away = home + timedelta(minutes=40)
    tenant(
        [
            signin_row(entra_signin("user3@acme.test", home, NEW_YORK), home),
            signin_row(
                entra_signin("user3@acme.test", away, SAO_PAULO_HOSTING, device=("Linux", "Firefox 120")),
                away,
            ),
        ]
    )

    detect_anomalies(db, settings)

    travel = [f for f in anomaly_findings(db) if f.rule_id == "anomaly.impossible_travel"]
    assert len(travel) == 1
    finding = travel[0]
    assert finding.severity == "high" and finding.confidence >= 0.8
    assert "first sign-in from BR for user3@acme.test" in finding.description
    assert "7,6" in finding.description and "km/h" in finding.description  # ~7,660 km in 40 minutes
    assert finding.context["speed_kmh"] > 10_000
    assert len(finding.evidence_event_ids) == 2
    new_country = [f for f in anomaly_findings(db) if f.rule_id == "anomaly.new_country"]
    assert new_country and new_country[0].severity in ("medium", "high")  # hosting network + new device


def test_given_a_trip_by_plane_then_a_new_country_is_low_and_not_impossible(db, settings, tenant) -> None:
    tenant(normal_history(USERS))
    home = ATTACK_DAY + timedelta(hours=13)
    landed = home + timedelta(hours=12)
    chicago = ("68.46.21", 41.8781, -87.6298, "US", "Chicago")
    london_isp = ("94.13.36", 51.5074, -0.1278, "GB", "London")
    tenant(
        [
            signin_row(entra_signin("user4@acme.test", home, chicago), home),
            signin_row(entra_signin("user4@acme.test", landed, london_isp), landed),
        ]
    )
    detect_anomalies(db, settings)
    findings = anomaly_findings(db)
    assert not [f for f in findings if f.rule_id == "anomaly.impossible_travel"]
    (new_country,) = [f for f in findings if f.rule_id == "anomaly.new_country"]
    assert (
        new_country.severity == "low"
        and "first sign-in from GB for user4@acme.test" in new_country.description
    )


MUMBAI_MOBILE = ("49.34.106", 19.076, 72.8777, "IN", "Mumbai")


def _with_laptop(rows: list[tuple], user: str, device_id: str) -> list[tuple]:
    """`rows` with `user`'s sign-ins made on their registered laptop `device_id`."""
    for row in rows:
        if row[1] == "signins" and row[4] == user:
            row[2]["deviceDetail"]["deviceId"] = device_id
    return rows


def test_given_a_far_sign_in_on_the_persons_own_registered_device_then_travel_is_low_and_says_why(
    db, settings, tenant
) -> None:
    # A traveller's evening at home, then their enrolled laptop signs in from a Mumbai mobile
    # network half an hour later (the simulator's trips overlap days like this; so do split tunnels).
    tenant(_with_laptop(normal_history(USERS), "user5@acme.test", "laptop-5"))
    home = ATTACK_DAY + timedelta(hours=13)
    away = home + timedelta(minutes=30)
    tenant(
        [
            signin_row(entra_signin("user5@acme.test", home, NEW_YORK, device_id="laptop-5"), home),
            signin_row(entra_signin("user5@acme.test", away, MUMBAI_MOBILE, device_id="laptop-5"), away),
        ]
    )

    detect_anomalies(db, settings)

    (travel,) = [f for f in anomaly_findings(db) if f.rule_id == "anomaly.impossible_travel"]
    assert travel.severity == "low" and travel.confidence < 0.5
    assert travel.context["own_registered_device"] == "id:laptop-5"
    assert "their registered device laptop-5" in travel.description
    assert medium_plus(anomaly_findings(db)) == []


def test_given_a_far_sign_in_without_the_persons_device_then_travel_stays_high(db, settings, tenant) -> None:
    # The same place and time, but from a machine that carries no device of theirs: someone else.
    tenant(_with_laptop(normal_history(USERS), "user5@acme.test", "laptop-5"))
    home = ATTACK_DAY + timedelta(hours=13)
    away = home + timedelta(minutes=30)
    tenant(
        [
            signin_row(entra_signin("user5@acme.test", home, NEW_YORK, device_id="laptop-5"), home),
            signin_row(
                entra_signin("user5@acme.test", away, MUMBAI_MOBILE, device=("Windows 10", "Edge 120.0")),
                away,
            ),
        ]
    )

    detect_anomalies(db, settings)

    (travel,) = [f for f in anomaly_findings(db) if f.rule_id == "anomaly.impossible_travel"]
    assert travel.severity == "high" and travel.context["own_registered_device"] is None


TOKYO_ISP = ("153.153.239", 35.6762, 139.6503, "JP", "Tokyo")


def _vpn_evening_then_phone_at_home(tenant, vpn_device_id: str) -> None:
    """user6's evening through a hosting VPN exit in Sao Paulo, then next morning a sign-in from a
    Tokyo ISP network they never used, nine hours later (faster than a plane from Sao Paulo)."""
    tenant(_with_laptop(normal_history(USERS), "user6@acme.test", "laptop-6"))
    evening = ATTACK_DAY + timedelta(hours=20)
    morning = evening + timedelta(hours=9)
    vpn = entra_signin("user6@acme.test", evening, SAO_PAULO_HOSTING, device_id=vpn_device_id)
    phone = entra_signin("user6@acme.test", morning, TOKYO_ISP, device=("Android", "Chrome Mobile 124"))
    tenant([signin_row(vpn, evening), signin_row(phone, morning)])


def test_given_the_last_sign_in_came_through_a_vpn_on_the_persons_own_laptop_then_no_travel(
    db, settings, tenant
) -> None:
    # The VPN's exit is where the VPN is, not where the person was: nothing to travel from.
    _vpn_evening_then_phone_at_home(tenant, vpn_device_id="laptop-6")

    detect_anomalies(db, settings)

    assert [f for f in anomaly_findings(db) if f.rule_id == "anomaly.impossible_travel"] == []


def test_given_the_last_sign_in_came_from_hosting_without_the_persons_device_then_travel_is_reported(
    db, settings, tenant
) -> None:
    # The same hop, but the hosting sign-in came from a machine with no device of theirs.
    _vpn_evening_then_phone_at_home(tenant, vpn_device_id="")

    detect_anomalies(db, settings)

    assert [f.rule_id for f in anomaly_findings(db) if f.rule_id == "anomaly.impossible_travel"]


def test_given_one_ip_failing_against_many_accounts_then_password_spray_names_the_ip_and_the_victim(
    db, settings, tenant
) -> None:
    tenant(normal_history(USERS))
    rows = []
    for index, user in enumerate(USERS[:12]):
        at = ATTACK_DAY + timedelta(hours=3, minutes=index * 2)
        rows.append(signin_row(entra_signin(user, at, LAGOS_HOSTING, host=7, error=50126), at))
    won = ATTACK_DAY + timedelta(hours=3, minutes=30)
    rows.append(signin_row(entra_signin("user5@acme.test", won, LAGOS_HOSTING, host=7), won))
    tenant(rows)

    detect_anomalies(db, settings)

    (spray,) = [f for f in anomaly_findings(db) if f.rule_id == "anomaly.password_spray"]
    assert spray.severity == "high"
    assert spray.entities["ips"] == ["109.238.193.7"]
    assert spray.entities["people"][0] == "user5@acme.test"
    assert "12 failed sign-ins against 12 different accounts" in spray.description
    assert "user5@acme.test" in spray.description
    assert len(spray.evidence_event_ids) == 13


def test_given_repeated_denied_mfa_prompts_then_mfa_fatigue_is_reported_with_the_acceptance(
    db, settings, tenant
) -> None:
    tenant(normal_history(USERS))
    rows = []
    for n in range(6):
        at = ATTACK_DAY + timedelta(hours=2, minutes=n)
        rows.append(
            signin_row(
                entra_signin(
                    "user6@acme.test",
                    at,
                    LAGOS_HOSTING,
                    error=500121,
                    details="MFA denied; user declined the authentication",
                ),
                at,
            )
        )
    accepted = ATTACK_DAY + timedelta(hours=2, minutes=8)
    rows.append(signin_row(entra_signin("user6@acme.test", accepted, LAGOS_HOSTING), accepted))
    tenant(rows)

    detect_anomalies(db, settings)

    (fatigue,) = [f for f in anomaly_findings(db) if f.rule_id == "anomaly.mfa_fatigue"]
    assert fatigue.severity == "high" and fatigue.context["accepted"] is True
    assert "6 MFA prompts denied or failed for user6@acme.test within 5 minutes" in fatigue.description
    assert len(fatigue.evidence_event_ids) == 7


def test_given_a_mass_download_then_the_spike_is_compared_with_the_person_and_peers(
    db, settings, tenant
) -> None:
    tenant(normal_history(USERS))
    rows = []
    for n in range(400):
        at = ATTACK_DAY + timedelta(hours=15, seconds=n * 5)
        raw = {
            "Id": f"bulk-{n}",
            "Operation": "FileDownloaded",
            "UserId": "user7@acme.test",
            "ObjectId": f"https://acme.sharepoint/secret{n}",
        }
        rows.append(("m365", "unified_audit", raw, at, "user7@acme.test", "FileDownloaded", None))
    tenant(rows)

    detect_anomalies(db, settings, batch_size=150)  # the spike arrives over several batches

    spikes = [f for f in anomaly_findings(db) if f.rule_id == "anomaly.volume_spike"]
    assert len(spikes) == 1
    spike = spikes[0]
    assert spike.severity == "high"
    # the finding grows as batches arrive; its context carries the latest explanation
    assert spike.context["count"] == 400
    assert spike.context["explanation"].startswith("400 files downloaded by user7@acme.test")
    assert "daily average is 3.0" in spike.context["explanation"]
    assert len(spike.evidence_event_ids) >= 150


def test_given_a_new_tenant_without_history_then_findings_are_low_confidence(db, settings, tenant) -> None:
    first = START + timedelta(hours=13)
    later = first + timedelta(minutes=30)
    tenant(
        [
            signin_row(entra_signin("fresh@acme.test", first, CHICAGO), first),
            signin_row(entra_signin("fresh@acme.test", later, SAO_PAULO_HOSTING), later),
        ]
    )
    detect_anomalies(db, settings)
    findings = anomaly_findings(db)
    assert medium_plus(findings) == []
    assert all(
        f.confidence <= 0.3
        for f in findings
        if f.rule_id in ("anomaly.impossible_travel", "anomaly.new_country")
    )


def test_given_an_allow_listed_vpn_then_it_is_never_travel(db, settings, tenant) -> None:
    tenant(normal_history(USERS))
    home = ATTACK_DAY + timedelta(hours=13)
    away = home + timedelta(minutes=40)
    tenant(
        [
            signin_row(entra_signin("user8@acme.test", home, NEW_YORK), home),
            signin_row(entra_signin("user8@acme.test", away, SAO_PAULO_HOSTING), away),
        ]
    )
    detect_anomalies(db, settings, config=AnomalyConfig(allowed_networks=["200.98.49.0/24"]))
    assert [f.rule_id for f in anomaly_findings(db) if f.entities.get("people") == ["user8@acme.test"]] == []


def _spray_with_one_unreadable_sign_in(tenant) -> dict:
    """Ordinary weeks, a password spray, and in the same batch an Azure-Monitor-shaped sign-in whose
    location is a string (the detector reads it as an object); returns the unreadable one."""
    tenant(normal_history(USERS))
    rows = []
    for index, user in enumerate(USERS[:12]):
        at = ATTACK_DAY + timedelta(hours=3, minutes=index * 2)
        rows.append(signin_row(entra_signin(user, at, LAGOS_HOSTING, host=7, error=50126), at))
    odd_at = ATTACK_DAY + timedelta(hours=3, minutes=1)
    odd = {**entra_signin("user19@acme.test", odd_at, NEW_YORK), "location": "New York, US"}
    rows.append(signin_row(odd, odd_at))
    tenant(rows)
    return odd


def test_given_one_unreadable_sign_in_in_a_batch_then_it_is_quarantined_and_the_rest_is_still_scored(
    db, settings, tenant
) -> None:
    # given a password spray and, in the same batch, one sign-in the detector cannot read
    odd = _spray_with_one_unreadable_sign_in(tenant)

    # when anomaly detection runs over the backlog
    report = detect_anomalies(db, settings)

    # then the spray is still found
    assert [f.rule_id for f in anomaly_findings(db)].count("anomaly.password_spray") == 1
    # and the unreadable event is quarantined with the reason, and the run says so
    with db.session() as session:
        (kept,) = session.exec(select(QuarantinedRecord)).all()
    assert kept.stream == "signins" and "AttributeError" in kept.reason
    assert odd["id"] in kept.raw
    assert len(report.errors) == 1 and "quarantined" in report.errors[0]


def test_given_one_unreadable_sign_in_then_the_detection_run_reports_it_and_keeps_the_others(
    db, settings, tenant
) -> None:
    # given a spray and one unreadable sign-in, detected by the pipeline (rules + anomalies) as serve runs it
    _spray_with_one_unreadable_sign_in(tenant)

    result = detect_new(db, settings)

    assert any("quarantined" in error for error in result.errors)
    assert [f.rule_id for f in anomaly_findings(db)].count("anomaly.password_spray") == 1
