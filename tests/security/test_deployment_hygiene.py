"""Issue 21, deployment hygiene: database files readable by their owner only, X-Forwarded-For
believed only from the operator's proxies, a failed-login limiter that slows guessing (a right
guess among the wrong ones is refused too), and security headers on every response."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import text

from core.db import Database
from core.models import Role
from tests.factories import MadePrincipal
from tests.security.conftest import Served


def test_a_new_sqlite_database_and_its_wal_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "tenantguard.db"
    db = Database(f"sqlite:///{path}")
    try:
        with db.engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
        written = [p for p in path.parent.iterdir() if p.name.startswith("tenantguard.db")]
        assert path in written
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in written}
        assert set(modes.values()) == {0o600}, modes
    finally:
        db.dispose()


def test_guessing_tokens_is_slowed_whatever_x_forwarded_for_says(
    serve: Callable[..., Served], make_principal: Callable[..., MadePrincipal]
) -> None:
    # given serve allowing 3 failed authentications a minute per address, and a real token
    token = make_principal(Role.VIEWER, name="victor").token
    served = serve(TENANTGUARD_API_AUTH_FAILURES_PER_MINUTE="3")
    with served.client() as client:
        # when a guesser on one address claims another address with each guess
        statuses = [
            client.get(
                "/findings",
                headers={"Authorization": f"Bearer tg_guess{n}_x", "X-Forwarded-For": f"203.0.113.{n}"},
            ).status_code
            for n in range(6)
        ]
        # then the claim is not believed (no proxy is configured) and the fourth guess is refused
        assert statuses == [401, 401, 401, 429, 429, 429], statuses
        # and so is a right guess from that address, until its bucket refills
        right = client.get(
            "/findings", headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": "198.51.100.7"}
        )
        assert right.status_code == 429, right.text


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def test_every_answer_carries_the_security_headers(
    client: TestClient, as_role: Callable[[str], dict[str, str]]
) -> None:
    answers = [
        client.get("/health"),
        client.get("/no-such-page"),
        client.get("/findings"),
        client.get("/findings", headers=as_role("viewer")),
        client.post("/connections", headers=as_role("admin"), content=b"x" * (2 << 20)),
        client.get("/findings", params={"rule_id": "a\x00b"}, headers=as_role("viewer")),
        client.post("/connections", headers=as_role("viewer"), json={}),
    ]
    assert [a.status_code for a in answers] == [200, 404, 401, 200, 413, 422, 403]
    for answer in answers:
        assert {k: answer.headers.get(k) for k in SECURITY_HEADERS} == SECURITY_HEADERS, answer.request.url
