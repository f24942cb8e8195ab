"""Detection quality of the anomaly and drift families: recall on attack steps, quiet-week noise.

`score(findings, steps)` is the scoring the simulator's ground truth needs: a step is found when
one of a family's findings cites one of the step's events (Event ids), precision = findings that
cite an attack event / all findings of the family. Until the simulator's scenarios can be
collected here, `run()` uses a built-in synthetic tenant (labelled "synthetic" in the figures):
weeks of ordinary sign-ins and downloads with business travel by plane and steady VPN users,
then attack steps (password spray with a success from a new country, impossible travel, MFA
fatigue, mass download, security defaults switched off), and a quiet week with no attack.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlmodel import select

from bench.harness import Figure
from core.db import Database
from core.models import ConfigSnapshot, Connection, Event, Finding
from core.settings import Settings
from detectors.anomaly import detect_anomalies
from detectors.posture import evaluate

AREA = "quality"
_START = None


def _signin(
    user: str,
    at,
    block: str,
    lat: float,
    lon: float,
    country: str,
    host: int,
    error: int = 0,
    details: str | None = None,
    device=("Windows 10", "Edge"),
) -> dict:
    return {
        "id": f"{user}-{at.timestamp()}-{host}-{error}",
        "userPrincipalName": user,
        "ipAddress": f"{block}.{host}",
        "status": {"errorCode": error, "additionalDetails": details},
        "deviceDetail": {"operatingSystem": device[0], "browser": device[1]},
        "location": {"countryOrRegion": country, "geoCoordinates": {"latitude": lat, "longitude": lon}},
    }


OFFICES = [
    ("108.73.60", 40.71, -74.0, "US"),
    ("68.46.21", 41.88, -87.63, "US"),
    ("94.13.36", 51.51, -0.13, "GB"),
    ("80.187.157", 52.52, 13.40, "DE"),
]
TRIPS = [
    ("181.9.196", -34.6, -58.38, "AR"),
    ("177.27.233", -23.55, -46.63, "BR"),
    ("124.107.16", 14.6, 120.98, "PH"),
]
VPN = ("23.82.113", 37.77, -122.42, "US")  # a hosting network a few users always use
ATTACKER = ("109.238.193", 6.52, 3.38, "NG")


def build_tenant(
    db: Database, users: int, days: int, attacks_on: int | None, seed: int = 3
) -> dict[str, set[int]]:
    """Write the synthetic tenant; returns attack step name -> Event ids."""
    from datetime import UTC, datetime

    rng = np.random.default_rng(seed)
    start = datetime(2025, 1, 6, tzinfo=UTC)
    people = [f"user{i}@corp.test" for i in range(users)]
    home = rng.integers(0, len(OFFICES), users)
    rows: list[tuple[str, str, dict, datetime, str]] = []
    steps: dict[str, list[str]] = defaultdict(list)
    for day in range(days):
        date = start + timedelta(days=day)
        if date.weekday() >= 5:
            continue
        travelling = set(rng.choice(users, max(1, users // 50), replace=False).tolist())
        for u, user in enumerate(people):
            place = VPN if u % 40 == 0 else OFFICES[home[u]]
            for k in range(int(rng.integers(2, 6))):
                at = date + timedelta(hours=float(np.clip(rng.normal(14, 1.5), 8, 20)), minutes=k)
                where = place
                if u in travelling and k > 0:  # took a flight: the next sign-ins come 16+ hours later abroad
                    where = TRIPS[u % len(TRIPS)]
                    at = at + timedelta(hours=16)
                rows.append(
                    (
                        "signins",
                        f"s{len(rows)}",
                        _signin(user, at, where[0], where[1], where[2], where[3], 10 + u % 200),
                        at,
                        user,
                    )
                )
            for _ in range(int(rng.integers(0, 8))):
                at = date + timedelta(hours=15, minutes=int(rng.integers(0, 120)))
                rows.append(
                    (
                        "unified_audit",
                        f"d{len(rows)}",
                        {"Operation": "FileDownloaded", "UserId": user},
                        at,
                        user,
                    )
                )
        if attacks_on is not None and day == attacks_on:
            t = date + timedelta(hours=3)
            for n, user in enumerate(people[:15]):
                key = f"spray{n}"
                rows.append(
                    (
                        "signins",
                        key,
                        _signin(user, t + timedelta(minutes=n), *ATTACKER, 7, error=50126),
                        t + timedelta(minutes=n),
                        user,
                    )
                )
                steps["password_spray"].append(key)
            won = t + timedelta(minutes=30)
            rows.append(
                (
                    "signins",
                    "spray-won",
                    _signin(people[5], won, *ATTACKER, 7, device=("Linux", "Firefox")),
                    won,
                    people[5],
                )
            )
            steps["success_from_new_country"].append("spray-won")
            for n in range(400):
                at = won + timedelta(minutes=10, seconds=n * 3)
                key = f"bulk{n}"
                rows.append(
                    (
                        "unified_audit",
                        key,
                        {"Operation": "FileDownloaded", "UserId": people[5]},
                        at,
                        people[5],
                    )
                )
                steps["mass_download"].append(key)
            victim = people[9]
            for n in range(6):
                at = date + timedelta(hours=13, minutes=n)
                key = f"mfa{n}"
                rows.append(
                    (
                        "signins",
                        key,
                        _signin(victim, at, *ATTACKER, 9, error=500121, details="MFA denied"),
                        at,
                        victim,
                    )
                )
                steps["mfa_fatigue"].append(key)
            traveller = people[12]
            seen = date + timedelta(hours=14, minutes=59)
            jump = date + timedelta(hours=15, minutes=40)
            p = OFFICES[home[12]]
            rows.append(
                ("signins", "travel-a", _signin(traveller, seen, p[0], p[1], p[2], p[3], 44), seen, traveller)
            )
            rows.append(
                (
                    "signins",
                    "travel-b",
                    _signin(traveller, jump, "200.98.49", -23.55, -46.63, "BR", 8),
                    jump,
                    traveller,
                )
            )
            steps["impossible_travel"].append("travel-b")
    with db.session() as session:
        connection = Connection(name="synthetic", provider="m365", tenant="corp.test")
        session.add(connection)
        session.flush()
        for stream, key, raw, at, user in sorted(rows, key=lambda r: r[3]):
            session.add(
                Event(
                    connection_id=connection.id,
                    provider="m365",
                    stream=stream,
                    provider_event_id=key,
                    occurred_at=at,
                    actor=user,
                    action=raw.get("Operation"),
                    raw=raw,
                )
            )
        ids = {e.provider_event_id: int(e.id or 0) for e in session.exec(select(Event)).all()}
    return {name: {ids[k] for k in keys} for name, keys in steps.items()}


def drift_scenario(db: Database) -> set[int]:
    """Security defaults on, then switched off by an admin: returns the admin event id (the step)."""
    from datetime import UTC, datetime

    at = datetime(2025, 2, 1, tzinfo=UTC)
    with db.session() as session:
        connection = session.exec(select(Connection)).first()
        assert connection is not None
        session.add(
            ConfigSnapshot(
                connection_id=connection.id,
                provider="m365",
                object_type="security_defaults",
                object_id="sd",
                content_hash="a",
                data={"isEnabled": True},
                collected_at=at,
            )
        )
    evaluate(db, now=at)
    with db.session() as session:
        event = Event(
            connection_id=connection.id,
            provider="m365",
            stream="directory_audits",
            provider_event_id="dir-1",
            occurred_at=at + timedelta(hours=1),
            actor="mallory@corp.test",
            action="Update policy",
            raw={
                "targetResources": [
                    {
                        "id": "00000000-0000-0000-0000-000000000005",
                        "modifiedProperties": [{"displayName": "isEnabled"}],
                    }
                ]
            },
        )
        session.add(event)
        session.flush()
        session.add(
            ConfigSnapshot(
                connection_id=connection.id,
                provider="m365",
                object_type="security_defaults",
                object_id="sd",
                content_hash="b",
                data={"isEnabled": False},
                collected_at=at + timedelta(hours=2),
            )
        )
        step = {int(event.id or 0)}
    evaluate(db, now=at + timedelta(hours=2))
    return step


def score(findings: list[Finding], steps: dict[str, set[int]]) -> tuple[dict[str, bool], float]:
    """Which steps some finding cites, and the share of findings that cite any attack event."""
    attack = set().union(*steps.values()) if steps else set()
    found = {name: any(set(f.evidence_event_ids) & ids for f in findings) for name, ids in steps.items()}
    relevant = [f for f in findings if set(f.evidence_event_ids) & attack]
    return found, (len(relevant) / len(findings) if findings else 1.0)


def _findings(db: Database, kind: str) -> list[Finding]:
    with db.session() as session:
        return list(session.exec(select(Finding).where(Finding.kind == kind)).all())


def run(quick: bool = False) -> list[Figure]:
    users = 200 if quick else 1000
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "attack", database_url=f"sqlite:///{Path(tmp) / 'attack.db'}"
        )
        db = Database.from_settings(settings)
        db.upgrade()
        steps = build_tenant(db, users, days=22, attacks_on=17)
        detect_anomalies(db, settings)
        steps["drift_security_defaults_off"] = drift_scenario(db)
        anomalies, drift = _findings(db, "anomaly"), _findings(db, "drift")
        found, precision = score(anomalies, {k: v for k, v in steps.items() if not k.startswith("drift")})
        found_drift, drift_precision = score(
            drift, {"drift_security_defaults_off": steps["drift_security_defaults_off"]}
        )
        found.update(found_drift)
        recall = sum(found.values()) / len(found)
        missed = [name for name, ok in found.items() if not ok]
        figures.append(
            Figure(
                AREA,
                f"recall on attack steps (synthetic, {users} users)",
                recall,
                "ratio",
                goal="1.0",
                notes=f"missed: {missed}",
                extra={"steps": found},
            )
        )
        figures.append(
            Figure(
                AREA,
                "anomaly precision (findings citing attack events)",
                precision,
                "ratio",
                extra={"findings": len(anomalies)},
            )
        )
        figures.append(
            Figure(AREA, "drift precision", drift_precision, "ratio", extra={"findings": len(drift)})
        )
        db.dispose()

        quiet_settings = Settings(
            data_dir=Path(tmp) / "quiet", database_url=f"sqlite:///{Path(tmp) / 'quiet.db'}"
        )
        quiet = Database.from_settings(quiet_settings)
        quiet.upgrade()
        build_tenant(quiet, users, days=21, attacks_on=None)
        detect_anomalies(quiet, quiet_settings)
        with quiet.session() as session:
            rows = session.exec(select(Finding)).all()
        last_week = (
            [f for f in rows if f.first_seen.timestamp() >= rows[0].first_seen.timestamp() - 1]
            if rows
            else []
        )
        loud = [
            f
            for f in last_week
            if f.severity in ("medium", "high", "critical") and f.first_seen >= _quiet_week_start()
        ]
        rate = len(loud) / (users / 1000) / 7
        figures.append(
            Figure(
                AREA,
                "quiet week: medium+ findings per 1,000 users per day (synthetic)",
                rate,
                "findings",
                goal="<= 1",
                extra={
                    "by_rule": _count(loud),
                    "all_findings_last_week": _count(
                        [f for f in rows if f.first_seen >= _quiet_week_start()]
                    ),
                },
            )
        )
        quiet.dispose()
    return figures


def _quiet_week_start():
    from datetime import UTC, datetime

    return datetime(2025, 1, 6, tzinfo=UTC) + timedelta(days=14)


def _count(findings: list[Finding]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for f in findings:
        counts[f"{f.rule_id}:{f.severity}"] += 1
    return dict(counts)


if __name__ == "__main__":
    import sys

    from bench.harness import print_table

    figures = run(quick="--quick" in sys.argv)
    print_table(figures)
    for figure in figures:
        if figure.extra or figure.notes:
            print(figure.name, figure.notes, figure.extra)
