"""Identity findings: the few people a security team should look at, explained by their risk factors.

Scores alone are a dashboard; these are the cases worth a finding (``kind=identity``):

- ``identity.dormant_admin_without_mfa`` (medium): one account that is an administrator, has no
  MFA/2SV and has not signed in for months. Nobody would notice it being used; one password
  away from the tenant. A real misconfiguration, but a fact, not an attack: never high.
- ``identity.dormant_admin`` (low): an administrator account unused for months (with MFA).
- ``identity.dormant_account_revived`` (high): an account the product knew as dormant (its last
  sign-in, as an earlier resolution stored it, more than 90 days old) signed in again within the
  last 14 days — a forgotten account is what an attacker with an old password or a leaked list
  uses, from a network its owner never used. The playbook disables it, revokes its sessions and
  removes mail forwarding.
- ``identity.high_risk_person`` (high): a person whose score reaches the *high* level while an
  open attack finding (detection, correlation or anomaly, severity high or above) is about
  them — the attack matters more because of who it hits. It cites the attack's evidence. A
  finding that names many people (a spray's targets) does not count: it would flag them all.

One open finding per person and rule (dedup key ``identity:<rule>:<email>``), updated in place
while the condition holds and resolved when it no longer does; the findings never feed back
into the score (``identity`` findings are excluded from "recent findings").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlmodel import Session, col, select

from core.audit import Actor
from core.clock import parse_time
from core.entities import EntityKind
from core.findings import FindingDraft, resolve_findings, store_finding
from core.models import Account, Finding, FindingKind, FindingStatus, Person

HIGH_RISK_SCORE = 50.0
ATTACK_KINDS = (FindingKind.DETECTION.value, FindingKind.CORRELATION.value, FindingKind.ANOMALY.value)
ATTACK_SEVERITIES = ("high", "critical")
MAX_EVIDENCE = 100
ACTOR = Actor.system("identity")
# A finding naming more people than this (a password spray's targets) is not an attack *on* one of them.
MAX_TARGETS = 3


class IdentityRule(StrEnum):
    DORMANT_ADMIN_WITHOUT_MFA = "identity.dormant_admin_without_mfa"
    DORMANT_ADMIN = "identity.dormant_admin"
    DORMANT_ACCOUNT_REVIVED = "identity.dormant_account_revived"
    HIGH_RISK_PERSON = "identity.high_risk_person"


RUNBOOKS = {
    IdentityRule.DORMANT_ADMIN_WITHOUT_MFA: (
        "1. Ask the owner whether the admin account is still needed; if not, disable it.\n"
        "2. Otherwise require MFA registration (or a security key) before the next sign-in.\n"
        "3. Review its sign-ins and audit events since it went quiet."
    ),
    IdentityRule.DORMANT_ADMIN: (
        "1. Remove the admin role (or the account) if nobody needs it.\n"
        "2. Prefer just-in-time elevation for rare admin work."
    ),
    IdentityRule.DORMANT_ACCOUNT_REVIVED: (
        "1. Ask the owner (or their manager) whether they signed in; if not, disable the account and revoke its sessions.\n"
        "2. Review mail forwarding and inbox rules made since it woke up, and remove what forwards out.\n"
        "3. Find where the password came from (reuse, an old list) and retire the account if nobody needs it."
    ),
    IdentityRule.HIGH_RISK_PERSON: (
        "1. Handle the attack finding(s) cited first: revoke sessions and reset credentials if confirmed.\n"
        "2. Reduce this person's blast radius: review admin roles, OAuth grants and public files.\n"
        "3. Make sure their accounts use strong MFA."
    ),
}


@dataclass(frozen=True)
class IdentityFacts:
    """What identity findings need to know about one scored person."""

    person: Person
    accounts: Sequence[Account]
    score: float
    factors: Sequence[dict]
    attack_findings: Sequence[Finding]
    dormant_account_ids: frozenset[int]


def _factor_text(factors: Sequence[dict]) -> str:
    return "; ".join(f"{f['detail']} (+{f['weight']:g})" for f in factors)


def _entities(person: Person, accounts: Sequence[Account]) -> dict[str, list[str]]:
    return {
        EntityKind.PEOPLE.value: [person.primary_email],
        "accounts": [f"{a.provider}:{a.provider_user_id}" for a in accounts],
    }


def _draft(
    rule: IdentityRule,
    severity: str,
    facts: IdentityFacts,
    title: str,
    why: str,
    now: datetime,
    accounts: Sequence[Account],
    evidence: tuple[int, ...] = (),
    first_seen: datetime | None = None,
    extra: dict | None = None,
) -> FindingDraft:
    email = facts.person.primary_email
    return FindingDraft(
        rule_id=rule.value,
        kind=FindingKind.IDENTITY.value,
        severity=severity,
        title=title[:500],
        description=(
            f"{why} Risk score {facts.score:g}/100 from: {_factor_text(facts.factors) or 'no factors'}."
        ),
        dedup_key=f"identity:{rule.value}:{email}",
        first_seen=first_seen or now,
        last_seen=now,
        provider=accounts[0].provider if len({a.provider for a in accounts}) == 1 else None,
        confidence=0.9,
        entities=_entities(facts.person, accounts),
        evidence_event_ids=evidence,
        mitre=("T1078",),
        context={"risk_score": facts.score, "risk_factors": list(facts.factors), **(extra or {})},
        runbook=RUNBOOKS[rule],
    )


def _dormant_admin(facts: IdentityFacts, now: datetime) -> list[FindingDraft]:
    dormant_admins = [
        a for a in facts.accounts if a.enabled and a.is_admin and (a.id or -1) in facts.dormant_account_ids
    ]
    if not dormant_admins:
        return []
    without_mfa = [a for a in dormant_admins if a.mfa_registered is False]
    email = facts.person.primary_email
    where = ", ".join(
        f"{a.provider} ({', '.join(a.admin_roles) or 'admin'})" for a in without_mfa or dormant_admins
    )
    if without_mfa:
        return [
            _draft(
                IdentityRule.DORMANT_ADMIN_WITHOUT_MFA,
                "medium",
                facts,
                f"Dormant admin without MFA: {email} ({where})",
                f"{email} holds an administrator role on {where}, has no MFA registered there and has "
                "not signed in for months: a takeover would go unnoticed.",
                now,
                without_mfa,
            )
        ]
    return [
        _draft(
            IdentityRule.DORMANT_ADMIN,
            "low",
            facts,
            f"Dormant admin: {email} ({where})",
            f"{email} holds an administrator role on {where} but has not signed in for months.",
            now,
            dormant_admins,
        )
    ]


REVIVAL_RECENT_DAYS = 14


def _revived(facts: IdentityFacts, now: datetime) -> list[FindingDraft]:
    found = []
    for account in facts.accounts:
        revival = (account.attributes or {}).get("revived_after_dormancy")
        if not account.enabled or not isinstance(revival, dict):
            continue
        signed_in = parse_time(str(revival.get("signed_in_at")))
        if (now - signed_in).days > REVIVAL_RECENT_DAYS:
            continue
        found.append((account, revival, signed_in))
    if not found:
        return []
    email = facts.person.primary_email
    accounts = [a for a, _, _ in found]
    where = ", ".join(f"{a.provider} after {r.get('days')} days" for a, r, _ in found)
    return [
        _draft(
            IdentityRule.DORMANT_ACCOUNT_REVIVED,
            "high",
            facts,
            f"Dormant account in use again: {email} ({where})",
            f"{email} had not signed in to {where} and has just signed in again; nobody expected the account "
            "to be used, so whoever signed in may not be its owner.",
            now,
            accounts,
            first_seen=min(t for _, _, t in found),
            extra={"revivals": [{"provider": a.provider, **r} for a, r, _ in found]},
        )
    ]


def _high_risk(facts: IdentityFacts, now: datetime) -> list[FindingDraft]:
    attacks = [
        f
        for f in facts.attack_findings
        if f.severity in ATTACK_SEVERITIES
        and len((f.entities or {}).get(EntityKind.PEOPLE, [])) <= MAX_TARGETS
    ]
    if facts.score < HIGH_RISK_SCORE or not attacks:
        return []
    email = facts.person.primary_email
    evidence: list[int] = []
    for finding in attacks:
        evidence.extend(e for e in finding.evidence_event_ids or [] if e not in evidence)
    rules = sorted({f.rule_id for f in attacks})
    return [
        _draft(
            IdentityRule.HIGH_RISK_PERSON,
            "high",
            facts,
            f"High-risk person under attack: {email} (risk {facts.score:g}; {', '.join(rules[:3])})",
            f"{email} is the subject of {len(attacks)} open high-severity finding(s) ({', '.join(rules[:5])}) "
            "and their privileges and exposure make it matter.",
            now,
            list(facts.accounts),
            evidence=tuple(evidence[:MAX_EVIDENCE]),
            first_seen=min(f.first_seen for f in attacks),
            extra={"attack_findings": sorted(int(f.id or 0) for f in attacks)},
        )
    ]


def identity_drafts(facts: IdentityFacts, now: datetime) -> list[FindingDraft]:
    return _dormant_admin(facts, now) + _revived(facts, now) + _high_risk(facts, now)


def write_identity_findings(session: Session, drafts: Sequence[FindingDraft]) -> tuple[int, int]:
    """Upsert the drafts; resolve open identity findings no longer backed by one. (opened, resolved)"""
    opened = 0
    for draft in drafts:
        _, created = store_finding(session, draft, actor=ACTOR, dedup_period=None, count_repeats=False)
        opened += created
    current = {d.dedup_key for d in drafts}
    stale = session.exec(
        select(Finding.dedup_key).where(
            Finding.kind == FindingKind.IDENTITY.value,
            Finding.status == FindingStatus.OPEN,
            col(Finding.rule_id).in_([r.value for r in IdentityRule]),
        )
    ).all()
    resolved = resolve_findings(
        session,
        [k for k in stale if k not in current],
        reason="the identity risk no longer holds",
        actor=ACTOR,
    )
    return opened, resolved
