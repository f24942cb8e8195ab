"""The story engine: actors, timing, emitted records, and the ground truth of each story.

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
    ATTACKER_AGENTS,
)
from simulator.conversations import Message
from simulator.errors import ScenarioError
from simulator.geo import Block, City
from simulator.render import event_ids
from simulator.render.context import RenderContext
from simulator.render.okta import okta_user_id
from simulator.scenario import StepSpec, StorySpec
from simulator.state import State
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
        # people and attackers do not act on the minute: a stable offset per step (whole step moves)
        at = start + step.after + self.ids.number("step-jitter", spec.id, step.id) % (47 * SECOND)
        try:
            function(self, step, dict(step.params), at)
        except KeyError as exc:
            raise ScenarioError(
                f"story {spec.id!r} step {step.id!r} ({step.action}): missing or unknown {exc}"
            ) from None
        events: list[dict[str, Any]] = []
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
        if pick == "dormant":  # an account nobody has used for over four months (no background activity)
            start = self.tenant.options.start
            candidates = [
                p
                for p in people[8:]
                if p.dormant
                and p.index not in self._used
                and start - self.tenant.dormant_since(p) > 120 * DAY
            ] or candidates
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
        ts += (self._uid * 7919) % 997 * 1000  # sub-second jitter keeps the order of events a second apart
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
        values: dict[str, Any] = {}
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
                    "okta": okta_user_id(self.tenant.ids, actor),
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


# ------------------------------------------------------------------ helpers shared by actions


def file_refs(
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


def choose_files(b: StoryBuilder, files: tuple[Any, ...], p: dict[str, Any]) -> list[tuple[int, Any]]:
    titles = p.get("titles")
    if titles:
        chosen = [(k, f) for k, f in enumerate(files) if f.title in titles]
        if chosen:
            return chosen
    n = min(len(files), int(p.get("files", 1)))
    return list(enumerate(files))[:n]


def add_permission(b: StoryBuilder, provider: str, file_id: str, permission: Permission) -> None:
    b.state.added_permissions.setdefault(file_id, []).append(permission)
