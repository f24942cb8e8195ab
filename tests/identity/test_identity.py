"""Identity scenarios: one person across three providers, risk explained as factors, access both ways."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from core.models import Account, Finding, Person
from identity import resolve_people, score_people, what_can_access, who_can_access

T0 = datetime(2025, 3, 3, tzinfo=UTC)


def given_alice_everywhere(connection, store_snapshot) -> dict[str, int]:
    m365, google, slack = connection("m365"), connection("google"), connection("slack")
    store_snapshot(
        m365,
        "m365",
        "user",
        "aad-1",
        {
            "id": "aad-1",
            "userPrincipalName": "alice@acme.test",
            "mail": "Alice@acme.test",
            "proxyAddresses": ["SMTP:alice@acme.test", "smtp:a.smith@acme.test"],
            "otherMails": ["mallory@evil.example"],
            "accountEnabled": True,
            "userType": "Member",
            "displayName": "Alice Smith",
        },
        T0,
    )
    store_snapshot(
        m365,
        "m365",
        "role_assignment",
        "ra-1",
        {"id": "ra-1", "principalId": "aad-1", "roleDefinitionId": "62e90394-69f5-4237-9190-012177145e10"},
        T0,
    )
    store_snapshot(
        m365,
        "m365",
        "auth_method_registration",
        "aad-1",
        {
            "id": "aad-1",
            "userPrincipalName": "alice@acme.test",
            "isAdmin": True,
            "isMfaRegistered": True,
            "methodsRegistered": ["mobilePhone"],
        },
        T0,
    )
    store_snapshot(
        google,
        "google",
        "user",
        "g-1",
        {
            "id": "g-1",
            "primaryEmail": "a.smith@acme.test",
            "aliases": ["alice@acme.test"],
            "isAdmin": False,
            "isEnrolledIn2Sv": False,
            "lastLoginTime": "2024-10-01T00:00:00Z",
        },
        T0,
    )
    store_snapshot(
        slack,
        "slack",
        "user",
        "U1",
        {"id": "U1", "profile": {"email": "alice@acme.test", "real_name": "Alice"}, "has_2fa": True},
        T0,
    )
    store_snapshot(
        slack,
        "slack",
        "user",
        "U2",
        {"id": "U2", "profile": {"email": "mallory@evil.example"}, "is_restricted": True},
        T0,
    )
    store_snapshot(
        google,
        "google",
        "file_permission",
        "doc-9/anyoneWithLink",
        {
            "fileId": "doc-9",
            "fileName": "Q3 board deck",
            "type": "anyone",
            "role": "reader",
            "owner": "a.smith@acme.test",
        },
        T0,
    )
    store_snapshot(
        google,
        "google",
        "token",
        "a.smith@acme.test/c1",
        {
            "clientId": "c1",
            "displayText": "PDF Magic",
            "userKey": "a.smith@acme.test",
            "scopes": ["https://mail.google.com/"],
        },
        T0,
    )
    return {"m365": m365, "google": google, "slack": slack}


def test_given_alice_in_three_providers_then_one_person_keeps_each_accounts_ids(
    db, connection, store_snapshot
) -> None:
    given_alice_everywhere(connection, store_snapshot)
    report = resolve_people(db)
    assert report.accounts == 4 and report.people == 2 and report.linked_across_providers == 1
    with db.session() as session:
        alice = session.exec(select(Person).where(Person.primary_email == "alice@acme.test")).one()
        accounts = session.exec(select(Account).where(Account.person_id == alice.id)).all()
        assert {(a.provider, a.provider_user_id) for a in accounts} == {
            ("m365", "aad-1"),
            ("google", "g-1"),
            ("slack", "U1"),
        }
        assert "a.smith@acme.test" in alice.aliases
        m365 = next(a for a in accounts if a.provider == "m365")
        assert m365.is_admin and m365.admin_roles == ["Global Administrator"]
        # an unverified alternate address never links someone else's account
        mallory = session.exec(select(Person).where(Person.primary_email == "mallory@evil.example")).one()
        assert mallory.id != alice.id


def test_given_resolved_people_then_risk_is_the_sum_of_explained_factors(
    db, connection, store_snapshot
) -> None:
    given_alice_everywhere(connection, store_snapshot)
    resolve_people(db)
    with db.session() as session:
        session.add(
            Finding(
                rule_id="anomaly.new_country",
                kind="anomaly",
                severity="high",
                title="t",
                dedup_key="k",
                entities={"people": ["alice@acme.test"]},
                first_seen=T0,
                last_seen=T0 + timedelta(days=1),
            )
        )
    score_people(db, now=T0 + timedelta(days=2))
    with db.session() as session:
        alice = session.exec(select(Person).where(Person.primary_email == "alice@acme.test")).one()
    factors = {f["factor"]: f for f in alice.risk_factors}
    assert {
        "global_admin",
        "no_mfa",
        "weak_mfa_only",
        "dormant_enabled",
        "public_files",
        "risky_oauth_grants",
        "recent_findings",
    } <= set(factors)
    assert alice.risk_score == min(100.0, round(sum(f["weight"] for f in alice.risk_factors), 1))
    assert alice.risk_level == "critical"
    assert "google" in factors["no_mfa"]["detail"] and "PDF Magic" in factors["risky_oauth_grants"]["detail"]


def test_who_can_access_a_file_and_what_a_person_can_reach(db, connection, store_snapshot) -> None:
    given_alice_everywhere(connection, store_snapshot)
    (grant,) = who_can_access(db, "Q3 board deck")
    assert grant.principal == "anyone" and grant.public and grant.owner == "a.smith@acme.test"
    reach = what_can_access(db, "alice@acme.test", aliases=("a.smith@acme.test",))
    assert {g.resource_id for g in reach} == {"doc-9", "c1"}
    assert next(g for g in reach if g.resource_id == "c1").high_risk
