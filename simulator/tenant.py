"""The organisation a scenario describes: people, devices, groups, apps, channels and files.

Built deterministically from the scenario, the options and the seed; O(users) in memory. Files
are produced on demand per owner (their ids encode the owner) so large tenants stay small.
"""

from __future__ import annotations

import random
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

from simulator.catalog import LAPTOPS, PHONES, THIRD_PARTY_APPS, DeviceModel, ThirdPartyApp
from simulator.data_files import load_yaml
from simulator.errors import ScenarioError
from simulator.geo import Block, City, Geo, load_geo
from simulator.identifiers import Ids
from simulator.scenario import Options, Scenario
from simulator.timestamps import DAY

PEOPLE_FILE = Path(__file__).parent / "data" / "people.yaml"
MFA_METHODS = (
    "microsoftAuthenticatorPush",
    "softwareOneTimePasscode",
    "mobilePhone",
    "windowsHelloForBusiness",
)


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    model: DeviceModel
    name: str
    compliant: bool
    managed: bool


@dataclass(frozen=True, slots=True)
class Person:
    index: int
    given: str
    family: str
    name: str
    email: str
    entra_id: str
    google_id: str
    slack_id: str
    department: str
    title: str
    office: City
    home_block: Block
    home_host: int
    laptop: Device
    phone: Device
    mfa_methods: tuple[str, ...]
    two_sv: bool
    entra_roles: tuple[str, ...]
    google_roles: tuple[str, ...]
    slack_role: str  # primary_owner | owner | admin | member
    corporate_vpn: bool
    commercial_vpn: bool
    traveler: bool
    dormant: bool
    created: int  # microseconds
    work_start: float  # local hour
    manager: int | None

    @property
    def is_admin(self) -> bool:
        return bool(self.entra_roles or self.google_roles or self.slack_role != "member")

    @property
    def local_part(self) -> str:
        return self.email.split("@", 1)[0]


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    google_id: str
    name: str
    email: str
    members: tuple[int, ...]
    security: bool


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    name: str
    private: bool
    members: tuple[int, ...]
    topic: str
    created: int


@dataclass(frozen=True, slots=True)
class Permission:
    """A sharing grant, vendor-neutral: rendered as a Graph permission or a Drive permission."""

    id: str
    type: str  # user | group | domain | anyone
    role: str  # owner | writer | reader
    email: str = ""
    domain: str = ""
    discoverable: bool = False


@dataclass(frozen=True, slots=True)
class DriveFile:
    provider: str  # m365 | google
    id: str
    owner: int
    title: str
    extension: str
    size: int
    created: int
    permissions: tuple[Permission, ...]

    @property
    def name(self) -> str:
        return f"{self.title}.{self.extension}"


