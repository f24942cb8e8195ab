"""Identity risk: a 0-100 score per person, always explained as weighted factors.

Four families, as a security team reads them: privilege (admin roles in any provider),
authentication strength (no MFA, only phone-based methods, legacy authentication in use),
exposure (guest/external, dormant but enabled, files shared publicly, OAuth grants with
high-risk scopes) and recent findings about the person. Weights are data (`WEIGHTS`) so the
explanation and the score can never disagree: the score is the capped sum of the factors.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from core.audit import Actor, AuditAction, record
from core.clock import as_utc, utcnow
from core.db import Database
from core.entities import EntityKind
from core.findings import FindingDraft
from core.models import Account, Finding, FindingKind, FindingStatus, Person
from identity.access import resource_grants
from identity.findings import ATTACK_KINDS, IdentityFacts, identity_drafts, write_identity_findings
from identity.resolve import WEAK_METHODS

WEIGHTS = {
    "global_admin": 40.0,
    "admin": 25.0,
    "no_mfa": 25.0,
    "admin_without_mfa": 15.0,
    "weak_mfa_only": 8.0,
    "legacy_auth": 10.0,
    "guest": 8.0,
    "dormant_enabled": 10.0,
    "public_files": 10.0,
    "risky_oauth_grants": 15.0,
    "recent_findings": 1.0,  # multiplied by the severity points below, capped
}
FINDING_POINTS = {"critical": 30.0, "high": 20.0, "medium": 10.0, "low": 3.0, "informational": 0.0}
FINDINGS_CAP = 40.0
DORMANT_AFTER = timedelta(days=90)
LEVELS = ((70.0, "critical"), (50.0, "high"), (25.0, "medium"), (0.0, "low"))


@dataclass(frozen=True)
class RiskFactor:
    factor: str
    family: str
    weight: float
    detail: str


def level_for(score: float) -> str:
    return next(name for threshold, name in LEVELS if score >= threshold)


def account_factors(accounts: list[Account], now: datetime) -> list[RiskFactor]:
    factors: list[RiskFactor] = []
    enabled = [a for a in accounts if a.enabled]
    admins = [a for a in enabled if a.is_admin]
    global_admins = [
        a
        for a in admins
        if any("global administrator" in r.lower() or r == "super_admin" for r in a.admin_roles)
    ]
    if global_admins:
        where = ", ".join(f"{a.provider}: {', '.join(a.admin_roles)}" for a in global_admins)
        factors.append(
            RiskFactor(
                "global_admin", "privilege", WEIGHTS["global_admin"], f"tenant-wide administrator ({where})"
            )
        )
    elif admins:
        where = ", ".join(f"{a.provider}: {', '.join(a.admin_roles) or 'admin'}" for a in admins)
        factors.append(RiskFactor("admin", "privilege", WEIGHTS["admin"], f"administrator ({where})"))
    no_mfa = [a for a in enabled if a.mfa_registered is False]
    if no_mfa:
        factors.append(
            RiskFactor(
                "no_mfa",
                "authentication",
                WEIGHTS["no_mfa"],
                "no MFA/2SV registered on " + ", ".join(a.provider for a in no_mfa),
            )
        )
        if any(a.is_admin for a in no_mfa):
            factors.append(
                RiskFactor(
                    "admin_without_mfa",
                    "authentication",
                    WEIGHTS["admin_without_mfa"],
                    "an administrator account without MFA",
                )
            )
    weak = [a for a in enabled if a.mfa_methods and all(m.lower() in WEAK_METHODS for m in a.mfa_methods)]
    if weak:
        factors.append(
            RiskFactor(
                "weak_mfa_only",
                "authentication",
                WEIGHTS["weak_mfa_only"],
                "only phone/e-mail methods on " + ", ".join(a.provider for a in weak),
            )
        )
    if any((a.attributes or {}).get("legacy_auth") for a in enabled):
        factors.append(
            RiskFactor(
                "legacy_auth",
                "authentication",
                WEIGHTS["legacy_auth"],
                "legacy authentication seen in sign-ins",
            )
        )
    if any(a.is_guest for a in enabled):
        factors.append(RiskFactor("guest", "exposure", WEIGHTS["guest"], "guest/external account"))
    dormant = [a for a in enabled if _dormant(a, now)]
    if dormant:
        days = max((now - as_utc(a.last_sign_in_at)).days for a in dormant if a.last_sign_in_at)
        factors.append(
            RiskFactor(
                "dormant_enabled",
                "exposure",
                WEIGHTS["dormant_enabled"],
                f"enabled but unused for {days} days",
            )
        )
    return factors


def _findings_factor(findings: list[Finding]) -> RiskFactor | None:
    if not findings:
        return None
    points = min(FINDINGS_CAP, sum(FINDING_POINTS.get(f.severity, 0.0) for f in findings))
    if points <= 0:
        return None
    bySeverity: dict[str, int] = defaultdict(int)
    for f in findings:
        bySeverity[f.severity] += 1
    detail = (
        ", ".join(f"{n} {sev}" for sev, n in sorted(bySeverity.items()))
        + " open finding(s) in the last 30 days"
    )
    return RiskFactor("recent_findings", "findings", points * WEIGHTS["recent_findings"], detail)


@dataclass(frozen=True)
class IdentityReview:
    people: int
    findings_opened: int
    findings_resolved: int


def score_people(db: Database, *, now: datetime | None = None) -> int:
    """Recompute every person's risk score and its explanation, and open/resolve the identity
    findings those scores call for (`identity.findings`); returns how many were scored."""
    return review_people(db, now=now).people


def review_people(db: Database, *, now: datetime | None = None) -> IdentityReview:
    """`score_people`, reporting the identity findings opened and resolved too."""
    now = now or utcnow()
    with db.session() as session:
        people = session.exec(select(Person)).all()
        accounts: dict[int, list[Account]] = defaultdict(list)
        for account in session.exec(select(Account)).all():
            if account.person_id is not None:
                accounts[account.person_id].append(account)
        recent = _recent_findings(session, now)
        exposure = _exposure_by_email(session)
        drafts: list[FindingDraft] = []
        for person in people:
            factors = account_factors(accounts.get(person.id or -1, []), now)
            addresses = {person.primary_email, *person.aliases}
            shared = sum(exposure.public_files.get(a, 0) for a in addresses)
            if shared:
                factors.append(
                    RiskFactor(
                        "public_files",
                        "exposure",
                        WEIGHTS["public_files"],
                        f"owns {shared} publicly shared file(s)",
                    )
                )
            grants = sorted({g for a in addresses for g in exposure.risky_grants.get(a, [])})
            if grants:
                factors.append(
                    RiskFactor(
                        "risky_oauth_grants",
                        "exposure",
                        WEIGHTS["risky_oauth_grants"],
                        "high-risk OAuth grants: " + ", ".join(grants[:5]),
                    )
                )
            finding = _findings_factor([f for a in addresses for f in recent.get(a, [])])
            if finding:
                factors.append(finding)
            score = min(100.0, sum(f.weight for f in factors))
            person.risk_score = round(score, 1)
            person.risk_level = level_for(score)
            person.risk_factors = [asdict(f) for f in factors]
            person.updated_at = now
            session.add(person)
            mine = accounts.get(person.id or -1, [])
            drafts.extend(
                identity_drafts(
                    IdentityFacts(
                        person,
                        mine,
                        person.risk_score,
                        person.risk_factors,
                        _unique([f for a in addresses for f in recent.get(a, []) if f.kind in ATTACK_KINDS]),
                        frozenset(a.id for a in mine if a.id is not None and _dormant(a, now)),
                    ),
                    now,
                )
            )
        opened, resolved = write_identity_findings(session, drafts)
        record(
            session,
            actor=Actor.system("identity"),
            action=AuditAction.IDENTITY_SCORED,
            object_type="identity_run",
            object_id=now.isoformat(),
            details={"people": len(people), "findings_opened": opened, "findings_resolved": resolved},
        )
        return IdentityReview(len(people), opened, resolved)


def _dormant(account: Account, now: datetime) -> bool:
    return account.last_sign_in_at is not None and now - as_utc(account.last_sign_in_at) > DORMANT_AFTER


def _unique(findings: list[Finding]) -> list[Finding]:
    seen: dict[int | None, Finding] = {}
    for finding in findings:
        seen.setdefault(finding.id, finding)
    return list(seen.values())


def _recent_findings(session: Session, now: datetime) -> dict[str, list[Finding]]:
    rows = session.exec(
        select(Finding).where(
            Finding.status == FindingStatus.OPEN,
            col(Finding.last_seen) >= now - timedelta(days=30),
            Finding.kind != FindingKind.IDENTITY.value,  # our own conclusions never feed the score
        )
    ).all()
    by_person: dict[str, list[Finding]] = defaultdict(list)
    for finding in rows:
        for email in (finding.entities or {}).get(EntityKind.PEOPLE, []):
            by_person[email.lower()].append(finding)
    return by_person


@dataclass(frozen=True)
class _Exposure:
    public_files: dict[str, int]  # owner e-mail -> publicly shared files
    risky_grants: dict[str, list[str]]  # principal e-mail -> high-risk apps granted


def _exposure_by_email(session: Session) -> _Exposure:
    public: dict[str, int] = defaultdict(int)
    risky: dict[str, list[str]] = defaultdict(list)
    for grant in resource_grants(session):
        if grant.kind == "file" and grant.public and grant.owner:
            public[grant.owner] += 1
        if grant.kind == "app" and grant.high_risk and grant.principal:
            risky[grant.principal].append(grant.resource_name or grant.resource_id)
    return _Exposure(public_files=public, risky_grants=risky)
