"""Posture benchmark: every shipped check over a 10,000-user tenant snapshot.

- pure evaluation: all checks for three providers over 10k users + 10k MFA registrations +
  settings objects (no database); baseline = the three per-user checks hand-written in Python
  (what the expression language costs over code).
- end to end: `detectors.posture.evaluate(db)` on SQLite with the same snapshots stored
  (reading the newest snapshots, results, scores, findings, audit record).
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import Figure, repeat
from detectors.posture import load_checks
from detectors.posture.evaluation import SnapshotObject, evaluate_check

AREA = "posture"


def tenant_objects(users: int) -> dict[str, dict[str, list[SnapshotObject]]]:
    m365_users = [
        SnapshotObject(
            f"u{i}", {"id": f"u{i}", "userPrincipalName": f"u{i}@corp.test", "accountEnabled": True}
        )
        for i in range(users)
    ]
    registrations = [
        SnapshotObject(
            f"u{i}",
            {
                "id": f"u{i}",
                "userPrincipalName": f"u{i}@corp.test",
                "isAdmin": i < 10,
                "userType": "member",
                "isMfaRegistered": i % 7 != 0,
                "methodsRegistered": ["microsoftAuthenticatorPush"],
            },
        )
        for i in range(users)
    ]
    google_users = [
        SnapshotObject(
            str(i),
            {
                "id": str(i),
                "primaryEmail": f"u{i}@corp.test",
                "isAdmin": i < 3,
                "isEnrolledIn2Sv": i % 5 != 0,
            },
        )
        for i in range(users)
    ]
    slack_users = [
        SnapshotObject(
            f"U{i}",
            {"id": f"U{i}", "is_admin": i < 5, "has_2fa": True, "profile": {"email": f"u{i}@corp.test"}},
        )
        for i in range(users)
    ]
    return {
        "m365": {
            "user": m365_users,
            "auth_method_registration": registrations,
            "security_defaults": [SnapshotObject("sd", {"isEnabled": False})],
            "ca_policy": [
                SnapshotObject(
                    "p1",
                    {
                        "state": "enabled",
                        "conditions": {
                            "users": {"includeUsers": ["All"]},
                            "applications": {"includeApplications": ["All"]},
                        },
                        "grantControls": {"builtInControls": ["mfa"]},
                    },
                )
            ],
            "tenant_settings": [
                SnapshotObject("authorizationPolicy", {"allowInvitesFrom": "everyone"}),
                SnapshotObject("exchange", {"auditDisabled": False}),
            ],
        },
        "google": {
            "user": google_users,
            "tenant_settings": [
                SnapshotObject("security.less_secure_apps", {"value": {"allowLessSecureApps": False}})
            ],
        },
        "slack": {"user": slack_users, "tenant_settings": [SnapshotObject("T1", {"sso_required": True})]},
    }


def _hand_written(objects: dict[str, dict[str, list[SnapshotObject]]]) -> float:
    start = time.perf_counter()
    failing = 0
    for item in objects["m365"]["auth_method_registration"]:
        if item.data.get("isAdmin") is True and item.data.get("isMfaRegistered") is not True:
            failing += 1
        if item.data.get("userType") != "guest" and item.data.get("isMfaRegistered") is not True:
            failing += 1
    for item in objects["google"]["user"]:
        if item.data.get("isEnrolledIn2Sv") is not True:
            failing += 1
    return time.perf_counter() - start


def bench_pure(users: int) -> list[Figure]:
    checks = load_checks()
    objects = tenant_objects(users)

    def evaluate_all() -> float:
        start = time.perf_counter()
        for check in checks:
            evaluate_check(check, objects[check.provider.value])
        return time.perf_counter() - start

    ours = repeat(evaluate_all, runs=5)
    hand = repeat(lambda: _hand_written(objects), runs=5)
    return [
        Figure(
            AREA,
            f"evaluate {len(checks)} checks, {users:,}-user tenant x 3 providers (no DB)",
            ours.median,
            "s",
            ours.low,
            ours.high,
            ours.runs,
            "3 per-user checks hand-written in Python",
            hand.median,
            goal="< 5 s",
        ),
    ]


def bench_end_to_end(users: int) -> list[Figure]:
    import orjson

    from core.db import Database
    from core.models import ConfigSnapshot, Connection
    from detectors.posture import evaluate

    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        db.upgrade()
        at = datetime(2025, 3, 3, tzinfo=UTC)
        with db.session() as session:
            for provider, types in tenant_objects(users).items():
                connection = Connection(name=f"{provider}-bench", provider=provider, tenant="bench")
                session.add(connection)
                session.flush()
                for object_type, items in types.items():
                    for item in items:
                        body = dict(item.data)
                        session.add(
                            ConfigSnapshot(
                                connection_id=connection.id,
                                provider=provider,
                                object_type=object_type,
                                object_id=item.object_id,
                                content_hash=hashlib.sha256(orjson.dumps(body)).hexdigest(),
                                data=body,
                                collected_at=at,
                            )
                        )

        def run_once() -> float:
            start = time.perf_counter()
            evaluate(db)
            return time.perf_counter() - start

        stats = repeat(run_once, runs=3)
        db.dispose()
    return [
        Figure(
            AREA,
            f"evaluate(db) end to end on SQLite, {users:,}-user tenant x 3 providers",
            stats.median,
            "s",
            stats.low,
            stats.high,
            stats.runs,
            goal="< 5 s",
        )
    ]


def run(quick: bool = False) -> list[Figure]:
    users = 2_000 if quick else 10_000
    return bench_pure(users) + bench_end_to_end(users)


if __name__ == "__main__":
    import sys

    from bench.harness import print_table

    print_table(run(quick="--quick" in sys.argv))
