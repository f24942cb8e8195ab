"""One person across M365, Google and Slack: accounts from `user` snapshots, linked by verified addresses.

Accounts are linked when they share a verified e-mail address (M365 UPN/mail/SMTP proxy
addresses, Google primary e-mail and aliases, Slack profile e-mail) or a SCIM/HR external id.
Unverified alternates (Entra ``otherMails``) are kept as facts but never used to link, so a
user cannot claim someone else's identity by typing their address into a profile field.
Every account keeps its provider ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, select

from core.audit import Actor, AuditAction, record
from core.clock import parse_time, utcnow
from core.db import Database
from core.models import Account, Person
from core.paths import get_path
from core.snapshots import current_objects

GLOBAL_ADMIN_ROLE = "62e90394-69f5-4237-9190-012177145e10"
# An account whose last sign-in jumps forward by more than this between two resolutions was
# dormant and is in use again (identity.dormant_account_revived); the same 90 days as risk's dormancy.
REVIVED_AFTER_DAYS = 90
WEAK_METHODS = {"sms", "voice", "mobilephone", "alternatemobilephone", "officephone", "email"}


@dataclass(frozen=True)
class AccountFacts:
    """What one provider says about one account, in provider-neutral terms."""

    provider: str
    connection_id: int | None
    provider_user_id: str
    email: str | None
    verified: tuple[str, ...]
    unverified: tuple[str, ...] = ()
    external_ids: tuple[str, ...] = ()
    display_name: str | None = None
    enabled: bool = True
    is_admin: bool = False
    admin_roles: tuple[str, ...] = ()
    mfa_registered: bool | None = None
    mfa_methods: tuple[str, ...] = ()
    is_guest: bool = False
    last_sign_in_at: datetime | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


def _lower_all(values: Iterable[Any]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        if isinstance(value, str) and "@" in value and value.lower() not in out:
            out.append(value.strip().lower())
    return tuple(out)


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return parse_time(str(value))
    except ValueError:
        return None


def m365_facts(data: Mapping[str, Any], connection_id: int | None) -> AccountFacts:
    proxies = [
        p.split(":", 1)[1]
        for p in data.get("proxyAddresses") or []
        if isinstance(p, str) and p.lower().startswith("smtp:")
    ]
    upn = data.get("userPrincipalName")
    is_guest = str(data.get("userType") or "").lower() == "guest" or "#EXT#" in str(upn or "")
    external = [data.get(k) for k in ("externalId", "employeeId", "onPremisesImmutableId") if data.get(k)]
    return AccountFacts(
        provider="m365",
        connection_id=connection_id,
        provider_user_id=str(data.get("id") or upn),
        email=(data.get("mail") or upn or "").lower() or None,
        verified=() if is_guest else _lower_all([upn, data.get("mail"), *proxies]),
        unverified=_lower_all(data.get("otherMails") or []),
        external_ids=tuple(f"ext:{e}" for e in external),
        display_name=data.get("displayName"),
        enabled=data.get("accountEnabled", True) is not False,
        is_guest=is_guest,
        last_sign_in_at=_time(get_path(data, "signInActivity.lastSignInDateTime")),
    )


def google_facts(data: Mapping[str, Any], connection_id: int | None) -> AccountFacts:
    emails = [e.get("address") for e in data.get("emails") or [] if isinstance(e, Mapping)]
    external = [
        e.get("value") for e in data.get("externalIds") or [] if isinstance(e, Mapping) and e.get("value")
    ]
    is_admin = bool(data.get("isAdmin") or data.get("isDelegatedAdmin"))
    return AccountFacts(
        provider="google",
        connection_id=connection_id,
        provider_user_id=str(data.get("id") or data.get("primaryEmail")),
        email=(data.get("primaryEmail") or "").lower() or None,
        verified=_lower_all([data.get("primaryEmail"), *(data.get("aliases") or []), *emails]),
        external_ids=tuple(f"ext:{e}" for e in external),
        display_name=get_path(data, "name.fullName"),
        enabled=not data.get("suspended") and not data.get("archived"),
        is_admin=is_admin,
        admin_roles=("super_admin",) if data.get("isAdmin") else (("delegated_admin",) if is_admin else ()),
        mfa_registered=data.get("isEnrolledIn2Sv"),
        last_sign_in_at=_time(data.get("lastLoginTime")),
    )


def slack_facts(data: Mapping[str, Any], connection_id: int | None) -> AccountFacts:
    email = get_path(data, "profile.email")
    roles = tuple(r for r, flag in (("owner", data.get("is_owner")), ("admin", data.get("is_admin"))) if flag)
    return AccountFacts(
        provider="slack",
        connection_id=connection_id,
        provider_user_id=str(data.get("id")),
        email=email.lower() if isinstance(email, str) else None,
        verified=_lower_all([email]),
        external_ids=(f"ext:{data['externalId']}",) if data.get("externalId") else (),
        display_name=get_path(data, "profile.real_name") or data.get("real_name") or data.get("name"),
        enabled=not data.get("deleted"),
        is_admin=bool(roles),
        admin_roles=roles,
        mfa_registered=data.get("has_2fa"),
        is_guest=bool(data.get("is_restricted") or data.get("is_ultra_restricted")),
    )


def okta_facts(data: Mapping[str, Any], connection_id: int | None) -> AccountFacts:
    """An Okta user as the users stream stores it (with `_factors` and `_roles`)."""
    profile = data.get("profile") or {}
    emails = [profile.get("email"), profile.get("login")]
    roles = tuple(str(r.get("type")) for r in data.get("_roles") or [] if isinstance(r, Mapping))
    factors = tuple(
        str(f.get("factorType"))
        for f in data.get("_factors") or []
        if isinstance(f, Mapping) and f.get("status", "ACTIVE") == "ACTIVE"
    )
    email = profile.get("email") or profile.get("login")
    return AccountFacts(
        provider="okta",
        connection_id=connection_id,
        provider_user_id=str(data.get("id")),
        email=email.lower() if isinstance(email, str) else None,
        verified=_lower_all(emails),
        external_ids=(),
        display_name=profile.get("displayName")
        or " ".join(p for p in (profile.get("firstName"), profile.get("lastName")) if p)
        or None,
        enabled=data.get("status") not in ("SUSPENDED", "DEPROVISIONED", "DEACTIVATED"),
        is_admin=bool(roles),
        admin_roles=roles,
        mfa_registered=bool(factors) if "_factors" in data else None,
        mfa_methods=factors,
        last_sign_in_at=_time(data.get("lastLogin")),
    )


FACTS = {"m365": m365_facts, "google": google_facts, "slack": slack_facts, "okta": okta_facts}


def _m365_enrichment(
    objects: Mapping[str, list[Any]],
) -> tuple[dict[str, list[str]], dict[str, Mapping[str, Any]]]:
    """Admin roles by principal id, and MFA registration by user id / UPN (Entra keeps them apart)."""
    roles: dict[str, list[str]] = {}
    for item in objects.get("role_assignment", ()):
        data = item.data
        principal = str(data.get("principalId") or get_path(data, "principal.id") or "")
        name = data.get("roleName") or (
            "Global Administrator"
            if data.get("roleDefinitionId") == GLOBAL_ADMIN_ROLE
            else data.get("roleDefinitionId")
        )
        if principal and name:
            roles.setdefault(principal, []).append(str(name))
    registrations: dict[str, Mapping[str, Any]] = {}
    for item in objects.get("auth_method_registration", ()):
        for key in (item.data.get("id"), item.data.get("userPrincipalName")):
            if key:
                registrations[str(key).lower()] = item.data
    return roles, registrations


def collect_facts(session: Session) -> list[AccountFacts]:
    facts: list[AccountFacts] = []
    grouped = current_objects(session, ["user", "role_assignment", "auth_method_registration"])
    for (connection_id, provider), objects in grouped.items():
        parse = FACTS.get(provider)
        if parse is None:
            continue
        roles, registrations = _m365_enrichment(objects) if provider == "m365" else ({}, {})
        google_registrations = {
            str(i.data.get("userPrincipalName") or "").lower(): i.data
            for i in objects.get("auth_method_registration", ())
        }
        for item in objects.get("user", ()):
            fact = parse(item.data, connection_id)
            extra: dict[str, Any] = {}
            if provider == "m365":
                assigned = roles.get(fact.provider_user_id, [])
                registration = registrations.get(fact.provider_user_id.lower()) or registrations.get(
                    fact.email or ""
                )
                methods = tuple(str(m) for m in (registration or {}).get("methodsRegistered") or ())
                extra = {
                    "is_admin": bool(assigned) or bool((registration or {}).get("isAdmin")),
                    "admin_roles": tuple(assigned),
                    "mfa_registered": (registration or {}).get("isMfaRegistered"),
                    "mfa_methods": methods,
                }
            elif provider == "google":
                registration = google_registrations.get(fact.email or "")
                if registration:
                    extra = {
                        "mfa_methods": tuple(str(m) for m in registration.get("methodsRegistered") or ())
                    }
            facts.append(_replace(fact, extra))
    return facts


def _replace(fact: AccountFacts, changes: Mapping[str, Any]) -> AccountFacts:
    if not changes:
        return fact
    values = {**fact.__dict__, **changes}
    return AccountFacts(**values)


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, item: int) -> int:
        self.parent.setdefault(item, item)
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def group_accounts(facts: list[AccountFacts]) -> list[list[AccountFacts]]:
    """Accounts that share a verified address or external id belong to one person."""
    links = _UnionFind()
    owner: dict[str, int] = {}
    for index, fact in enumerate(facts):
        links.find(index)
        for key in (*fact.verified, *fact.external_ids):
            if key in owner:
                links.union(owner[key], index)
            else:
                owner[key] = index
    groups: dict[int, list[AccountFacts]] = {}
    for index, fact in enumerate(facts):
        groups.setdefault(links.find(index), []).append(fact)
    return list(groups.values())


_PROVIDER_PREFERENCE = {"m365": 0, "okta": 1, "google": 2, "slack": 3}


def _primary_email(accounts: list[AccountFacts]) -> str | None:
    ordered = sorted(accounts, key=lambda a: (a.is_guest, _PROVIDER_PREFERENCE.get(a.provider, 9)))
    for account in ordered:
        if account.verified:
            return account.email if account.email in account.verified else account.verified[0]
    for account in ordered:
        if account.email:
            return account.email
    return None


@dataclass(frozen=True)
class ResolutionReport:
    people: int
    accounts: int
    linked_across_providers: int


def _revival(before: datetime | None, now: datetime | None) -> dict[str, Any]:
    """``revived_after_dormancy`` when the account's last sign-in, as an earlier resolution stored
    it, is more than REVIVED_AFTER_DAYS older than the one the provider reports now: the product
    saw the account dormant, and it has just been used again. Kept until the next revival."""
    if before is None or now is None:
        return {}
    old, new = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (before, now))
    if (new - old).days <= REVIVED_AFTER_DAYS:
        return {}
    return {
        "revived_after_dormancy": {
            "dormant_since": old.isoformat(),
            "signed_in_at": new.isoformat(),
            "days": (new - old).days,
        }
    }


def resolve_people(db: Database) -> ResolutionReport:
    """Create or update Person and Account rows from the newest user snapshots."""
    with db.session() as session:
        facts = collect_facts(session)
        groups = group_accounts(facts)
        people = {p.primary_email: p for p in session.exec(select(Person)).all()}
        accounts = {(a.connection_id, a.provider_user_id): a for a in session.exec(select(Account)).all()}
        multi = 0
        for group in groups:
            email = _primary_email(group)
            if email is None:
                continue
            aliases = sorted({addr for fact in group for addr in fact.verified if addr != email})
            person = people.get(email) or next((people[a] for a in aliases if a in people), None)
            if person is None:
                person = Person(primary_email=email)
                people[email] = person
            person.aliases = aliases
            person.display_name = next((f.display_name for f in group if f.display_name), person.display_name)
            person.updated_at = utcnow()
            session.add(person)
            session.flush()
            multi += len({f.provider for f in group}) > 1
            for fact in group:
                row = accounts.get((fact.connection_id, fact.provider_user_id)) or Account(
                    connection_id=fact.connection_id,
                    provider=fact.provider,
                    provider_user_id=fact.provider_user_id,
                )
                row.person_id = person.id
                row.email = fact.email
                row.display_name = fact.display_name
                row.external_id = fact.external_ids[0].removeprefix("ext:") if fact.external_ids else None
                row.enabled = fact.enabled
                row.is_admin = fact.is_admin
                row.admin_roles = list(fact.admin_roles)
                row.mfa_registered = fact.mfa_registered
                row.mfa_methods = list(fact.mfa_methods)
                row.is_guest = fact.is_guest
                row.aliases = list(fact.verified)
                row.attributes = {
                    **(row.attributes or {}),
                    "unverified_emails": list(fact.unverified),
                    **_revival(row.last_sign_in_at, fact.last_sign_in_at),
                }
                row.last_sign_in_at = fact.last_sign_in_at
                row.updated_at = utcnow()
                session.add(row)
        record(
            session,
            actor=Actor.system("identity"),
            action=AuditAction.IDENTITY_RESOLVED,
            object_type="identity_run",
            object_id=utcnow().isoformat(),
            details={"people": len(groups), "accounts": len(facts), "linked_across_providers": multi},
        )
    return ResolutionReport(len(groups), len(facts), multi)
