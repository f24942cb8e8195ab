"""The ceilings the pipeline is compared with, measured in the same run on the same events.

Three raw limits, none of which any tenantguard code can beat:

* parsing the provider JSON with orjson (events/s; stdlib ``json`` as the naive baseline);
* SQLite ``executemany`` of already-normalised rows in one transaction into the real ``event``
  table (product PRAGMAs: WAL, synchronous=NORMAL) (rows/s);
* PostgreSQL ``COPY`` through psycopg 3 into the real ``event`` table (rows/s; ``executemany``
  as the baseline).

The events are shaped like the providers' own records (Entra sign-ins and directory audits,
Google Reports activities, Slack audit entries). :func:`bench.e2e` reuses the ``measure_*``
functions on the very events it collected, so "pipeline / limit" ratios compare like with like.
Set ``TENANTGUARD_BENCH_POSTGRES_URL`` to point at another server (default: the dev server).
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg

from bench.harness import Figure, Stats, print_table, rate, repeat
from collectors.store import EVENT_COLUMNS
from core.db import Database
from core.packing import pack

AREA = "limits"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class EventRow:
    """One event already normalised: the values an insert into ``event`` needs, nothing more."""

    provider: str
    stream: str
    provider_event_id: str
    occurred_at: datetime
    actor: str | None
    action: str | None
    target: str | None
    ip: str | None
    country: str | None
    outcome: str | None
    raw: dict[str, Any]


def pg_admin_url() -> str:
    return os.environ.get("TENANTGUARD_BENCH_POSTGRES_URL", DEFAULT_PG_URL)


def postgres_problem() -> str | None:
    """None when the benchmark PostgreSQL answers, else the first line of why not."""
    try:
        with psycopg.connect(pg_admin_url(), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# --- sample events shaped like the providers' own records -------------------------------------

_COUNTRIES = ("US", "GB", "DE", "FR", "IN", "BR", "JP", "AU", "NL", "CA")
_APPS = (
    "Office 365 Exchange Online",
    "Microsoft Teams",
    "SharePoint Online",
    "Azure Portal",
    "Graph explorer",
)
_SLACK_ACTIONS = ("user_login", "file_downloaded", "file_shared", "user_logout", "app_installed")
_GOOGLE_APPS = {
    "login": ("login_success", "login_failure", "logout"),
    "drive": ("view", "download", "change_user_access", "edit"),
    "token": ("authorize", "revoke"),
}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _ip(rng: random.Random) -> str:
    return f"{rng.choice((20, 40, 52, 81, 91, 131, 185, 203))}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _entra_signin(rng: random.Random, at: datetime, user: str) -> tuple[dict[str, Any], EventRow]:
    failed = rng.random() < 0.05
    country = rng.choice(_COUNTRIES)
    ip = _ip(rng)
    record: dict[str, Any] = {
        "id": str(uuid.UUID(int=rng.getrandbits(128))),
        "createdDateTime": _iso(at),
        "userDisplayName": user.split("@")[0].title(),
        "userPrincipalName": user,
        "userId": str(uuid.UUID(int=rng.getrandbits(128))),
        "appId": str(uuid.UUID(int=rng.getrandbits(128))),
        "appDisplayName": rng.choice(_APPS),
        "ipAddress": ip,
        "clientAppUsed": "Browser",
        "correlationId": str(uuid.UUID(int=rng.getrandbits(128))),
        "conditionalAccessStatus": "success",
        "isInteractive": rng.random() < 0.6,
        "riskDetail": "none",
        "riskLevelAggregated": "none",
        "riskLevelDuringSignIn": "none",
        "riskState": "none",
        "riskEventTypes": [],
        "resourceDisplayName": "Microsoft Graph",
        "resourceId": "00000003-0000-0000-c000-000000000000",
        "status": {
            "errorCode": 50126 if failed else 0,
            "failureReason": "Invalid username or password." if failed else None,
            "additionalDetails": None,
        },
        "deviceDetail": {
            "deviceId": "",
            "displayName": None,
            "operatingSystem": rng.choice(("Windows 10", "MacOs", "iOS 17", "Android 14")),
            "browser": rng.choice(("Edge 120.0", "Chrome 121.0", "Safari 17")),
            "isCompliant": None,
            "isManaged": None,
            "trustType": None,
        },
        "location": {
            "city": "Somewhere",
            "state": "",
            "countryOrRegion": country,
            "geoCoordinates": {"altitude": None, "latitude": 51.5, "longitude": -0.12},
        },
        "appliedConditionalAccessPolicies": [],
    }
    row = EventRow(
        "m365",
        "signins",
        record["id"],
        at,
        user,
        "signin",
        record["appDisplayName"],
        ip,
        country,
        "failure" if failed else "success",
        record,
    )
    return record, row


def _entra_directory_audit(rng: random.Random, at: datetime, user: str) -> tuple[dict[str, Any], EventRow]:
    target = f"user{rng.randrange(10_000)}@contoso.example"
    record: dict[str, Any] = {
        "id": f"Directory_{uuid.UUID(int=rng.getrandbits(128))}",
        "category": "UserManagement",
        "correlationId": str(uuid.UUID(int=rng.getrandbits(128))),
        "result": "success",
        "resultReason": "",
        "activityDisplayName": rng.choice(("Update user", "Add member to group", "Reset password")),
        "activityDateTime": _iso(at),
        "loggedByService": "Core Directory",
        "operationType": "Update",
        "initiatedBy": {
            "user": {
                "id": str(uuid.UUID(int=rng.getrandbits(128))),
                "userPrincipalName": user,
                "ipAddress": _ip(rng),
            },
            "app": None,
        },
        "targetResources": [
            {
                "id": str(uuid.UUID(int=rng.getrandbits(128))),
                "displayName": None,
                "type": "User",
                "userPrincipalName": target,
                "modifiedProperties": [
                    {"displayName": "AccountEnabled", "oldValue": "[true]", "newValue": "[true]"}
                ],
            }
        ],
        "additionalDetails": [],
    }
    row = EventRow(
        "m365",
        "directory_audits",
        record["id"],
        at,
        user,
        record["activityDisplayName"],
        target,
        record["initiatedBy"]["user"]["ipAddress"],
        None,
        "success",
        record,
    )
    return record, row


def _google_activity(rng: random.Random, at: datetime, user: str) -> tuple[dict[str, Any], EventRow]:
    application = rng.choice(tuple(_GOOGLE_APPS))
    name = rng.choice(_GOOGLE_APPS[application])
    ip = _ip(rng)
    qualifier = str(rng.getrandbits(63) - 2**62)
    time_text = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
    parameters: list[dict[str, Any]] = [{"name": "login_type", "value": "google_password"}]
    if application == "drive":
        parameters = [
            {"name": "doc_id", "value": uuid.UUID(int=rng.getrandbits(128)).hex},
            {"name": "doc_title", "value": f"Quarterly plan {rng.randrange(100)}"},
            {"name": "doc_type", "value": "document"},
            {"name": "owner", "value": user},
            {"name": "visibility", "value": "private"},
        ]
    elif application == "token":
        parameters = [
            {"name": "client_id", "value": str(rng.randrange(10**12))},
            {"name": "app_name", "value": "Calendar sync"},
            {"name": "scope", "multiValue": ["https://www.googleapis.com/auth/calendar.readonly"]},
        ]
    record: dict[str, Any] = {
        "kind": "admin#reports#activity",
        "id": {
            "time": time_text,
            "uniqueQualifier": qualifier,
            "applicationName": application,
            "customerId": "C03az79cb",
        },
        "etag": f'"{uuid.UUID(int=rng.getrandbits(128)).hex}"',
        "actor": {"callerType": "USER", "email": user, "profileId": str(rng.randrange(10**20))},
        "ipAddress": ip,
        "ownerDomain": "example.com",
        "events": [{"type": application, "name": name, "parameters": parameters}],
    }
    row = EventRow(
        "google",
        application,
        f"{time_text}/{qualifier}/0",
        at,
        user,
        name,
        parameters[0].get("value"),
        ip,
        None,
        "failure" if name == "login_failure" else "success",
        record,
    )
    return record, row


def _slack_entry(rng: random.Random, at: datetime, user: str) -> tuple[dict[str, Any], EventRow]:
    ip = _ip(rng)
    action = rng.choice(_SLACK_ACTIONS)
    record: dict[str, Any] = {
        "id": str(uuid.UUID(int=rng.getrandbits(128))),
        "date_create": int(at.timestamp()),
        "action": action,
        "actor": {
            "type": "user",
            "user": {"id": f"W{rng.randrange(10**8)}", "name": user.split("@")[0], "email": user},
        },
        "entity": {"type": "user", "user": {"id": f"W{rng.randrange(10**8)}", "name": "x", "email": user}},
        "context": {
            "location": {"type": "enterprise", "id": "E1701NCCA", "name": "Example", "domain": "example"},
            "ua": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Slack/4.36",
            "ip_address": ip,
            "session_id": str(rng.randrange(10**12)),
        },
    }
    row = EventRow("slack", "audit", record["id"], at, user, action, user, ip, None, "success", record)
    return record, row


_MAKERS = (
    (_entra_signin, 0.45),
    (_entra_directory_audit, 0.05),
    (_google_activity, 0.35),
    (_slack_entry, 0.15),
)


def sample_events(count: int, seed: int = 7, users: int = 1000) -> list[tuple[dict[str, Any], EventRow]]:
    """`count` provider-shaped records (deterministic from `seed`), each with its normalised row."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    makers = [maker for maker, _ in _MAKERS]
    weights = [weight for _, weight in _MAKERS]
    out = []
    for i in range(count):
        at = start + timedelta(seconds=i * 7 * 86400 / max(count, 1), microseconds=rng.randrange(1_000_000))
        user = f"user{rng.randrange(users)}@contoso.example"
        out.append(rng.choices(makers, weights)[0](rng, at, user))
    return out


