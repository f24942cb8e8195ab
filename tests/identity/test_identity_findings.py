"""Identity findings: few, explained by risk factors, one per person and rule, resolved when fixed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from core.models import Account, Finding, Person
from identity import review_people

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def given_person(db, email: str, *, admin: bool, mfa: bool, last_sign_in: datetime, roles=None) -> int:
    with db.session() as session:
        person = Person(primary_email=email)
        session.add(person)
        session.flush()
        session.add(
            Account(
                person_id=person.id,
                provider="m365",
                provider_user_id=f"aad-{email}",
                email=email,
                is_admin=admin,
                admin_roles=roles or (["Global Administrator"] if admin else []),
                mfa_registered=mfa,
                last_sign_in_at=last_sign_in,
            )
        )
        return int(person.id or 0)


def given_finding(db, email: str, *, kind: str, severity: str, evidence: list[int]) -> None:
    with db.session() as session:
        session.add(
            Finding(
                rule_id=f"test.{kind}.{severity}",
                kind=kind,
                severity=severity,
                title="t",
                dedup_key=f"{kind}:{severity}:{email}",
                entities={"people": [email]},
                evidence_event_ids=evidence,
                first_seen=NOW - timedelta(hours=2),
                last_seen=NOW - timedelta(hours=1),
            )
        )


def identity_findings(db) -> list[Finding]:
    with db.session(readonly=True) as session:
        return list(
            session.exec(select(Finding).where(Finding.kind == "identity").order_by(Finding.id)).all()
        )


def test_a_dormant_admin_without_mfa_is_one_medium_finding_explained_and_resolved_when_fixed(db) -> None:
    # given a global admin without MFA unused for 200 days, and an active admin with MFA
    given_person(db, "old-admin@acme.test", admin=True, mfa=False, last_sign_in=NOW - timedelta(days=200))
    given_person(db, "admin@acme.test", admin=True, mfa=True, last_sign_in=NOW - timedelta(days=1))
    # when people are scored twice
    first = review_people(db, now=NOW)
    review_people(db, now=NOW + timedelta(hours=1))
    # then one medium finding names the account and the factors with their weights
    [finding] = identity_findings(db)
    assert first.findings_opened == 1
    assert finding.rule_id == "identity.dormant_admin_without_mfa" and finding.severity == "medium"
    assert finding.entities["people"] == ["old-admin@acme.test"]
    assert "no MFA/2SV registered on m365 (+25)" in finding.description
    assert "unused for 200 days" in finding.description and finding.count == 1
    # when MFA is registered, the next scoring resolves it (a dormant admin with MFA stays low)
    with db.session() as session:
        account = session.exec(select(Account).where(Account.email == "old-admin@acme.test")).one()
        account.mfa_registered = True
        session.add(account)
    review_people(db, now=NOW + timedelta(hours=2))
    statuses = {(f.rule_id, f.status, f.severity) for f in identity_findings(db)}
    assert statuses == {
        ("identity.dormant_admin_without_mfa", "resolved", "medium"),
        ("identity.dormant_admin", "open", "low"),
    }


def test_an_attack_on_a_privileged_person_is_a_high_identity_finding_citing_its_evidence(db) -> None:
    # given a global admin targeted by a high-severity detection, and a user with only a medium anomaly
    given_person(db, "ceo@acme.test", admin=True, mfa=True, last_sign_in=NOW)
    given_person(db, "user@acme.test", admin=False, mfa=True, last_sign_in=NOW)
    given_finding(db, "ceo@acme.test", kind="detection", severity="high", evidence=[11, 12])
    given_finding(db, "user@acme.test", kind="anomaly", severity="medium", evidence=[13])
    # when people are scored
    review_people(db, now=NOW)
    # then only the admin gets a (high) identity finding, citing the attack's events
    [finding] = identity_findings(db)
    assert finding.rule_id == "identity.high_risk_person" and finding.severity == "high"
    assert finding.entities["people"] == ["ceo@acme.test"] and finding.evidence_event_ids == [11, 12]
    assert "tenant-wide administrator" in finding.description and finding.context["risk_score"] >= 50
    # and the identity finding never feeds back into the score on the next run
    score = finding.context["risk_score"]
    review_people(db, now=NOW + timedelta(minutes=5))
    [again] = identity_findings(db)
    assert again.id == finding.id and again.context["risk_score"] == score


def test_posture_findings_alone_never_make_a_high_identity_finding(db) -> None:
    given_person(db, "ga@acme.test", admin=True, mfa=False, last_sign_in=NOW)
    given_finding(db, "ga@acme.test", kind="posture", severity="critical", evidence=[])
    review_people(db, now=NOW)
    assert identity_findings(db) == []


def test_a_spray_naming_many_people_does_not_flag_each_target(db) -> None:
    targets = [f"user{i}@acme.test" for i in range(10)]
    for email in targets:
        given_person(db, email, admin=True, mfa=True, last_sign_in=NOW)
    with db.session() as session:
        session.add(
            Finding(
                rule_id="m365_password_spray",
                kind="correlation",
                severity="high",
                title="spray",
                dedup_key="spray",
                entities={"people": targets},
                evidence_event_ids=[1],
                first_seen=NOW - timedelta(hours=1),
                last_seen=NOW,
            )
        )
    review_people(db, now=NOW)
    assert identity_findings(db) == []


def test_an_account_seen_dormant_and_then_signed_in_again_is_one_high_finding_until_it_is_old_news(
    db,
) -> None:
    # given an account whose stored last sign-in was 200 days old, and a resolution that now reads a
    # sign-in from this morning (what identity.resolve records when the provider's value jumps)
    from identity.resolve import _revival

    given_person(db, "leaver@acme.test", admin=False, mfa=False, last_sign_in=NOW - timedelta(hours=3))
    given_person(db, "daily@acme.test", admin=False, mfa=True, last_sign_in=NOW - timedelta(hours=3))
    assert _revival(NOW - timedelta(days=1), NOW - timedelta(hours=3)) == {}  # an ordinary day apart
    revival = _revival(NOW - timedelta(days=200), NOW - timedelta(hours=3))
    with db.session() as session:
        account = session.exec(select(Account).where(Account.email == "leaver@acme.test")).one()
        account.attributes = {**(account.attributes or {}), **revival}
        session.add(account)
    # when people are scored
    review_people(db, now=NOW)
    # then one high finding names the account and how long it slept
    [finding] = identity_findings(db)
    assert finding.rule_id == "identity.dormant_account_revived" and finding.severity == "high"
    assert finding.entities["people"] == ["leaver@acme.test"]
    assert "m365 after 199 days" in finding.title
    assert finding.first_seen.replace(tzinfo=UTC) == NOW - timedelta(hours=3)
    # and two weeks later the revival is old news: the finding resolves
    review_people(db, now=NOW + timedelta(days=15))
    assert [(f.rule_id, f.status) for f in identity_findings(db)] == [
        ("identity.dormant_account_revived", "resolved")
    ]
