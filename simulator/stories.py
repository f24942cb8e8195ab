"""Attack (and benign look-alike) stories: scenario steps turned into events, state and ground truth.

A story resolves its actors (a victim picked from the tenant, an attacker with foreign IPs ...),
places itself in time, then runs each step's *action*. Actions append records to event streams,
messages to conversations and apply their effect to the tenant state (an inbox rule exists, a
role is assigned ...). Every record a step creates is listed under that step in the ground truth.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulator.activity import Record, Session
from simulator.catalog import (
    APP_BY_NAME,
    ATTACKER_AGENTS,
    ENTRA_ROLES,
    FIRST_PARTY_APPS,
    GOOGLE_ROLES,
    DeviceModel,
)
from simulator.conversations import Message, make_mail, slack_ts_text
from simulator.errors import ScenarioError
from simulator.geo import Block, City
from simulator.render import event_ids
from simulator.render.context import RenderContext
from simulator.render.google import activity_extra, client_id
from simulator.render.m365 import audit_extra, target
from simulator.render.slack import audit_extra as slack_extra
from simulator.render.slack import slack_file, slack_user
from simulator.scenario import StepSpec, StorySpec
from simulator.state import GoogleToken, InboxRule, ServicePrincipal, SlackApp, State
from simulator.store import STORY_UID_BASE
from simulator.tenant import Device, Permission, Person, Tenant
from simulator.timestamps import DAY, HOUR, MINUTE, SECOND, floor_day, graph_time, parse_duration

Action = Callable[["StoryBuilder", StepSpec, dict[str, Any], int], None]
ACTIONS: dict[str, Action] = {}


def action(name: str) -> Callable[[Action], Action]:
    def register(function: Action) -> Action:
        ACTIONS[name] = function
        return function

    return register


@dataclass
class Attacker:
    country: str
    city: City
    blocks: list[Block]
    ips: list[str]
    device: Device


@dataclass
class StoryOutput:
    """What building all stories produced, consumed by the store, conversations and truth."""

    records: dict[str, list[Record]] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    truth_stories: list[dict[str, Any]] = field(default_factory=list)
    truth_decoys: list[dict[str, Any]] = field(default_factory=list)


class StoryBuilder:
    def __init__(self, tenant: Tenant, state: State) -> None:
        self.tenant = tenant
        self.state = state
        self.ids = tenant.ids
        self.ctx = RenderContext(tenant)
        self.output = StoryOutput()
        self._uid = STORY_UID_BASE
        self._used: set[int] = set()
        # per story
        self.spec: StorySpec | None = None
        self.actors: dict[str, Any] = {}
        self.rng = random.Random(0)
        self._step_records: list[tuple[str, Record]] = []
        self._step_messages: list[Message] = []
        self.created: dict[str, list[dict[str, Any]]] = {}

    # ---------------------------------------------------------------- building

    def build_all(self) -> StoryOutput:
        scenario = self.tenant.scenario
        for spec in scenario.stories:
            self.output.truth_stories.append(self.build(spec))
        for spec in scenario.decoys:
            self.output.truth_decoys.append(self.build(spec))
        for records in self.output.records.values():
            records.sort(key=lambda r: (r[0], r[1]))
        return self.output

    def build(self, spec: StorySpec) -> dict[str, Any]:
        self.spec = spec
        self.rng = self.ids.rng("story", spec.id)
        self.created = {}
        self.actors = {name: self._resolve_actor(name, raw) for name, raw in spec.actors.items()}
        start = self._start_time(spec)
        self._story_messages: list[Message] = []
        steps = [self._run_step(step, start, spec) for step in spec.steps]
        for step in spec.conversations:
            self._run_step(step, start, spec)
        conversations = [self._message_ref(m) for m in self._story_messages]
        people = sorted({p.email for p in self.actors.values() if isinstance(p, Person)})
        attacker_ips = sorted({ip for a in self.actors.values() if isinstance(a, Attacker) for ip in a.ips})
        truth: dict[str, Any] = {
            "id": spec.id,
            "title": spec.title,
            "kind": spec.kind,
            "people": people,
            "attacker_ips": attacker_ips,
            "start": graph_time(start),
            "steps": steps,
            "conversations": conversations,
            "remediation": [entry for r in spec.remediation for entry in self._remediation(r)],
            "incident": self._incident(spec, people, attacker_ips),
            "mitre": list(spec.mitre),
        }
        if spec.decoy:
            truth["events"] = [e for s in steps for e in s["events"]]
        return truth

    def _start_time(self, spec: StorySpec) -> int:
        options = self.tenant.options
        hours, _, minutes = spec.utc_time.partition(":")
        start = (
            floor_day(options.end - int(spec.days_before_end * DAY))
            + int(hours) * HOUR
            + int(minutes or 0) * MINUTE
        )
        span = max([s.after for s in spec.steps + spec.conversations] + [0]) + HOUR
        latest = options.end - span - 10 * MINUTE
        earliest = options.start + HOUR
        if start > latest:
            start = max(earliest, start - ((start - latest) // DAY + 1) * DAY)
        return max(earliest, min(start, latest))

    def _run_step(self, step: StepSpec, start: int, spec: StorySpec) -> dict[str, Any]:
        function = ACTIONS.get(step.action)
        if function is None:
            raise ScenarioError(
                f"story {spec.id!r} step {step.id!r}: unknown action {step.action!r}; known: {', '.join(sorted(ACTIONS))}"
            )
        self._step_records = []
        self._step_messages = []
        at = start + step.after
        try:
            function(self, step, dict(step.params), at)
        except KeyError as exc:
            raise ScenarioError(
                f"story {spec.id!r} step {step.id!r} ({step.action}): missing or unknown {exc}"
            ) from None
        events = []
        for stream, record in self._step_records:
            provider, stream_name = stream.split(":")
            events.extend(
                {"provider": provider, "stream": stream_name, "id": i}
                for i in event_ids(self.ctx, stream, record)
            )
        events.extend(self._message_ref(m) for m in self._step_messages)
        self._story_messages.extend(self._step_messages)
        return {
            "id": step.id,
            "title": step.title,
            "action": step.action,
            "detectable": step.detectable,
            "at": graph_time(
                min([r[0] for _, r in self._step_records] + [m.ts for m in self._step_messages] or [at])
            ),
            "events": events,
        }

    @staticmethod
    def _message_ref(message: Message) -> dict[str, Any]:
        provider, stream = message.stream.split(":")
        return {"provider": provider, "stream": stream, "id": message.provider_id}

    # ---------------------------------------------------------------- actors

    def _resolve_actor(self, name: str, raw: dict[str, Any]) -> Any:
        if "country" in raw:
            return self._attacker(name, raw)
        if "email" in raw:
            return str(raw["email"])
        return self._pick_person(name, raw)

    def _pick_person(self, name: str, raw: dict[str, Any]) -> Person:
        people = self.tenant.people
        fixed = {
            "it_admin": 0,
            "analyst": 1,
            "helpdesk": 2,
            "sysadmin": 3,
            "controller": 4,
            "marketing_manager": 5,
            "hr": 6,
            "sales_manager": 7,
        }
        pick = raw.get("pick", "member")
        if pick in fixed:
            return people[fixed[pick]]
        candidates = [
            p
            for p in people[8:]
            if not p.dormant and p.created < self.tenant.options.start and p.index not in self._used
        ]
        if pick == "admin":
            candidates = [p for p in people if "Global Administrator" in p.entra_roles]
        for key in ("department", "office"):
            if key in raw:
                narrowed = [
                    p
                    for p in candidates
                    if (p.department if key == "department" else p.office.id) == raw[key]
                ]
                candidates = narrowed or candidates
        if "mfa" in raw:
            candidates = [p for p in candidates if bool(p.mfa_methods) == bool(raw["mfa"])] or candidates
        if "traveler" in raw:
            candidates = [p for p in candidates if p.traveler == bool(raw["traveler"])] or candidates
        if not candidates:
            candidates = [p for p in people[8:] if not p.dormant] or list(people)
        chosen = candidates[
            self.ids.number("actor", self.spec.id if self.spec else "", name) % len(candidates)
        ]
        self._used.add(chosen.index)
        return chosen

    def _attacker(self, name: str, raw: dict[str, Any]) -> Attacker:
        geo = self.tenant.geo
        country = geo.country(str(raw["country"]))
        kind = str(raw.get("network", "hosting"))
        number = self.ids.number("attacker", self.spec.id if self.spec else "", name)
        city = country.cities[number % len(country.cities)]
        blocks = [geo.block(country.code, kind, number + i) for i in range(int(raw.get("ips", 1)))]
        ips = list(dict.fromkeys(b.address((number >> 8) + i * 37) for i, b in enumerate(blocks)))
        agent = ATTACKER_AGENTS[int(raw.get("agent", number % len(ATTACKER_AGENTS))) % len(ATTACKER_AGENTS)]
        device = Device("", agent, "", compliant=False, managed=False)
        return Attacker(country.code, city, blocks, ips, device)

    def person(self, params: dict[str, Any], key: str = "user") -> Person:
        ref = params.get(key, "victim")
        actor = self.actors.get(ref) if isinstance(ref, str) else None
        if isinstance(actor, Person):
            return actor
        found = self.tenant.person(str(ref))
        if found is None:
            raise ScenarioError(
                f"story {self.spec.id if self.spec else ''}: {key}={ref!r} is neither an actor nor a person"
            )
        return found

    def attacker(self, params: dict[str, Any]) -> Attacker:
        ref = params.get("attacker", "attacker")
        actor = self.actors.get(ref)
        if not isinstance(actor, Attacker):
            raise ScenarioError(f"story {self.spec.id if self.spec else ''}: no attacker actor named {ref!r}")
        return actor

    def session(
        self, person: Person, at: int, where: str, params: dict[str, Any], n: int = 0, length: int = 2 * HOUR
    ) -> Session:
        """Where an action happens: the attacker's network, or a person's usual/benign places."""
        tenant = self.tenant
        device = person.laptop
        if where == "attacker":
            attacker = self.attacker(params)
            ip = attacker.ips[n % len(attacker.ips)]
            block = attacker.blocks[n % len(attacker.blocks)]
            return Session(
                person,
                900 + n % len(attacker.ips),
                at,
                at + length,
                ip,
                attacker.city,
                block,
                "attacker",
                attacker.device,
                at // DAY,
            )
        if where.startswith("travel:"):
            city = tenant.geo.city(where.split(":", 1)[1])
            block = tenant.geo.block(city.country, "isp", self.ids.number("story-hotel", person.index))
            return Session(
                person,
                800,
                at,
                at + length,
                block.address(person.index),
                city,
                block,
                "travel",
                device,
                at // DAY,
            )
        if where == "corporate_vpn":
            hq = tenant.geo.city(tenant.scenario.tenant.hq)
            return Session(
                person,
                801,
                at,
                at + length,
                tenant.corporate_vpn.address(person.index),
                hq,
                tenant.corporate_vpn,
                where,
                device,
                at // DAY,
            )
        if where == "home":
            return Session(
                person,
                802,
                at,
                at + length,
                person.home_block.address(person.home_host),
                person.office,
                person.home_block,
                "home",
                device,
                at // DAY,
            )
        if where == "phone":
            return Session(
                person,
                803,
                at,
                at + length,
                person.home_block.address(person.home_host),
                person.office,
                person.home_block,
                "mobile",
                person.phone,
                at // DAY,
            )
        block = tenant.offices.get(person.office.id, person.home_block)
        return Session(
            person,
            804,
            at,
            at + length,
            block.address(person.index * 7),
            person.office,
            block,
            "office",
            device,
            at // DAY,
        )

    def where(self, params: dict[str, Any]) -> str:
        return str(params.get("from", "attacker" if self.spec and not self.spec.decoy else "office"))

    # ---------------------------------------------------------------- emitting

    def emit(
        self, stream: str, ts: int, kind: str, person: Person | None, session: Session | None, extra: Any
    ) -> Record:
        self._uid += 1
        record: Record = (ts - ts % 1000, self._uid, kind, person, session, extra)
        self.output.records.setdefault(stream, []).append(record)
        self._step_records.append((stream, record))
        return record

    def message(self, message: Message) -> None:
        self.output.messages.append(message)
        self._step_messages.append(message)

    def remember(self, kind: str, **values: Any) -> None:
        self.created.setdefault(kind, []).append(values)

    def spread(self, at: int, params: dict[str, Any], n: int, default: str = "20m") -> list[int]:
        total = parse_duration(params.get("spread", default))
        if n <= 1:
            return [at]
        times = sorted(at + int(self.rng.random() * total) for _ in range(n))
        times[0] = at
        return times

    def format(self, text: str) -> str:
        values = {}
        for name, actor in self.actors.items():
            if isinstance(actor, Person):
                values[name] = _PersonView(actor)
            elif isinstance(actor, Attacker):
                values[name] = _AttackerView(actor, self.tenant.geo.country(actor.country).name)
            else:
                values[name] = actor
        try:
            return text.format(**values)
        except (KeyError, AttributeError, IndexError) as exc:
            raise ScenarioError(
                f"story {self.spec.id if self.spec else ''}: text {text!r} refers to unknown {exc}"
            ) from None

    # ---------------------------------------------------------------- truth helpers

    def _remediation(self, raw: dict[str, Any]) -> list[dict[str, Any]]:
        """Resolve actor names and `$kind.field` references; one entry per object a step created."""
        base: dict[str, Any] = {}
        provider = (raw.get("target") or {}).get("provider", "m365")
        for key, value in (raw.get("target") or {}).items():
            actor = self.actors.get(value) if isinstance(value, str) else None
            if isinstance(actor, Person):
                base[key] = actor.email
                base[f"{key}_id"] = {
                    "m365": actor.entra_id,
                    "google": actor.google_id,
                    "slack": actor.slack_id,
                }.get(provider, actor.entra_id)
            elif isinstance(actor, Attacker):
                base[key] = actor.ips
            else:
                base[key] = value
        references = {
            k: v[1:].partition(".") for k, v in base.items() if isinstance(v, str) and v.startswith("$")
        }
        objects: list[dict[str, Any]] = [{}]
        kinds = {kind for kind, _, _ in references.values()}
        if len(kinds) == 1:
            made = self.created.get(next(iter(kinds))) or []
            owner = base.get("user")
            if owner and any(m.get("user") == owner for m in made):
                made = [m for m in made if m.get("user") == owner]
            objects = list({tuple(sorted(m.items())): m for m in made}.values()) or [{}]
        entries = []
        for made_object in objects:
            target = dict(base)
            for key, (_, _, field_name) in references.items():
                target[key] = made_object.get(field_name)
            entries.append(
                {
                    "action": str(raw["action"]),
                    "target": target,
                    **({"why": raw["why"]} if "why" in raw else {}),
                }
            )
        return entries

    def _incident(self, spec: StorySpec, people: list[str], ips: list[str]) -> dict[str, Any]:
        incident = {
            "people": people,
            "attacker_ips": ips,
            **{k: v for k, v in spec.incident.items() if k != "people"},
        }
        if "people" in spec.incident:
            incident["people"] = [
                self.actors[p].email if isinstance(self.actors.get(p), Person) else p
                for p in spec.incident["people"]
            ]
        return incident


@dataclass(frozen=True)
class _PersonView:
    person: Person

    def __getattr__(self, name: str) -> Any:
        return getattr(self.person, name)

    def __format__(self, spec: str) -> str:
        return self.person.name


@dataclass(frozen=True)
class _AttackerView:
    attacker: Attacker
    country_name: str

    @property
    def city(self) -> str:
        return self.attacker.city.name

    @property
    def ip(self) -> str:
        return self.attacker.ips[0]

    def __format__(self, spec: str) -> str:
        return self.attacker.ips[0]


def _app(name: str) -> Any:
    return APP_BY_NAME.get(name) or FIRST_PARTY_APPS[2]


# ==================================================================== Microsoft 365 actions


@action("m365.password_spray")
def m365_password_spray(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """Failed sign-ins (50126) against many accounts from a few foreign IPs, the victim among them."""
    victim = b.person(p)
    others = [x for x in b.tenant.people if x.index != victim.index]
    b.rng.shuffle(others)
    accounts = [victim] + others[: max(0, int(p.get("accounts", 20)) - 1)]
    attempts = int(p.get("attempts", 1))
    times = b.spread(at, p, len(accounts) * attempts, "40m")
    app = _app(str(p.get("app", "Microsoft Office")))
    for i, ts in enumerate(times):
        person = accounts[i % len(accounts)]
        session = b.session(person, ts, "attacker", p, n=i)
        b.emit("m365:signins", ts, "fail", person, session, (app.app_id, 50126))
        b.emit("m365:unified_audit", ts + SECOND, "UserLoginFailed", person, session, None)


@action("m365.mfa_fatigue")
def m365_mfa_fatigue(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """Correct password, then repeated MFA prompts the user does not approve (500121)."""
    person = b.person(p)
    app = _app(str(p.get("app", "OfficeHome")))
    for _i, ts in enumerate(b.spread(at, p, int(p.get("prompts", 5)), "8m")):
        session = b.session(person, ts, b.where(p), p, n=int(p.get("ip", 0)))
        b.emit("m365:signins", ts, "fail", person, session, (app.app_id, 500121, True))


@action("m365.signin")
def m365_signin(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """A successful interactive sign-in (optionally risky) and its unified-audit twin."""
    person = b.person(p)
    app = _app(str(p.get("app", "OfficeHome")))
    session = b.session(person, at, b.where(p), p, n=int(p.get("ip", 0)))
    for k in range(int(p.get("failures", 0))):
        b.emit("m365:signins", at - (k + 1) * 45 * SECOND, "fail", person, session, (app.app_id, 50126))
    risk = p.get("risk") or {}
    b.emit("m365:signins", at, "ok", person, session, (app.app_id, 0, bool(p.get("mfa", True)), risk))
    b.emit("m365:unified_audit", at + 2 * SECOND, "UserLoggedIn", person, session, None)
    for risk_type in risk.get("types", []):
        b.emit(
            "m365:risk_detections",
            at + 3 * MINUTE,
            risk_type,
            person,
            session,
            {"level": risk.get("level", "medium")},
        )
    if risk.get("level") in ("medium", "high"):
        user = b.state.user(person.index)
        user.risk_level, user.risk_state, user.risk_detail, user.risk_updated = (
            risk["level"],
            "atRisk",
            "none",
            at + 3 * MINUTE,
        )


@action("m365.mfa_method_registered")
def m365_mfa_method_registered(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """A new authentication method appears on the account (persistence after takeover)."""
    person = b.person(p)
    method = str(p.get("method", "softwareOneTimePasscode"))
    session = b.session(person, at, b.where(p), p)
    details = [("Method", method), ("UserAgent", session.device.model.user_agent)]
    if p.get("phone"):
        details.append(("PhoneNumber", str(p["phone"])))
    b.emit(
        "m365:directory_audits",
        at,
        "audit",
        person,
        session,
        audit_extra(
            "User registered security info",
            "UserManagement",
            "Authentication Methods",
            "Add",
            person,
            session.ip,
            [target("User", person.entra_id, None, person.email)],
            details,
        ),
    )
    b.emit(
        "m365:directory_audits",
        at + 20 * SECOND,
        "audit",
        person,
        session,
        audit_extra(
            "User registered all required security info",
            "UserManagement",
            "Authentication Methods",
            "Add",
            person,
            session.ip,
            [target("User", person.entra_id, None, person.email)],
        ),
    )
    record = b.state._method(person, method, at)
    b.state.user(person.index).mfa_methods.append(record)
    b.remember("auth_method", id=record["id"], method=method, user=person.email)


@action("m365.inbox_rule")
def m365_inbox_rule(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """New-InboxRule (or Set-InboxRule) that forwards and/or hides mail."""
    person = b.person(p)
    session = b.session(person, at, b.where(p), p)
    name = str(p.get("name", "."))
    operation = str(p.get("operation", "New-InboxRule"))
    params = [
        {"Name": "AlwaysDeleteOutlookRulesBlob", "Value": "False"},
        {"Name": "Force", "Value": "False"},
        {"Name": "Name", "Value": name},
    ]
    actions: dict[str, Any] = {}
    conditions: dict[str, Any] = {}
    if p.get("forward_to"):
        params.append({"Name": "ForwardTo", "Value": str(p["forward_to"])})
        actions["forwardTo"] = [
            {"emailAddress": {"name": str(p["forward_to"]), "address": str(p["forward_to"])}}
        ]
    if p.get("redirect_to"):
        params.append({"Name": "RedirectTo", "Value": str(p["redirect_to"])})
        actions["redirectTo"] = [
            {"emailAddress": {"name": str(p["redirect_to"]), "address": str(p["redirect_to"])}}
        ]
    if p.get("move_to"):
        params.append({"Name": "MoveToFolder", "Value": str(p["move_to"])})
        actions["moveToFolder"] = str(p["move_to"])
    if p.get("delete"):
        params.append({"Name": "DeleteMessage", "Value": "True"})
        actions["delete"] = True
    if p.get("mark_read"):
        params.append({"Name": "MarkAsRead", "Value": "True"})
        actions["markAsRead"] = True
    if p.get("subject_contains"):
        words = [str(w) for w in p["subject_contains"]]
        params.append({"Name": "SubjectOrBodyContainsWords", "Value": ";".join(words)})
        conditions["bodyOrSubjectContains"] = words
    params.append({"Name": "StopProcessingRules", "Value": "True"})
    rule_id = b.ids.token("story-rule", b.spec.id if b.spec else "", step.id, length=22) + "AQ=="
    b.emit(
        "m365:unified_audit",
        at,
        operation,
        person,
        session,
        {
            "parameters": params,
            "object_id": f"{person.email}\\{name}",
            "app_id": "00000002-0000-0ff1-ce00-000000000000",
        },
    )
    actions["stopProcessingRules"] = True
    rule = InboxRule(rule_id, name, 0, True, conditions, actions, at)
    b.state.inbox_rules_added.setdefault(person.index, []).append(rule)
    b.remember("inbox_rule", id=rule_id, name=name, user=person.email)


def _file_refs(
    b: StoryBuilder, person: Person, count_: int, provider: str, owners: str = "team"
) -> list[tuple[int, int]]:
    tenant = b.tenant
    pool = [person] + [
        x for x in tenant.people if x.department == person.department and x.index != person.index
    ]
    if owners == "all":
        pool = list(tenant.people)
    refs: list[tuple[int, int]] = []
    for owner in pool:
        refs.extend((owner.index, k) for k in range(len(tenant.files_of(owner.index, provider))))
        if len(refs) >= count_ * 3:
            break
    b.rng.shuffle(refs)
    while len(refs) < count_:
        refs.extend(refs[: count_ - len(refs)] or [(person.index, 0)])
    return refs[:count_]


@action("m365.mass_download")
def m365_mass_download(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """Many FileDownloaded / FileSyncDownloadedFull records in a short time."""
    person = b.person(p)
    n = int(p.get("files", 100))
    operation = str(p.get("operation", "FileDownloaded"))
    refs = _file_refs(b, person, n, "m365", str(p.get("owners", "team")))
    for i, ts in enumerate(b.spread(at, p, n, "25m")):
        session = b.session(person, ts, b.where(p), p)
        b.emit("m365:unified_audit", ts, operation, person, session, refs[i])


@action("m365.mail_read_by_app")
def m365_mail_read_by_app(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """A consented app reads the mailbox through Graph (MailItemsAccessed, app id of the rogue app)."""
    person = b.person(p)
    made = [m for m in b.created.get("service_principal", [])]
    app_id = made[-1]["app_id"] if made else b.ids.guid("app-id", "unknown")
    for i, ts in enumerate(b.spread(at, p, int(p.get("batches", 6)), "3h")):
        session = b.session(person, ts, b.where(p), p, n=i)
        b.emit(
            "m365:unified_audit",
            ts,
            "MailItemsAccessed",
            person,
            session,
            {
                "AppId": app_id,
                "ClientAppId": app_id,
                "OperationCount": 40 + (i * 17) % 60,
                "MailAccessType": "Bind",
                "Folders": [
                    {
                        "Path": "\\Inbox",
                        "FolderItems": [
                            {"InternetMessageId": f"<{b.ids.hex('mia', i, length=20)}@{b.tenant.domain}>"}
                        ],
                    }
                ],
            },
        )


@action("m365.oauth_consent")
def m365_oauth_consent(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """A user consents to an app: service principal created, delegated grant added, consent logged."""
    person = b.person(p)
    app = dict(p.get("app") or {})
    name = str(app.get("name", "Document Viewer"))
    scopes = str(app.get("scopes", "Mail.Read Mail.Send Files.ReadWrite.All offline_access User.Read"))
    session = b.session(person, at, b.where(p), p)
    key = f"story-app:{name}"
    sp_id = b.ids.guid("sp", key)
    app_id = b.ids.guid("app-id", key)
    if sp_id not in b.state.service_principals:
        b.state.service_principals[sp_id] = ServicePrincipal(
            sp_id,
            app_id,
            name,
            str(app.get("publisher", "")),
            bool(app.get("verified", False)),
            b.ids.guid("publisher-tenant", key),
            at,
            reply_urls=(str(app.get("reply_url", f"https://{name.lower().replace(' ', '-')}.example/auth")),),
        )
        b.emit(
            "m365:directory_audits",
            at,
            "audit",
            person,
            session,
            audit_extra(
                "Add service principal",
                "ApplicationManagement",
                "Core Directory",
                "Add",
                person,
                session.ip,
                [
                    target(
                        "ServicePrincipal",
                        sp_id,
                        name,
                        props=[("AppAddress", None, [app.get("reply_url", "")]), ("AppId", None, app_id)],
                    )
                ],
            ),
        )
    grant_id = b.ids.token("grant", key, person.index, length=43)
    b.state._add_grant(sp_id, "Principal", person.entra_id, scopes, grant_id)
    b.emit(
        "m365:directory_audits",
        at + 2 * SECOND,
        "audit",
        person,
        session,
        audit_extra(
            "Add delegated permission grant",
            "ApplicationManagement",
            "Core Directory",
            "Assign",
            person,
            session.ip,
            [
                target(
                    "ServicePrincipal",
                    b.state.graph_sp_id,
                    "Microsoft Graph",
                    props=[
                        ("DelegatedPermissionGrant.Scope", None, scopes),
                        ("DelegatedPermissionGrant.ConsentType", None, "Principal"),
                    ],
                ),
                target("ServicePrincipal", sp_id, name),
            ],
        ),
    )
    b.emit(
        "m365:directory_audits",
        at + 3 * SECOND,
        "audit",
        person,
        session,
        audit_extra(
            "Consent to application",
            "ApplicationManagement",
            "Core Directory",
            "Assign",
            person,
            session.ip,
            [
                target(
                    "ServicePrincipal",
                    sp_id,
                    name,
                    props=[
                        ("ConsentContext.IsAdminConsent", None, "False"),
                        ("ConsentContext.OnBehalfOfAll", None, "False"),
                        ("ConsentAction.Permissions", None, f"Scope: {scopes}"),
                        ("TargetId.ServicePrincipalNames", None, app_id),
                    ],
                )
            ],
            [("User-Agent", session.device.model.user_agent), ("AppId", app_id)],
        ),
    )
    b.emit(
        "m365:unified_audit",
        at + 4 * SECOND,
        "Consent to application.",
        person,
        session,
        {
            "ObjectId": sp_id,
            "ModifiedProperties": [{"Name": "ConsentAction.Permissions", "NewValue": scopes, "OldValue": ""}],
            "Target": [{"ID": sp_id, "Type": 2}, {"ID": name, "Type": 1}],
        },
    )
    b.remember("service_principal", id=sp_id, app_id=app_id, name=name)
    b.remember("grant", id=grant_id, client_id=sp_id, user=person.email, scope=scopes)


@action("m365.role_assigned")
def m365_role_assigned(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """An admin adds someone (maybe themselves) to a directory role."""
    admin = b.person(p, "by")
    person = b.person(p)
    role = str(p.get("role", "Global Administrator"))
    session = b.session(admin, at, b.where(p), p)
    assignment_id = b.ids.guid("story-role", b.spec.id if b.spec else "", step.id)
    b.state._add_role_assignment(person, role, assignment_id)
    b.state.bump(person)
    b.emit(
        "m365:directory_audits",
        at,
        "audit",
        admin,
        session,
        audit_extra(
            "Add member to role",
            "RoleManagement",
            "Core Directory",
            "Assign",
            admin,
            session.ip,
            [
                target(
                    "User",
                    person.entra_id,
                    None,
                    person.email,
                    [("Role.DisplayName", None, role), ("Role.TemplateId", None, ENTRA_ROLES[role])],
                ),
                target("Role", ENTRA_ROLES[role], role),
            ],
        ),
    )
    b.emit(
        "m365:unified_audit",
        at + 2 * SECOND,
        "Add member to role.",
        admin,
        session,
        {
            "ObjectId": person.email,
            "ModifiedProperties": [{"Name": "Role.DisplayName", "NewValue": role, "OldValue": ""}],
            "Target": [{"ID": person.entra_id, "Type": 2}, {"ID": person.email, "Type": 5}],
        },
    )
    b.remember("role_assignment", id=assignment_id, role=role, user=person.email)


@action("m365.ca_policy_changed")
def m365_ca_policy_changed(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """A conditional access policy is switched off or put in report-only (configuration drift)."""
    admin = b.person(p, "by")
    name = str(p.get("policy", "Require MFA for administrators"))
    new_state = str(p.get("state", "disabled"))
    policy = next((x for x in b.state.ca_policies.values() if x["displayName"] == name), None)
    if policy is None:
        raise ScenarioError(f"m365.ca_policy_changed: no conditional access policy named {name!r}")
    old = {"state": policy["state"], "displayName": name}
    policy["state"] = new_state
    policy["modifiedDateTime"] = at
    session = b.session(admin, at, b.where(p), p)
    b.emit(
        "m365:directory_audits",
        at,
        "audit",
        admin,
        session,
        audit_extra(
            "Update conditional access policy",
            "Policy",
            "Conditional Access",
            "Update",
            admin,
            session.ip,
            [
                target(
                    "Policy",
                    policy["id"],
                    name,
                    props=[("ConditionalAccessPolicy", old, {"state": new_state, "displayName": name})],
                )
            ],
        ),
    )
    b.remember("ca_policy", id=policy["id"], name=name, old_state=old["state"], new_state=new_state)


@action("m365.security_defaults_changed")
def m365_security_defaults_changed(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    admin = b.person(p, "by")
    enabled = bool(p.get("enabled", False))
    old = b.state.security_defaults["isEnabled"]
    b.state.security_defaults["isEnabled"] = enabled
    session = b.session(admin, at, b.where(p), p)
    b.emit(
        "m365:directory_audits",
        at,
        "audit",
        admin,
        session,
        audit_extra(
            "Update policy",
            "Policy",
            "Core Directory",
            "Update",
            admin,
            session.ip,
            [
                target(
                    "Policy",
                    b.state.security_defaults["id"],
                    "Security Defaults",
                    props=[("IsEnabled", old, enabled)],
                )
            ],
        ),
    )
    b.remember("security_defaults", old=old, new=enabled)


def _add_permission(b: StoryBuilder, provider: str, file_id: str, permission: Permission) -> None:
    b.state.added_permissions.setdefault(file_id, []).append(permission)


@action("m365.anonymous_link")
def m365_anonymous_link(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """'Anyone with the link' sharing links on OneDrive files."""
    person = b.person(p)
    files = b.tenant.files_of(person.index, "m365")
    chosen = _choose_files(b, files, p)
    for i, (k, drive_file) in enumerate(chosen):
        ts = at + i * 40 * SECOND
        session = b.session(person, ts, b.where(p), p)
        perm_id = b.ids.hex("story-link", drive_file.id, length=20)
        _add_permission(b, "m365", drive_file.id, Permission(perm_id, "anyone", "reader"))
        b.emit(
            "m365:unified_audit",
            ts,
            "AnonymousLinkCreated",
            person,
            session,
            {"file": (person.index, k), "EventData": "<Type>View</Type>"},
        )
        b.emit(
            "m365:unified_audit",
            ts + SECOND,
            "SharingSet",
            person,
            session,
            {
                "file": (person.index, k),
                "TargetUserOrGroupName": "Anyone with the link",
                "TargetUserOrGroupType": "Guest",
                "EventData": "<PermissionsGranted>Read</PermissionsGranted>",
            },
        )
        b.remember(
            "m365_link",
            file_id=drive_file.id,
            permission_id=perm_id,
            drive_id=b.tenant.drive_id(person.index),
            title=drive_file.title,
        )


@action("m365.external_share")
def m365_external_share(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    person = b.person(p)
    to = str(p["to"])
    files = b.tenant.files_of(person.index, "m365")
    for i, (k, drive_file) in enumerate(_choose_files(b, files, p)):
        ts = at + i * 30 * SECOND
        session = b.session(person, ts, b.where(p), p)
        perm_id = b.ids.hex("story-share", drive_file.id, to, length=20)
        _add_permission(b, "m365", drive_file.id, Permission(perm_id, "user", "reader", email=to))
        b.emit(
            "m365:unified_audit",
            ts,
            "SharingSet",
            person,
            session,
            {
                "file": (person.index, k),
                "TargetUserOrGroupName": to,
                "TargetUserOrGroupType": "Guest",
                "EventData": "<PermissionsGranted>Read</PermissionsGranted>",
            },
        )
        b.remember(
            "m365_share",
            file_id=drive_file.id,
            permission_id=perm_id,
            drive_id=b.tenant.drive_id(person.index),
            to=to,
        )


def _choose_files(b: StoryBuilder, files: tuple[Any, ...], p: dict[str, Any]) -> list[tuple[int, Any]]:
    titles = p.get("titles")
    if titles:
        chosen = [(k, f) for k, f in enumerate(files) if f.title in titles]
        if chosen:
            return chosen
    n = min(len(files), int(p.get("files", 1)))
    return list(enumerate(files))[:n]


# ==================================================================== Google Workspace actions


def _google_activity(
    b: StoryBuilder,
    stream: str,
    ts: int,
    actor: Person,
    session: Session,
    events: list[tuple[str, str, dict[str, Any]]],
) -> None:
    b.emit(
        stream,
        ts,
        "activity",
        actor,
        session,
        activity_extra(actor, session.ip, events, session.city.country),
    )


@action("google.login")
def google_login(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    person = b.person(p)
    session = b.session(person, at, b.where(p), p, n=int(p.get("ip", 0)))
    suspicious = bool(p.get("suspicious", session.network == "attacker"))
    for k in range(int(p.get("failures", 0))):
        _google_activity(
            b,
            "google:login",
            at - (k + 1) * 50 * SECOND,
            person,
            session,
            [
                (
                    "login",
                    "login_failure",
                    {
                        "login_type": "google_password",
                        "login_challenge_method": ["password"],
                        "login_failure_type": "login_failure_invalid_password",
                        "is_suspicious": suspicious,
                    },
                )
            ],
        )
    methods = ["password", "google_authenticator"] if person.two_sv else ["password"]
    _google_activity(
        b,
        "google:login",
        at,
        person,
        session,
        [
            (
                "login",
                "login_success",
                {
                    "login_type": "google_password",
                    "login_challenge_method": methods,
                    "is_suspicious": suspicious,
                    "is_second_factor": person.two_sv,
                },
            )
        ],
    )
    if suspicious:
        _google_activity(
            b,
            "google:login",
            at + 40 * SECOND,
            person,
            session,
            [("login", "suspicious_login", {"login_type": "google_password", "login_timestamp": at // 1000})],
        )


def _google_visibility(drive_file: Any) -> str:
    kinds = {x.type for x in drive_file.permissions}
    return (
        "people_with_link"
        if "anyone" in kinds
        else "people_within_domain_with_link"
        if "domain" in kinds
        else ("shared_internally" if len(drive_file.permissions) > 1 else "private")
    )


@action("google.visibility_change")
def google_visibility_change(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """Drive files made public on the web / anyone with the link (two events per activity)."""
    person = b.person(p)
    visibility = str(p.get("visibility", "people_with_link"))
    files = b.tenant.files_of(person.index, "google")
    for i, (_k, drive_file) in enumerate(_choose_files(b, files, p)):
        ts = at + i * 25 * SECOND
        session = b.session(person, ts, b.where(p), p)
        old = _google_visibility(drive_file)
        common = {
            "primary_event": True,
            "billable": True,
            "owner_is_shared_drive": False,
            "owner": person.email,
            "doc_id": drive_file.id,
            "doc_type": "document",
            "doc_title": drive_file.title,
            "visibility": visibility,
            "actor_is_collaborator_account": False,
        }
        scope = "can_view"
        _google_activity(
            b,
            "google:drive",
            ts,
            person,
            session,
            [
                (
                    "acl_change",
                    "change_document_access_scope",
                    {**common, "old_value": ["none"], "new_value": [scope]},
                ),
                (
                    "acl_change",
                    "change_document_visibility",
                    {
                        **common,
                        "old_visibility": old,
                        "visibility_change": "external",
                        "old_value": [old],
                        "new_value": [visibility],
                    },
                ),
            ],
        )
        discoverable = visibility == "public_on_the_web"
        _add_permission(
            b,
            "google",
            drive_file.id,
            Permission(
                "anyoneWithLink" if not discoverable else "anyone",
                "anyone",
                "reader",
                discoverable=discoverable,
            ),
        )
        b.remember(
            "google_public",
            file_id=drive_file.id,
            permission_id="anyoneWithLink" if not discoverable else "anyone",
            title=drive_file.title,
            owner=person.email,
        )


@action("google.external_share")
def google_external_share(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    person = b.person(p)
    to = str(p["to"])
    files = b.tenant.files_of(person.index, "google")
    for i, (_k, drive_file) in enumerate(_choose_files(b, files, p)):
        ts = at + i * 20 * SECOND
        session = b.session(person, ts, b.where(p), p)
        common = {
            "primary_event": True,
            "billable": True,
            "owner_is_shared_drive": False,
            "owner": person.email,
            "doc_id": drive_file.id,
            "doc_type": "document",
            "doc_title": drive_file.title,
            "visibility": "shared_externally",
            "actor_is_collaborator_account": False,
        }
        _google_activity(
            b,
            "google:drive",
            ts,
            person,
            session,
            [
                (
                    "acl_change",
                    "change_user_access",
                    {
                        **common,
                        "target_user": to,
                        "target_domain": to.split("@")[-1],
                        "old_value": ["none"],
                        "new_value": ["can_view"],
                    },
                ),
            ],
        )
        perm_id = str(b.ids.number("google-perm", drive_file.id, to) % 10**20)
        _add_permission(b, "google", drive_file.id, Permission(perm_id, "user", "reader", email=to))
        b.remember("google_share", file_id=drive_file.id, permission_id=perm_id, to=to, owner=person.email)


@action("google.mass_download")
def google_mass_download(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    person = b.person(p)
    n = int(p.get("files", 80))
    refs = _file_refs(b, person, n, "google", str(p.get("owners", "team")))
    from simulator.render.google import _doc_params

    for i, ts in enumerate(b.spread(at, p, n, "30m")):
        session = b.session(person, ts, b.where(p), p)
        _google_activity(
            b, "google:drive", ts, person, session, [("access", "download", _doc_params(b.ctx, refs[i]))]
        )


@action("google.token_authorize")
def google_token_authorize(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """A user grants a third-party app OAuth access to their Google account."""
    person = b.person(p)
    app = dict(p.get("app") or {})
    name = str(app.get("name", "Document Viewer"))
    scopes = [
        str(s)
        for s in app.get("scopes", ["https://mail.google.com/", "https://www.googleapis.com/auth/drive"])
    ]
    cid = client_id(b.ctx, f"story-app:{name}")
    session = b.session(person, at, b.where(p), p)
    _google_activity(
        b,
        "google:token",
        at,
        person,
        session,
        [("auth", "authorize", {"client_id": cid, "app_name": name, "client_type": "WEB", "scope": scopes})],
    )
    b.state.google_tokens_added.setdefault(person.index, {})[cid] = GoogleToken(cid, name, scopes)
    b.remember("google_token", client_id=cid, user=person.email, app=name)


@action("google.assign_role")
def google_assign_role(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    admin = b.person(p, "by")
    person = b.person(p)
    role = str(p.get("role", "_SEED_ADMIN_ROLE"))
    session = b.session(admin, at, b.where(p), p)
    events = [
        (
            "DELEGATED_ADMIN_SETTINGS",
            "ASSIGN_ROLE",
            {"ROLE_NAME": role, "USER_EMAIL": person.email, "ROLE_ID": GOOGLE_ROLES[role][0]},
        )
    ]
    if GOOGLE_ROLES[role][2]:
        events.append(("USER_SETTINGS", "GRANT_ADMIN_PRIVILEGE", {"USER_EMAIL": person.email}))
        b.state.user(person.index).google_admin = True
    _google_activity(b, "google:admin", at, admin, session, events)
    assignment = b.state._add_google_role(
        person, role, b.ids.number("story-google-role", b.spec.id if b.spec else "", step.id)
    )
    b.state.bump(person)
    b.remember("google_role", id=assignment["roleAssignmentId"], role=role, user=person.email)


@action("google.setting_changed")
def google_setting_changed(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """An admin changes a setting; the Cloud Identity policy read shows the new value."""
    admin = b.person(p, "by")
    setting = str(p.get("setting", "drive_and_docs.external_sharing"))
    attribute = str(p.get("attribute", "externalSharingMode"))
    policy = b.state.google_policies.get(setting)
    if policy is None:
        raise ScenarioError(
            f"google.setting_changed: unknown setting {setting!r}; known: {', '.join(b.state.google_policies)}"
        )
    value = policy["setting"]["value"]
    old, new = value.get(attribute), p.get("new")
    if new is None:
        value.pop(attribute, None)
    else:
        value[attribute] = new
    session = b.session(admin, at, b.where(p), p)
    event_name = str(p.get("event", "CHANGE_APPLICATION_SETTING"))
    if event_name == "CHANGE_APPLICATION_SETTING":
        event = (
            "APPLICATION_SETTINGS",
            event_name,
            {
                "APPLICATION_NAME": str(p.get("application", "Drive and Docs")),
                "SETTING_NAME": str(p.get("setting_name", attribute)),
                "OLD_VALUE": "" if old is None else str(old),
                "NEW_VALUE": "" if new is None else str(new),
                "ORG_UNIT_NAME": b.tenant.scenario.tenant.name,
            },
        )
    else:
        event = (
            "SECURITY_SETTINGS",
            event_name,
            {
                "ORG_UNIT_NAME": b.tenant.scenario.tenant.name,
                "OLD_VALUE": "" if old is None else str(old),
                "NEW_VALUE": "" if new is None else str(new),
            },
        )
    _google_activity(b, "google:admin", at, admin, session, [event])
    b.remember(
        "google_setting", setting=setting, attribute=attribute, old=old, new=new, policy=policy["name"]
    )


# ==================================================================== Slack actions


def _slack_session_id(b: StoryBuilder, person: Person, where: str) -> str:
    return str(b.ids.number("slack-story-session", person.index, where) % 10**12)


def _slack_entry(
    b: StoryBuilder,
    ts: int,
    person: Person,
    session: Session,
    action_name: str,
    entity: dict[str, Any],
    details: dict[str, Any] | None = None,
    app: dict[str, Any] | None = None,
    where: str = "attacker",
) -> None:
    b.emit(
        "slack:audit",
        ts,
        "entry",
        person,
        session,
        slack_extra(
            action_name,
            person,
            entity,
            session.ip,
            session.device.model.user_agent,
            _slack_session_id(b, person, where),
            details,
            app,
        ),
    )


@action("slack.login")
def slack_login(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """A login with a stolen session/credentials: new IP, new user agent, and Slack's anomaly event."""
    person = b.person(p)
    where = b.where(p)
    session = b.session(person, at, where, p, n=int(p.get("ip", 0)))
    if p.get("agent"):
        session = Session(
            session.person,
            session.number,
            session.start,
            session.end,
            session.ip,
            session.city,
            session.block,
            session.network,
            Device("", DeviceModel("laptop", "", "", str(p["agent"]), 1), "", False, False),
            session.local_day,
        )
    _slack_entry(
        b, at, person, session, "user_login", {"type": "user", "user": slack_user(b.ctx, person)}, where=where
    )
    if p.get("anomaly", where == "attacker"):
        _slack_entry(
            b,
            at + 90 * SECOND,
            person,
            session,
            "anomaly",
            {"type": "user", "user": slack_user(b.ctx, person)},
            {
                "reason": ["asn", "ip_address", "user_agent", "session_fingerprint"],
                "action_timestamp": at // 1000,
                "location": f"{session.city.name}, {session.city.country}",
                "ip_address": session.ip,
                "ua": session.device.model.user_agent,
            },
            where=where,
        )