# --- the measurements --------------------------------------------------------------------------


def measure_parse(payloads: list[bytes], loads: Any = orjson.loads, runs: int = 5) -> Stats:
    """Events/s for turning each provider record's JSON text into Python objects."""

    def work() -> int:
        for payload in payloads:
            loads(payload)
        return len(payloads)

    return repeat(rate(work), runs)


def _migrated_with_connection(url: str, *, migrate: bool = True) -> int:
    """Migrate the database at `url` (unless done) and add one connection row; return its id."""
    from core.models import Connection

    database = Database(url)
    if migrate:
        database.upgrade()
    with database.session() as session:
        connection = Connection(name="bench", provider="m365", tenant="bench")
        session.add(connection)
        session.flush()
        connection_id = connection.id
    database.dispose()
    assert connection_id is not None
    return connection_id


@contextmanager
def sqlite_event_table() -> Iterator[tuple[sqlite3.Connection, int]]:
    """A migrated SQLite file opened with the product's PRAGMAs, plus the id of one connection row."""
    with tempfile.TemporaryDirectory(prefix="tg-bench-") as tmp:
        path = Path(tmp) / "limits.db"
        connection_id = _migrated_with_connection(f"sqlite:///{path}")
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        try:
            yield conn, connection_id
        finally:
            conn.close()


