"""Scenario files: YAML data describing a tenant, its benign background and the attack stories.

A scenario is loaded once into frozen dataclasses (:class:`Scenario`). Generation options given on
the command line (users, days, seed, start) override the scenario's defaults. See README.md for
the file format and simulator/scenarios/ for the shipped scenarios.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from simulator.data_files import load_yaml
from simulator.errors import ScenarioError
from simulator.timestamps import DAY, SECOND, floor_day, parse_duration, parse_time

SCENARIO_DIR = Path(__file__).parent / "scenarios"

DEFAULT_LAG = {
    "google:login": "1m",
    "google:admin": "30s",
    "google:drive": "2m",
    "google:token": "1m",
    "google:saml": "1m",
    "google:user_accounts": "1m",
    "google:takeout": "5m",
    "google:gmail_log": "10m",
    "google:mobile": "5m",
}


@dataclass(frozen=True)
class TenantSpec:
    """Shape of the organisation (shares are fractions of users)."""

    name: str = "Northwind Traders"
    domain: str = "northwind.example"
    hq: str = "new_york"
    offices: dict[str, float] = field(
        default_factory=lambda: {
            "new_york": 0.4,
            "san_francisco": 0.15,
            "london": 0.25,
            "berlin": 0.1,
            "bengaluru": 0.1,
        }
    )
    departments: dict[str, float] = field(
        default_factory=lambda: {
            "Engineering": 0.3,
            "Sales": 0.15,
            "Marketing": 0.1,
            "Finance": 0.1,
            "HR": 0.05,
            "IT": 0.08,
            "Operations": 0.08,
            "Legal": 0.04,
            "Support": 0.1,
        }
    )
    mfa_registered: float = 0.92
    two_sv_enrolled: float = 0.9
    remote_share: float = 0.45
    vpn_users: float = 0.3
    commercial_vpn_users: float = 0.03
    travelers: float = 0.15
    dormant: float = 0.03
    new_hires: float = 0.02
    files_per_user: int = 3
    external_domains: tuple[str, ...] = ("fabrikam.example", "contoso-partners.example", "adatum.example")
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ActivitySpec:
    """Average volumes of benign activity (per working session unless named otherwise)."""

    signins_per_session: float = 2.5
    # token refreshes by Outlook, Teams, OneDrive sync ... (Entra's non-interactive sign-in log is
    # several times the interactive one in real tenants)
    noninteractive_per_session: float = 8.0
    failed_signin_rate: float = 0.03
    file_ops_per_session: float = 5.0
    mail_sent_per_day: float = 1.5
    drive_events_per_session: float = 4.0
    slack_messages_per_day: float = 2.0
    mails_per_day: float = 0.6
    weekend_work: float = 0.12
    workday_absence: float = 0.06


@dataclass(frozen=True)
class StepSpec:
    id: str
    title: str
    after: int  # microseconds after the story starts
    action: str
    detectable: bool
    params: dict[str, Any]


@dataclass(frozen=True)
class StorySpec:
    id: str
    title: str
    kind: str
    days_before_end: float
    utc_time: str
    actors: dict[str, dict[str, Any]]
    steps: tuple[StepSpec, ...]
    conversations: tuple[StepSpec, ...]
    remediation: tuple[dict[str, Any], ...]
    incident: dict[str, Any]
    mitre: tuple[str, ...]
    decoy: bool


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    description: str
    users: int
    days: int
    seed: int
    tenant: TenantSpec
    activity: ActivitySpec
    lag: dict[str, int]
    faults: str
    paging: dict[str, int]
    stories: tuple[StorySpec, ...]
    decoys: tuple[StorySpec, ...]
    source: str


@dataclass(frozen=True)
class Options:
    """What to generate: the scenario plus the size and time range chosen at start."""

    users: int
    days: int
    seed: int
    start: int  # microseconds, inclusive
    end: int  # microseconds, exclusive ("now" at server start by default)


def available_scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a shipped scenario by id, or any scenario file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SCENARIO_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        raise ScenarioError(
            f"no scenario {str(name_or_path)!r}: give a file path or one of {', '.join(available_scenarios())}"
        )
    try:
        raw = load_yaml(path.read_text())
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping with id, title, stories ...")
    return parse_scenario(raw, source=str(path))


def parse_scenario(raw: dict[str, Any], source: str = "<memory>") -> Scenario:
    where = f"{source}"
    _check_keys(
        raw,
        {
            "id",
            "title",
            "description",
            "defaults",
            "tenant",
            "activity",
            "lag",
            "faults",
            "paging",
            "stories",
            "decoys",
        },
        where,
    )
    defaults = raw.get("defaults") or {}
    _check_keys(defaults, {"users", "days", "seed"}, f"{where}: defaults")
    lag = {**DEFAULT_LAG, **(raw.get("lag") or {})}
    return Scenario(
        id=str(raw.get("id") or Path(source).stem),
        title=str(raw.get("title", "")),
        description=str(raw.get("description", "")).strip(),
        users=int(defaults.get("users", 40)),
        days=int(defaults.get("days", 7)),
        seed=int(defaults.get("seed", 1)),
        tenant=_dataclass_from(TenantSpec, raw.get("tenant") or {}, f"{where}: tenant"),
        activity=_dataclass_from(ActivitySpec, raw.get("activity") or {}, f"{where}: activity"),
        lag={key: _duration(value, f"{where}: lag.{key}") for key, value in lag.items()},
        faults=str(raw.get("faults") or ""),
        paging={str(k): int(v) for k, v in (raw.get("paging") or {}).items()},
        stories=tuple(
            _story(s, f"{where}: stories[{i}]", decoy=False) for i, s in enumerate(raw.get("stories") or [])
        ),
        decoys=tuple(
            _story(s, f"{where}: decoys[{i}]", decoy=True) for i, s in enumerate(raw.get("decoys") or [])
        ),
        source=source,
    )


def make_options(
    scenario: Scenario,
    users: int | None = None,
    days: int | None = None,
    seed: int | None = None,
    start: str | int | None = None,
    now: int | None = None,
) -> Options:
    """Resolve sizes and the time range: it ends at `now` (server start) unless `start` is given."""
    users = scenario.users if users is None else int(users)
    days = scenario.days if days is None else int(days)
    seed = scenario.seed if seed is None else int(seed)
    if users < 8:
        raise ScenarioError(
            f"--users {users} is too small: a tenant needs at least 8 people (admins, victims ...)"
        )
    if not 1 <= days <= 400:
        raise ScenarioError(f"--days {days} is out of range: use 1 to 400")
    if start is None:
        end = int(time.time() * SECOND) if now is None else now
        end -= end % SECOND
        begin = end - days * DAY
    else:
        begin = start if isinstance(start, int) else _start(start)
        end = begin + days * DAY
    return Options(users=users, days=days, seed=seed, start=begin, end=end)


def _start(text: str) -> int:
    try:
        value = parse_time(text)
    except ValueError:
        raise ScenarioError(
            f"--start {text!r} is not a date/time: use ISO 8601 such as 2026-03-02T00:00:00Z"
        ) from None
    return value if "T" in text else floor_day(value)


def _story(raw: dict[str, Any], where: str, decoy: bool) -> StorySpec:
    _check_keys(
        raw,
        {
            "id",
            "title",
            "kind",
            "when",
            "actors",
            "steps",
            "conversations",
            "remediation",
            "incident",
            "mitre",
        },
        where,
    )
    if "id" not in raw or "steps" not in raw:
        raise ScenarioError(f"{where}: a story needs an id and steps")
    when = raw.get("when") or {}
    _check_keys(when, {"days_before_end", "utc"}, f"{where}.when")
    steps = tuple(
        _step(s, f"{where}.steps[{i}]", default_detectable=not decoy) for i, s in enumerate(raw["steps"])
    )
    conversations = tuple(
        _step(s, f"{where}.conversations[{i}]", default_detectable=False)
        for i, s in enumerate(raw.get("conversations") or [])
    )
    return StorySpec(
        id=str(raw["id"]),
        title=str(raw.get("title", raw["id"])),
        kind=str(raw.get("kind", raw["id"])),
        days_before_end=float(when.get("days_before_end", 2)),
        utc_time=str(when.get("utc", "10:00")),
        actors={str(k): dict(v or {}) for k, v in (raw.get("actors") or {}).items()},
        steps=steps,
        conversations=conversations,
        remediation=tuple(dict(r) for r in raw.get("remediation") or []),
        incident=dict(raw.get("incident") or {}),
        mitre=tuple(str(m) for m in raw.get("mitre") or []),
        decoy=decoy,
    )


def _step(raw: dict[str, Any], where: str, default_detectable: bool) -> StepSpec:
    _check_keys(raw, {"id", "title", "after", "action", "detectable", "with"}, where)
    if "action" not in raw:
        raise ScenarioError(f"{where}: a step needs an action (see README.md, 'Story actions')")
    return StepSpec(
        id=str(raw.get("id", raw["action"])),
        title=str(raw.get("title", raw["action"])),
        after=_duration(raw.get("after", 0), f"{where}.after"),
        action=str(raw["action"]),
        detectable=bool(raw.get("detectable", default_detectable)),
        params=dict(raw.get("with") or {}),
    )


def _duration(value: Any, where: str) -> int:
    try:
        return parse_duration(value)
    except (ValueError, TypeError):
        raise ScenarioError(f"{where}: {value!r} is not a duration (use 90s, 15m, 2h, 1d)") from None


def _dataclass_from(cls: type, raw: dict[str, Any], where: str) -> Any:
    names = {f.name for f in fields(cls)}
    _check_keys(raw, names, where)
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    return cls(**values)


def _check_keys(raw: Any, allowed: set[str], where: str) -> None:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: expected a mapping, got {type(raw).__name__}")
    unknown = set(raw) - allowed
    if unknown:
        raise ScenarioError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}"
        )