@action("slack.file_downloads")
def slack_file_downloads(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    person = b.person(p)
    n = int(p.get("files", 40))
    refs = _file_refs(b, person, n, "m365", str(p.get("owners", "all")))
    where = b.where(p)
    for i, ts in enumerate(b.spread(at, p, n, "20m")):
        session = b.session(person, ts, where, p)
        _slack_entry(
            b,
            ts,
            person,
            session,
            "file_downloaded",
            {"type": "file", "file": slack_file(b.ctx, refs[i])},
            where=where,
        )


@action("slack.public_link")
def slack_public_link(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    person = b.person(p)
    where = b.where(p)
    n = int(p.get("files", 1))
    for i in range(n):
        ts = at + i * 30 * SECOND
        session = b.session(person, ts, where, p)
        info = slack_file(b.ctx, (person.index, i))
        _slack_entry(
            b, ts, person, session, "file_public_link_created", {"type": "file", "file": info}, where=where
        )
        b.state.slack_public_files[info["id"]] = {
            **info,
            "user": person.slack_id,
            "public_url_shared": True,
            "created": ts // SECOND,
            "permalink_public": f"https://slack-files.com/{b.tenant.slack_team_id}-{info['id']}-{b.ids.hex('pub', info['id'], length=10)}",
        }
        b.remember("slack_public_file", file_id=info["id"], user=person.email, name=info["name"])


@action("slack.app_installed")
def slack_app_installed(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    person = b.person(p)
    app = dict(p.get("app") or {})
    name = str(app.get("name", "DataSync"))
    scopes = [str(s) for s in app.get("scopes", ["channels:history", "files:read", "users:read.email"])]
    app_id = b.ids.slack_id("A", "slack-app", f"story:{name}")
    where = b.where(p)
    session = b.session(person, at, where, p)
    info = {
        "id": app_id,
        "name": name,
        "is_distributed": False,
        "is_directory_approved": False,
        "scopes": scopes,
    }
    _slack_entry(
        b,
        at,
        person,
        session,
        "app_installed",
        {"type": "app", "app": info},
        {
            "app_owner_id": person.slack_id,
            "is_internal_integration": False,
            "is_token_rotation_enabled_app": False,
            "scopes": scopes,
        },
        where=where,
    )
    b.state.slack_apps[f"story:{name}"] = SlackApp(app_id, name, scopes, person.index, at, approved=False)
    b.remember("slack_app", id=app_id, name=name, user=person.email)


@action("slack.app_scopes_expanded")
def slack_app_scopes_expanded(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    person = b.person(p)
    name = str((p.get("app") or {}).get("name", "DataSync"))
    app = b.state.slack_apps.get(f"story:{name}")
    if app is None:
        raise ScenarioError(f"slack.app_scopes_expanded: install {name!r} with slack.app_installed first")
    new_scopes = [str(s) for s in (p.get("app") or {}).get("scopes", ["admin", "chat:write", "files:write"])]
    old_scopes = list(app.scopes)
    app.scopes = sorted(set(old_scopes) | set(new_scopes))
    where = b.where(p)
    session = b.session(person, at, where, p)
    _slack_entry(
        b,
        at,
        person,
        session,
        "app_scopes_expanded",
        {"type": "app", "app": {"id": app.id, "name": name, "scopes": app.scopes}},
        {"new_scopes": new_scopes, "previous_scopes": old_scopes},
        where=where,
    )


# ==================================================================== conversations


def _party(b: StoryBuilder, ref: Any) -> Person | str:
    """A message sender/recipient: a person actor, an e-mail actor, a person's e-mail, or a literal address."""
    actor = b.actors.get(ref) if isinstance(ref, str) else None
    if isinstance(actor, Person | str):
        return actor
    return b.tenant.person(str(ref)) or str(ref)


def _thread_messages(b: StoryBuilder, p: dict[str, Any], at: int) -> list[tuple[int, Person | str, str]]:
    out: list[tuple[int, Person | str, str]] = [(at, _party(b, p.get("from")), b.format(str(p["text"])))]
    for reply in p.get("replies") or []:
        sender = _party(b, reply.get("from", p.get("from")))
        out.append((at + parse_duration(reply.get("after", "5m")), sender, b.format(str(reply["text"]))))
    return out


@action("slack.message")
def slack_message(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """A message (and optional thread replies) in a Slack channel."""
    channel_name = str(p.get("channel", "security-ops")).lstrip("#")
    channel = next((c for c in b.tenant.channels if c.name == channel_name), None)
    if channel is None:
        raise ScenarioError(
            f"slack.message: no channel #{channel_name}; channels: {', '.join(c.name for c in b.tenant.channels)}"
        )
    items = _thread_messages(b, p, at)
    parent_ts = items[0][0] + 123
    for i, (ts, sender, text) in enumerate(items):
        ts = ts + 123 if i == 0 else ts + 456 + i
        thread = slack_ts_text(parent_ts) if len(items) > 1 else None
        if not isinstance(sender, Person):
            raise ScenarioError(f"slack.message: sender {sender!r} must be a person actor")
        b.message(
            Message(
                "slack:messages",
                slack_ts_text(ts),
                ts,
                channel.id,
                sender,
                (),
                text,
                None,
                thread,
                len(items) - 1 if i == 0 else 0,
            )
        )


def _mail(b: StoryBuilder, stream: str, p: dict[str, Any], at: int) -> None:
    items = _thread_messages(b, p, at)
    to = _party(b, p.get("to", "victim"))
    subject = b.format(str(p.get("subject", "Quick question")))
    thread = None
    for i, (ts, sender, text) in enumerate(items):
        recipient = to if i % 2 == 0 else items[0][1]
        message = make_mail(
            b.tenant,
            stream,
            ts,
            sender,
            (recipient,),
            subject if i == 0 else f"RE: {subject}",
            text,
            key=("story", b.spec.id if b.spec else "", stream, at, i),
            thread=thread,
        )
        thread = message.thread
        b.message(message)


@action("mail.message")
def mail_message(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """An Outlook e-mail (and replies) between people or with an outside address."""
    _mail(b, "m365:mail", p, at)


@action("gmail.message")
def gmail_message(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    _mail(b, "google:gmail", p, at)


@action("teams.message")
def teams_message(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """A Teams 1:1 chat between two people (the first message's sender and `to`)."""
    items = _thread_messages(b, p, at)
    first = items[0][1]
    other = b.person(p, "to")
    if not isinstance(first, Person):
        raise ScenarioError("teams.message: 'from' must be a person actor")
    a, c = sorted((first.entra_id, other.entra_id))
    chat_id = f"19:{a}_{c}@unq.gbl.spaces"
    for _i, (ts, sender, text) in enumerate(items):
        mid = str(ts // 1000)
        b.message(
            Message("m365:teams_messages", mid, ts, chat_id, sender, (first, other), text, None, None, 0)
        )