@dataclass(eq=False)
class Tenant:
    """Everything that exists in the organisation before any story or remediation changes it."""

    scenario: Scenario
    options: Options
    ids: Ids
    geo: Geo
    tenant_id: str
    customer_id: str
    slack_team_id: str
    slack_enterprise_id: str
    people: list[Person]
    groups: list[Group]
    channels: list[Channel]
    offices: dict[str, Block]
    corporate_vpn: Block
    commercial_vpn: Block
    apps: tuple[ThirdPartyApp, ...] = THIRD_PARTY_APPS
    by_email: dict[str, Person] = field(default_factory=dict)
    by_id: dict[str, Person] = field(default_factory=dict)
    _files: OrderedDict[tuple[int, str], tuple[DriveFile, ...]] = field(default_factory=OrderedDict)
    _files_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for p in self.people:
            self.by_email[p.email.lower()] = p
            for key in (p.entra_id, p.google_id, p.slack_id):
                self.by_id[key] = p

    @property
    def domain(self) -> str:
        return self.scenario.tenant.domain

    def person(self, key: str) -> Person | None:
        """Look a person up by e-mail (any case) or by any of their provider ids."""
        return self.by_email.get(str(key).lower()) or self.by_id.get(str(key))

    def dormant_since(self, person: Person) -> int:
        """When a dormant person last signed in: 60 to 259 days before the period (the same answer
        in Entra's signInActivity and Google's lastLoginTime)."""
        return self.options.start - (60 + self.ids.number("dormant", person.index) % 200) * DAY

    def admins(self, kind: str) -> list[Person]:
        if kind == "m365":
            return [p for p in self.people if "Global Administrator" in p.entra_roles]
        if kind == "google":
            return [p for p in self.people if "_SEED_ADMIN_ROLE" in p.google_roles]
        return [p for p in self.people if p.slack_role in ("primary_owner", "owner", "admin")]

    @cached_property
    def google_subject(self) -> Person:
        return self.admins("google")[0]

    def files_of(self, owner: int, provider: str) -> tuple[DriveFile, ...]:
        """The files a person owns in OneDrive (m365) or Google Drive, before any change."""
        key = (owner, provider)
        with self._files_lock:
            files = self._files.get(key)
            if files is not None:
                self._files.move_to_end(key)
                return files
        files = _make_files(self, owner, provider)
        with self._files_lock:
            self._files[key] = files
            if len(self._files) > max(4096, 2 * len(self.people) + 64):  # O(users): every owner fits
                self._files.popitem(last=False)
        return files

    def file(self, provider: str, file_id: str) -> DriveFile | None:
        owner, k = decode_file_id(file_id)
        if owner is None or not 0 <= owner < len(self.people):
            return None
        files = self.files_of(owner, provider)
        return files[k] if k < len(files) and files[k].id == file_id else None

    def drive_id(self, owner: int) -> str:
        return "b!" + self.ids.token("drive", owner, length=30) + f"{owner:06X}"

    def owner_of_drive(self, drive_id: str) -> Person | None:
        try:
            owner = int(drive_id[-6:], 16)
        except ValueError:
            return None
        return (
            self.people[owner] if 0 <= owner < len(self.people) and self.drive_id(owner) == drive_id else None
        )


def build_tenant(scenario: Scenario, options: Options) -> Tenant:
    ids = Ids(options.seed)
    geo = load_geo()
    spec = scenario.tenant
    for city in [spec.hq, *spec.offices]:
        geo.city(city)
    hq = geo.city(spec.hq)
    offices = {
        city_id: geo.block(geo.city(city_id).country, "isp", ids.number("office", city_id))
        for city_id in {spec.hq, *spec.offices}
    }
    people = _people(scenario, options, ids, geo)
    return Tenant(
        scenario=scenario,
        options=options,
        ids=ids,
        geo=geo,
        tenant_id=ids.guid("tenant"),
        customer_id="C0" + ids.slack_id("", "customer", length=7).lower(),
        slack_team_id=ids.slack_id("T", "team", length=9),
        slack_enterprise_id=ids.slack_id("E", "enterprise", length=9),
        people=people,
        groups=_groups(scenario, ids, people),
        channels=_channels(ids, people, options),
        offices=offices,
        corporate_vpn=geo.block(hq.country, "hosting", ids.number("corp-vpn")),
        commercial_vpn=geo.block("NL", "hosting", ids.number("commercial-vpn")),
    )


@lru_cache(maxsize=1)
def _name_data() -> dict:
    return load_yaml(PEOPLE_FILE.read_text())


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().replace(" ", "")


# The first people have fixed jobs so every scenario has admins, an analyst and a helpdesk.
_FIXED_JOBS = (
    ("IT", "IT Administrator", ("Global Administrator",), ("_SEED_ADMIN_ROLE",), "primary_owner"),
    ("IT", "Security Analyst", ("Security Administrator",), (), "admin"),
    ("IT", "Helpdesk Technician", ("Helpdesk Administrator",), ("_HELP_DESK_ADMIN_ROLE",), "member"),
    (
        "IT",
        "Systems Engineer",
        ("Global Administrator", "Exchange Administrator"),
        ("_SEED_ADMIN_ROLE",),
        "owner",
    ),
    ("Finance", "Controller", (), (), "member"),
    ("Marketing", "Marketing Manager", (), (), "member"),
    ("HR", "HR Business Partner", (), (), "member"),
    ("Sales", "Sales Manager", (), (), "member"),
)