def _sqlite_tuple(row: EventRow, connection_id: int, now: str) -> tuple[Any, ...]:
    return (
        connection_id,
        row.provider,
        row.stream,
        row.provider_event_id,
        row.occurred_at.replace(tzinfo=None).isoformat(sep=" "),
        now,
        row.actor,
        row.action,
        row.target,
        row.ip,
        row.country,
        row.outcome,
        pack(row.raw),  # stored as the product stores it (core.packing)
    )


def measure_sqlite_insert(rows: list[EventRow], runs: int = 5) -> Stats:
    """Rows/s for one ``executemany`` in one transaction (rows pre-serialised; table emptied between runs)."""
    sql = f"INSERT INTO event ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
    with sqlite_event_table() as (conn, connection_id):
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
        values = [_sqlite_tuple(row, connection_id, now) for row in rows]

        def measure() -> float:
            conn.execute("DELETE FROM event")
            start = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, values)
            conn.execute("COMMIT")
            return len(values) / (time.perf_counter() - start)

        return repeat(measure, runs)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh migrated database on the benchmark server, dropped afterwards; yields its URL."""
    name = f"tg_bench_{uuid.uuid4().hex[:8]}"
    admin = pg_admin_url()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    try:
        database = Database(url)
        database.upgrade()
        database.dispose()
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_tuple(row: EventRow, connection_id: int, now: datetime) -> tuple[Any, ...]:
    return (
        connection_id,
        row.provider,
        row.stream,
        row.provider_event_id,
        row.occurred_at,
        now,
        row.actor,
        row.action,
        row.target,
        row.ip,
        row.country,
        row.outcome,
        pack(row.raw),  # stored as the product stores it (core.packing)
    )


def measure_postgres_insert(rows: list[EventRow], runs: int = 5) -> tuple[Stats, Stats]:
    """Rows/s for ``COPY ... FROM STDIN`` and, as the baseline, ``executemany``, into ``event``."""
    columns = ", ".join(EVENT_COLUMNS)
    with postgres_database() as url, psycopg.connect(url) as conn:
        connection_id = _migrated_with_connection(url, migrate=False)
        now = datetime.now(UTC)
        values = [_pg_tuple(row, connection_id, now) for row in rows]

        def copy() -> float:
            conn.execute("TRUNCATE event")
            conn.commit()
            start = time.perf_counter()
            with conn.cursor() as cur, cur.copy(f"COPY event ({columns}) FROM STDIN") as copy:
                for value in values:
                    copy.write_row(value)
            conn.commit()
            return len(values) / (time.perf_counter() - start)

        def executemany() -> float:
            conn.execute("TRUNCATE event")
            conn.commit()
            sql = f"INSERT INTO event ({columns}) VALUES ({', '.join(['%s'] * len(EVENT_COLUMNS))})"
            start = time.perf_counter()
            with conn.cursor() as cur:
                cur.executemany(sql, values)
            conn.commit()
            return len(values) / (time.perf_counter() - start)

        return repeat(copy, runs), repeat(executemany, runs)


def limit_figures(records: list[dict[str, Any]], rows: list[EventRow], runs: int = 5) -> list[Figure]:
    """The three limits on these events (used by this module and by bench.e2e on collected events)."""
    payloads = [orjson.dumps(record) for record in records]
    n = len(rows)
    figures = [
        Figure.from_stats(
            AREA,
            f"orjson parse ({n:,} provider records)",
            measure_parse(payloads, runs=runs),
            "events/s",
            baseline_name="stdlib json",
            baseline=measure_parse(payloads, json.loads, runs=runs).median,
            notes="orjson.loads over each record's JSON text",
        ),
        Figure.from_stats(
            AREA,
            f"SQLite executemany into event ({n:,} rows, 1 tx)",
            measure_sqlite_insert(rows, runs),
            "rows/s",
            notes="real event table with its unique key and indexes; WAL, synchronous=NORMAL",
        ),
    ]
    problem = postgres_problem()
    if problem:
        print(f"limits: PostgreSQL skipped ({problem})")
        return figures
    copy, many = measure_postgres_insert(rows, runs)
    figures.append(
        Figure.from_stats(
            AREA,
            f"PostgreSQL COPY into event ({n:,} rows)",
            copy,
            "rows/s",
            baseline_name="psycopg executemany",
            baseline=many.median,
            notes="psycopg 3 cursor.copy().write_row into the real event table (JSONB raw)",
        )
    )
    return figures


def run(quick: bool) -> list[Figure]:
    events = sample_events(2_000 if quick else 50_000)
    return limit_figures([record for record, _ in events], [row for _, row in events])


if __name__ == "__main__":
    import sys

    print_table(run(quick="--quick" in sys.argv))
