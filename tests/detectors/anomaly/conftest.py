"""A small tenant's history written as stored events (the collectors' storage boundary, not a mock)."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.db import Database
from core.models import Connection, Event

START = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday
NEW_YORK = ("108.73.60", 40.7128, -74.006, "US", "New York")
CHICAGO = ("68.46.21", 41.8781, -87.6298, "US", "Chicago")
SAO_PAULO_HOSTING = ("200.98.49", -23.5505, -46.6333, "BR", "Sao Paulo")
LAGOS_HOSTING = ("109.238.193", 6.5244, 3.3792, "NG", "Lagos")
_ids = itertools.count(1)


def entra_signin(
    user: str,
    at: datetime,
    place: tuple[str, float, float, str, str],
    host: int = 10,
    *,
    error: int = 0,
    details: str | None = None,
    device: tuple[str, str] = ("Windows 10", "Edge 120.0"),
    device_id: str = "",
) -> dict[str, Any]:
    block, lat, lon, country, city = place
    return {
        "id": f"si-{next(_ids)}",
        "createdDateTime": at.isoformat().replace("+00:00", "Z"),
        "userPrincipalName": user,
        "ipAddress": f"{block}.{host}",
        "clientAppUsed": "Browser",
        "status": {"errorCode": error, "failureReason": None, "additionalDetails": details},
        "deviceDetail": {"deviceId": device_id, "operatingSystem": device[0], "browser": device[1]},
        "location": {
            "city": city,
            "countryOrRegion": country,
            "geoCoordinates": {"latitude": lat, "longitude": lon},
        },
    }


Row = tuple[str, str, dict[str, Any], datetime, str | None, str | None, str | None]


def write_events(db: Database, connection_id: int, rows: list[Row]) -> int:
    """Store rows (provider, stream, raw, at, actor, action, ip) as events of the connection."""
    with db.session() as session:
        for provider, stream, raw, at, actor, action, ip in rows:
            session.add(
                Event(
                    connection_id=connection_id,
                    provider=provider,
                    stream=stream,
                    provider_event_id=str(raw.get("id") or raw.get("Id") or next(_ids)),
                    occurred_at=at,
                    actor=actor,
                    action=action,
                    ip=ip,
                    raw=raw,
                )
            )
    return len(rows)


@pytest.fixture
def tenant(db: Database) -> Callable[..., int]:
    """Write events: tenant(stream_rows) where rows are (provider, stream, raw, at, actor, action, ip)."""
    with db.session() as session:
        connection = Connection(name="acme-m365", provider="m365", tenant="acme.test")
        session.add(connection)
        session.flush()
        connection_id = int(connection.id or 0)
    return functools.partial(write_events, db, connection_id)


def signin_row(raw: dict[str, Any], at: datetime) -> tuple:
    return ("m365", "signins", raw, at, raw["userPrincipalName"], "Sign-in activity", raw["ipAddress"])


def normal_history(users: list[str], days: int = 14) -> list[tuple]:
    """Each user signs in from New York on weekdays at 13:00-15:00 UTC, a few downloads a day."""
    rows = []
    for day in range(days):
        date = START + timedelta(days=day)
        if date.weekday() >= 5:
            continue
        for index, user in enumerate(users):
            for session in range(2):
                at = date + timedelta(hours=13 + session, minutes=index % 50)
                rows.append(signin_row(entra_signin(user, at, NEW_YORK, host=10 + index % 200), at))
            for n in range(3):
                at = date + timedelta(hours=14, minutes=n * 5 + index % 10)
                raw = {
                    "Id": f"ua-{next(_ids)}",
                    "Operation": "FileDownloaded",
                    "UserId": user,
                    "ObjectId": f"https://acme.sharepoint/doc{n}",
                    "CreationTime": at.isoformat(),
                }
                rows.append(("m365", "unified_audit", raw, at, user, "FileDownloaded", None))
    return rows
