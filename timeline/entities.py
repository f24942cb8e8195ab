"""Who and what a finding is about, as grouping keys: one person across accounts, an IP, a file, an app.

Keys are strings so they can be stored on the incident and indexed in a dict:
``person:<Person.id>`` when the identity tables know the person, else ``email:<normalised>``;
``account:<provider id>`` for an account nobody resolved; ``ip:<address>`` (IPv6 by /64, since
one host rotates through its /64); ``file:<name>``; ``app:<name>``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from core.entities import EntityKind
from core.models.enums import Provider
from core.models.identity import Account, Person

ENTITY_FIELDS = tuple(kind.value for kind in EntityKind)
TOP_ADMIN_ROLES = frozenset(
    {
        "global administrator",
        "company administrator",
        "privileged role administrator",
        "privileged authentication administrator",
        "super admin",
        "super_admin",
        "_seed_admin_role",
        "owner",
        "primary_owner",
        "org_owner",
        "org_primary_owner",
        "org_admin",
    }
)


# Entra built-in role template ids (stable, documented by Microsoft) as their names, so that the
# priority explanation says "Global Administrator" and not a GUID.
ENTRA_ROLE_NAMES = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
    "29232cdf-9323-42fd-ade2-1d097af3e4de": "Exchange Administrator",
    "f28a1f50-f6e7-4571-818b-6a12f2af6b6c": "SharePoint Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
    "158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
    "966707d0-3269-4727-9be2-8c3a10f19b9d": "Password Administrator",
    "b0f54661-2d74-4c50-afa3-1ec803f12efe": "Billing Administrator",
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451": "Global Reader",
    "5d6b6bb7-de71-4623-b4af-96380a352509": "Security Reader",
    "17315797-102d-40b4-93e0-432062caca18": "Compliance Administrator",
}


def role_name(role: str) -> str:
    return ENTRA_ROLE_NAMES.get(role.strip().lower(), role)


def normalise_email(value: str) -> str:
    """Lower-case, without ``mailto:`` or a ``+tag`` (alice+x@corp is alice@corp)."""
    text = value.strip().lower()
    if text.startswith("mailto:"):
        text = text[7:]
    local, at, domain = text.partition("@")
    if not at:
        return text
    return f"{local.split('+', 1)[0]}@{domain}"


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_CANONICAL_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}", re.ASCII)


@lru_cache(maxsize=65_536)  # the same few addresses recur across a build's findings
def normalise_ip(value: str) -> str | None:
    """The address as a key, or None for something that is not a routable IP."""
    text = value.strip()
    if _CANONICAL_IPV4.fullmatch(text):  # already as ipaddress writes it: the common case, parsed here
        first = int(text.partition(".")[0])
        if first == 127 or text == "0.0.0.0":
            return None
        return text
    try:
        address = ipaddress.ip_address(value.strip().split("%", 1)[0])
    except ValueError:
        return None
    if address.is_unspecified or address.is_loopback:
        return None
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def normalise_name(value: str) -> str:
    return " ".join(value.strip().lower().split())


@dataclass(frozen=True)
class PersonFacts:
    """What priority and conversation linking need to know about one resolved person."""

    id: int
    email: str
    display_name: str | None
    addresses: tuple[str, ...]
    account_ids: tuple[str, ...]
    admin_roles: tuple[str, ...]
    is_admin: bool


@dataclass
class IdentityIndex:
    """Addresses and provider ids mapped to people, loaded once per build from Person/Account."""

    by_address: dict[str, int] = field(default_factory=dict)
    by_account: dict[str, int] = field(default_factory=dict)
    # Full display names that belong to exactly one person (Teams gives authors by name).
    by_name: dict[str, int] = field(default_factory=dict)
    people: dict[int, PersonFacts] = field(default_factory=dict)
    # Admin flags for accounts that no person was resolved for, by address and by provider id.
    unresolved_admin: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Provider user ids (Slack U…/W…, Entra object ids, Teams ids) -> the account's e-mail or name,
    # for accounts with or without a person: what timelines and titles show instead of the raw id.
    account_names: dict[str, str] = field(default_factory=dict)
    # raw person/account value (and whether it came from `accounts`) -> its (key, label) or None,
    # worked out once per index: the same few people recur across a build's findings
    _person_keys: dict[tuple[str, bool], tuple[str, str] | None] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def load(cls, session: Session) -> IdentityIndex:
        persons = session.execute(
            sa_select(
                col(Person.id), col(Person.primary_email), col(Person.display_name), col(Person.aliases)
            )
        ).all()
        accounts = session.execute(
            sa_select(
                col(Account.person_id),
                col(Account.provider_user_id),
                col(Account.email),
                col(Account.is_admin),
                col(Account.admin_roles),
                col(Account.display_name),
            )
        ).all()
        return cls.build(persons, accounts)

    @classmethod
    def build(cls, persons: Iterable[Any], accounts: Iterable[Any]) -> IdentityIndex:
        index = cls()
        addresses: dict[int, set[str]] = {}
        account_ids: dict[int, set[str]] = {}
        roles: dict[int, set[str]] = {}
        admin: dict[int, bool] = {}
        names: dict[int, str | None] = {}
        primary: dict[int, str] = {}
        for person_id, email, display_name, aliases in persons:
            primary[person_id] = normalise_email(email)
            names[person_id] = display_name
            addresses.setdefault(person_id, set()).update(
                normalise_email(a) for a in [email, *(aliases or [])] if a and "@" in a
            )
        for person_id, provider_user_id, email, is_admin, admin_roles, display_name in accounts:
            if provider_user_id and (email or display_name):
                index.account_names.setdefault(
                    provider_user_id.strip().lower(), normalise_email(email) if email else str(display_name)
                )
            if person_id is None:
                if is_admin or admin_roles:
                    granted = tuple(role_name(r) for r in admin_roles or ()) or ("admin",)
                    if email:
                        index.unresolved_admin[normalise_email(email)] = granted
                    if provider_user_id:
                        index.unresolved_admin[provider_user_id.lower()] = granted
                continue
            if email:
                addresses.setdefault(person_id, set()).add(normalise_email(email))
            if provider_user_id:
                account_ids.setdefault(person_id, set()).add(provider_user_id)
            roles.setdefault(person_id, set()).update(role_name(r) for r in admin_roles or ())
            admin[person_id] = admin.get(person_id, False) or bool(is_admin)
            if not names.get(person_id) and display_name:
                names[person_id] = display_name
        for person_id in set(addresses) | set(account_ids):
            for address in addresses.get(person_id, ()):
                index.by_address.setdefault(address, person_id)
            for account in account_ids.get(person_id, ()):
                index.by_account.setdefault(account.lower(), person_id)
            name = names.get(person_id)
            if name and len(name.split()) >= 2:
                key = normalise_name(name)
                index.by_name[key] = -1 if key in index.by_name else person_id
            email = primary.get(person_id) or min(addresses.get(person_id) or {""})
            index.people[person_id] = PersonFacts(
                id=person_id,
                email=email,
                display_name=names.get(person_id),
                addresses=tuple(sorted(addresses.get(person_id, ()))),
                account_ids=tuple(sorted(account_ids.get(person_id, ()))),
                admin_roles=tuple(sorted(roles.get(person_id, ()))),
                is_admin=admin.get(person_id, False) or bool(roles.get(person_id)),
            )
        return index

    def person_for(self, value: str) -> int | None:
        """The person an address or provider user id belongs to, if the identity tables know."""
        if "@" in value:
            found = self.by_address.get(normalise_email(value))
            if found is not None:
                return found
        found = self.by_account.get(value.strip().lower())
        if found is None:  # "google:1023…", as identity findings name a person's accounts
            provider, sep, user_id = value.strip().partition(":")
            if sep and provider.lower() in _PROVIDERS:
                found = self.by_account.get(user_id.lower())
        if found is None and " " in value.strip():
            by_name = self.by_name.get(normalise_name(value), -1)
            return by_name if by_name >= 0 else None
        return found

    def name_of(self, value: str | None) -> str | None:
        """Who a raw author or account id is, in words: the person's e-mail, else the account's
        e-mail or name, else the value itself (`None` stays `None`)."""
        if not value:
            return value
        person = self.person_for(value)
        if person is not None and person in self.people:
            return self.people[person].email
        return self.account_names.get(value.strip().lower(), value)

    def label(self, key: str) -> str:
        """A key in words for people: ``person:12`` -> ``alice@corp.example``."""
        kind, _, value = key.partition(":")
        if kind == "person":
            facts = self.people.get(int(value))
            return facts.email if facts else key
        return value


@dataclass(frozen=True)
class EntityKeys:
    """A finding's grouping keys, with the words to explain each.

    `broad` holds what the finding names too many of to group by (the 17 accounts a spray
    targeted, the 120 files of a mass download): those describe its reach, not who or what it
    is about, and would otherwise pull every later finding about any of them into the incident.
    """

    keys: tuple[str, ...]
    labels: Mapping[str, str]
    broad: tuple[str, ...] = ()


MAX_NAMED = 3
_PROVIDERS = frozenset(p.value for p in Provider)


def _person_key(raw: str, identities: IdentityIndex, accounts: bool) -> tuple[str, str] | None:
    person = identities.person_for(raw)
    if person is not None:
        return f"person:{person}", identities.label(f"person:{person}")
    if "@" in raw:
        email = normalise_email(raw)
        return f"email:{email}", email
    if accounts:
        named = identities.account_names.get(raw.strip().lower())
        label = f"{named} ({raw.strip()})" if named and named != raw.strip() else raw.strip()
        return f"account:{raw.strip().lower()}", label
    return None


def _person_keys(raws: list[str], identities: IdentityIndex, *, accounts: bool) -> dict[str, str]:
    found: dict[str, str] = {}
    memo = identities._person_keys
    for raw in raws:
        pair = memo.get((raw, accounts), _UNKNOWN)
        if pair is _UNKNOWN:
            pair = memo[(raw, accounts)] = _person_key(raw, identities, accounts)
        if pair is not None:
            found.setdefault(pair[0], pair[1])
    return found


_UNKNOWN: Any = object()


def keys_for(entities: Mapping[str, Any] | None, identities: IdentityIndex) -> EntityKeys:
    """Turn a finding's `entities` JSON into grouping keys (people resolved through `identities`)."""
    entities = entities or {}
    people_raw = entities.get("people")
    accounts_raw = entities.get("accounts")
    from_people = _person_keys(_strings(people_raw), identities, accounts=False) if people_raw else {}
    from_accounts = _person_keys(_strings(accounts_raw), identities, accounts=True) if accounts_raw else {}
    people = {**from_people, **from_accounts}
    files_raw = entities.get("files")
    files = (
        {f"file:{n}": raw.strip() for raw in _strings(files_raw) if (n := normalise_name(raw))}
        if files_raw
        else {}
    )
    keys: dict[str, str] = {}
    broad: dict[str, str] = {}
    (broad if max(len(from_people), len(from_accounts)) > MAX_NAMED else keys).update(people)
    ips_raw = entities.get("ips")
    if ips_raw:
        for raw in _strings(ips_raw):
            ip = normalise_ip(raw)
            if ip is not None:
                keys.setdefault(f"ip:{ip}", ip)
    (broad if len(files) > MAX_NAMED else keys).update(files)
    apps_raw = entities.get("apps")
    if apps_raw:
        for raw in _strings(apps_raw):
            name = normalise_name(raw)
            if name:
                keys.setdefault(f"app:{name}", raw.strip())
    return EntityKeys(tuple(keys), {**keys, **broad}, tuple(broad))


def _strings(values: Any) -> list[str]:
    if type(values) is list and all(type(v) is str and v.strip() for v in values):
        return values  # the common case: a list of non-blank strings, as they are
    if isinstance(values, str):
        return [values] if values.strip() else []
    if not isinstance(values, list | tuple | set):
        return []
    return [str(v) for v in values if v is not None and str(v).strip()]


def key_kind(key: str) -> str:
    return key.partition(":")[0]


KEY_WORDS = {
    "person": "person",
    "email": "person",
    "account": "account",
    "ip": "source IP",
    "file": "file",
    "app": "app",
}