def _people(scenario: Scenario, options: Options, ids: Ids, geo: Geo) -> list[Person]:
    spec = scenario.tenant
    names = _name_data()
    rng = ids.rng("people")
    used: set[str] = set()
    people: list[Person] = []
    for index in range(options.users):
        given = rng.choice(names["given_names"])
        family = rng.choice(names["family_names"])
        local = f"{_ascii(given)}.{_ascii(family)}"
        if local in used:
            local = f"{local}{index}"
        used.add(local)
        if index < len(_FIXED_JOBS):
            department, title, entra_roles, google_roles, slack_role = _FIXED_JOBS[index]
        else:
            department = _weighted(rng, dict(spec.departments))
            title = rng.choice(names["departments"].get(department) or ["Specialist"])
            entra_roles, google_roles, slack_role = (), (), "member"
        office = geo.city(spec.hq if index < 4 else _weighted(rng, dict(spec.offices)))
        dormant = index >= len(_FIXED_JOBS) and rng.random() < spec.dormant
        new_hire = not dormant and index >= len(_FIXED_JOBS) and rng.random() < spec.new_hires
        if new_hire:
            created = options.start + int(rng.uniform(0.2, 0.8) * (options.end - options.start))
        else:
            created = options.start - int(rng.uniform(30, 2000) * DAY)
        mfa = rng.random() < spec.mfa_registered or index < 4
        methods = _mfa_methods(rng) if mfa else ()
        people.append(
            Person(
                index=index,
                given=given,
                family=family,
                name=f"{given} {family}",
                email=f"{local}@{spec.domain}",
                entra_id=ids.guid("entra-user", index),
                google_id=ids.google_id("google-user", index),
                slack_id=ids.slack_id("U", "slack-user", index),
                department=department,
                title=title,
                office=office,
                home_block=geo.block(office.country, "isp", ids.number("home", index)),
                home_host=int(ids.number("home-host", index) % 250),
                laptop=_device(ids, rng, index, LAPTOPS, spec.domain),
                phone=_device(ids, rng, index, PHONES, spec.domain),
                mfa_methods=methods,
                two_sv=rng.random() < spec.two_sv_enrolled or index < 4,
                entra_roles=entra_roles,
                google_roles=google_roles,
                slack_role=slack_role,
                corporate_vpn=rng.random() < spec.vpn_users,
                commercial_vpn=rng.random() < spec.commercial_vpn_users,
                traveler=rng.random() < spec.travelers,
                dormant=dormant,
                created=created,
                work_start=min(11.0, max(6.5, rng.gauss(8.6, 0.7))),
                manager=None if index < 8 else rng.randrange(0, min(index, 8 + options.users // 10)),
            )
        )
    if len(people) < len(_FIXED_JOBS):
        raise ScenarioError(f"a tenant needs at least {len(_FIXED_JOBS)} people, not {len(people)}")
    return people


def _mfa_methods(rng: random.Random) -> tuple[str, ...]:
    first = rng.choices(MFA_METHODS, weights=[6, 2, 2, 1])[0]
    extra = rng.choice(MFA_METHODS) if rng.random() < 0.3 else first
    return tuple(dict.fromkeys((first, extra)))


def _device(ids: Ids, rng: random.Random, index: int, models: tuple[DeviceModel, ...], domain: str) -> Device:
    model = rng.choices(models, weights=[m.weight for m in models])[0]
    managed = model.kind == "laptop" or rng.random() < 0.6
    prefix = domain.split(".")[0][:3].upper()
    name = f"{prefix}-{'LT' if model.kind == 'laptop' else 'MB'}-{index:05d}"
    return Device(ids.guid("device", model.kind, index), model, name, compliant=managed, managed=managed)


def _groups(scenario: Scenario, ids: Ids, people: list[Person]) -> list[Group]:
    domain = scenario.tenant.domain
    groups = [("All Staff", tuple(p.index for p in people), False)]
    for department in scenario.tenant.departments:
        members = tuple(p.index for p in people if p.department == department)
        if members:
            groups.append((department, members, False))
    groups.append(("IT Admins", tuple(p.index for p in people if p.entra_roles or p.google_roles), True))
    groups.append(
        ("Finance Approvers", tuple(p.index for p in people if p.department == "Finance")[:5], True)
    )
    return [
        Group(
            id=ids.guid("group", name),
            google_id=ids.hex("google-group", name, length=15),
            name=name,
            email=f"{name.lower().replace(' ', '-')}@{domain}",
            members=members,
            security=security,
        )
        for name, members, security in groups
    ]


def _channels(ids: Ids, people: list[Person], options: Options) -> list[Channel]:
    everyone = tuple(p.index for p in people)
    it = tuple(p.index for p in people if p.department == "IT")
    specs = [
        ("general", False, everyone, "Company-wide announcements and work-based matters"),
        ("random", False, everyone, "Non-work banter and water cooler conversation"),
        ("it-help", False, everyone, "Ask IT anything"),
        ("security-ops", True, it, "Security operations: alerts, triage, incidents"),
        ("travel", False, everyone, "Who is where this week"),
        (
            "it-changes",
            False,
            it + tuple(p.index for p in people if p.is_admin),
            "Change announcements and approvals",
        ),
    ]
    departments = sorted({p.department for p in people})
    for department in departments:
        members = tuple(p.index for p in people if p.department == department)
        specs.append((department.lower(), False, members, f"{department} team"))
    return [
        Channel(
            id=ids.slack_id("C", "channel", name, length=10),
            name=name,
            private=private,
            members=members,
            topic=topic,
            created=options.start - 400 * DAY,
        )
        for name, private, members, topic in specs
    ]


# ---------------------------------------------------------------- files (generated per owner)

_M365_EXT = ("docx", "xlsx", "pptx", "pdf")
_GOOGLE_EXT = {"docx": "document", "xlsx": "spreadsheet", "pptx": "presentation", "pdf": "pdf"}
_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def file_id(ids: Ids, provider: str, owner: int, k: int) -> str:
    body = ids.token("file", provider, owner, k, length=22 if provider == "google" else 24)
    suffix = f"{owner:06X}{k:02X}"
    return ("1" if provider == "google" else "01") + (body if provider == "google" else body.upper()) + suffix


def decode_file_id(value: str) -> tuple[int | None, int]:
    try:
        return int(value[-8:-2], 16), int(value[-2:], 16)
    except (ValueError, IndexError):
        return None, 0


def _make_files(tenant: Tenant, owner: int, provider: str) -> tuple[DriveFile, ...]:
    person = tenant.people[owner]
    ids = tenant.ids
    rng = ids.rng("files", provider, owner)
    titles = _name_data()["file_titles"].get(person.department) or ["Notes"]
    count = tenant.scenario.tenant.files_per_user + (2 if person.department == "Marketing" else 0)
    files = []
    for k in range(count):
        title = titles[k % len(titles)] + ("" if k < len(titles) else f" ({k // len(titles) + 1})")
        ext = rng.choice(_M365_EXT)
        fid = file_id(ids, provider, owner, k)
        perms = [Permission(ids.hex("perm-owner", fid, length=20), "user", "owner", email=person.email)]
        roll = rng.random()
        if person.department == "Marketing" and title in ("Press kit", "Product brochure"):
            perms.append(Permission("anyoneWithLink", "anyone", "reader"))
        elif roll < 0.35 and len(tenant.people) > 1:
            colleague = tenant.people[rng.randrange(len(tenant.people))]
            if colleague.index != owner:
                perms.append(
                    Permission(
                        ids.hex("perm", fid, "c", length=20),
                        "user",
                        rng.choice(("writer", "reader")),
                        email=colleague.email,
                    )
                )
        elif roll < 0.5:
            perms.append(
                Permission(ids.hex("perm", fid, "d", length=20), "domain", "reader", domain=tenant.domain)
            )
        elif roll < 0.53:
            partner = rng.choice(tenant.scenario.tenant.external_domains)
            perms.append(
                Permission(
                    ids.hex("perm", fid, "x", length=20), "user", "reader", email=f"projects@{partner}"
                )
            )
        files.append(
            DriveFile(
                provider=provider,
                id=fid,
                owner=owner,
                title=title,
                extension=ext,
                size=rng.randint(12_000, 8_000_000),
                created=max(person.created, tenant.options.start - 300 * DAY) + rng.randint(0, 20) * DAY,
                permissions=tuple(perms),
            )
        )
    return tuple(files)


def google_mime(extension: str) -> str:
    kind = _GOOGLE_EXT.get(extension, "file")
    return "application/pdf" if kind == "pdf" else f"application/vnd.google-apps.{kind}"
