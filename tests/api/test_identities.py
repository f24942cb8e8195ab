"""Identities over HTTP: people with explained risk, their accounts, and who can access what."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from core.db import Database
from core.models import Account, ConfigSnapshot, Person


def test_people_riskiest_first_with_factors_accounts_and_access(
    client: TestClient,
    as_role: Callable[[str], dict[str, str]],
    db: Database,
    make_connection: Callable[..., Any],
) -> None:
    # Given two people, one risky with an admin account without MFA, and a file shared with her
    connection = make_connection(provider="google")
    with db.session() as session:
        alice = Person(
            primary_email="alice@acme.com",
            risk_score=72.0,
            risk_level="critical",
            risk_factors=[
                {
                    "factor": "admin_without_mfa",
                    "family": "privilege",
                    "weight": 30.0,
                    "detail": "Google super admin without 2SV",
                }
            ],
        )
        bob = Person(primary_email="bob@acme.com", risk_score=5.0, risk_level="low")
        session.add_all([alice, bob])
        session.flush()
        session.add(
            Account(
                person_id=alice.id,
                connection_id=connection.id,
                provider="google",
                provider_user_id="1001",
                email="alice@acme.com",
                is_admin=True,
                mfa_registered=False,
            )
        )
        session.add(
            ConfigSnapshot(
                connection_id=connection.id,
                provider="google",
                object_type="file_permission",
                object_id="file-9/perm-1",
                content_hash="x",
                data={
                    "fileId": "file-9",
                    "fileName": "payroll.xlsx",
                    "type": "user",
                    "emailAddress": "alice@acme.com",
                    "role": "writer",
                },
            )
        )
    viewer = as_role("viewer")
    # When a viewer lists people, Then the riskiest comes first
    people = client.get("/identities/people", headers=viewer).json()["items"]
    assert [p["primary_email"] for p in people] == ["alice@acme.com", "bob@acme.com"]
    high = client.get("/identities/people?risk_level=critical&risk_level=high", headers=viewer).json()[
        "items"
    ]
    assert [p["primary_email"] for p in high] == ["alice@acme.com"]
    # And her detail explains the score and lists her accounts
    detail = client.get(f"/identities/people/{alice.id}", headers=viewer).json()
    assert detail["risk_factors"][0]["factor"] == "admin_without_mfa"
    assert [a["provider_user_id"] for a in detail["accounts"]] == ["1001"]
    admins = client.get("/identities/accounts?admin=true&mfa=false", headers=viewer).json()["items"]
    assert [a["email"] for a in admins] == ["alice@acme.com"]
    # And access goes both ways: what she can reach, and who can reach the file
    reach = client.get(f"/identities/people/{alice.id}/access", headers=viewer).json()
    assert [(g["resource_name"], g["role"]) for g in reach] == [("payroll.xlsx", "writer")]
    who = client.get("/identities/access?resource=payroll.xlsx", headers=viewer).json()
    assert [g["principal"] for g in who] == ["alice@acme.com"]
    assert client.get("/identities/people/424242", headers=viewer).status_code == 404


def test_people_pages_cover_everyone_once(
    client: TestClient, as_role: Callable[[str], dict[str, str]], db: Database
) -> None:
    with db.session() as session:
        session.add_all(Person(primary_email=f"p{i}@acme.com", risk_score=float(i % 3)) for i in range(7))
    seen, cursor = [], None
    while True:
        url = "/identities/people?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=as_role("viewer")).json()
        seen += [p["primary_email"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(f"p{i}@acme.com" for i in range(7)) and len(seen) == 7
