"""The shapes of on-call configuration (responders, schedules, policies, routes, channels), validated.

One document holds them all, as YAML/TOML in a repository (schedules as code), as an API body or
as stored specs (``OncallDefinition.spec``). Every collection and string is bounded so a hostile
file cannot make us build something huge.
"""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$")]
Text = Annotated[str, Field(max_length=500)]


class Kind(StrEnum):
    RESPONDER = "responder"
    SCHEDULE = "schedule"
    POLICY = "policy"
    ROUTE = "route"
    CHANNEL = "channel"


class Medium(StrEnum):
    SLACK = "slack"
    EMAIL = "email"
    SMS = "sms"
    VOICE = "voice"
    WEBHOOK = "webhook"
    TEAMS = "teams"


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def number(self) -> int:
        return list(Weekday).index(self)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as Europe/Paris") from None
    return name


class Responder(_Strict):
    name: Name
    email: Annotated[str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    phone: Annotated[str, Field(pattern=r"^\+[1-9][0-9]{6,14}$")] | None = None
    slack_user: Annotated[str, Field(max_length=40, pattern=r"^[UW][A-Z0-9]+$")] | None = None
    timezone: str = "UTC"
    # How this person is paged, all at once, when a step names them (or a schedule they are on);
    # empty: Slack, e-mail and SMS, those of them this person has an address for.
    notify: Annotated[list[Medium], Field(max_length=5)] = []
    # Personal rules by priority (e.g. P1: slack+sms now, voice after 5 min; P3: email): every rule
    # listing the incident's priority applies; no rule for it: `notify` as above.
    rules: Annotated[list[NotifyRule], Field(max_length=20)] = []
    # Quiet hours (in this person's zone): pages for `quiet_for` priorities wait until they end.
    quiet_hours: Restriction | None = None
    quiet_for: Annotated[list[Literal["P1", "P2", "P3", "P4"]], Field(max_length=4)] = ["P3", "P4"]

    _tz = field_validator("timezone")(_zone)

    @model_validator(mode="after")
    def _reachable(self) -> Responder:
        needs = {Medium.SLACK: self.slack_user, Medium.EMAIL: self.email, Medium.SMS: self.phone}
        needs[Medium.VOICE] = self.phone
        for medium in [*self.notify, *(m for rule in self.rules for m in rule.notify)]:
            if medium in (Medium.WEBHOOK, Medium.TEAMS):
                raise ValueError(
                    f"notify: a person cannot be paged by {medium.value}; use a policy step target"
                )
            if not needs[medium]:
                field = {Medium.SLACK: "slack_user", Medium.EMAIL: "email"}.get(medium, "phone")
                raise ValueError(f"notify lists {medium.value} but {field} is not set")
        if not self.media:
            raise ValueError("a responder needs at least one of slack_user, email, phone")
        return self

    def address(self, medium: Medium) -> str | None:
        return {Medium.SLACK: self.slack_user, Medium.EMAIL: self.email}.get(medium, self.phone)

    @property
    def media(self) -> list[Medium]:
        if self.notify:
            return list(self.notify)
        return [m for m in (Medium.SLACK, Medium.EMAIL, Medium.SMS) if self.address(m)]


class Restriction(_Strict):
    """A weekly window (in the layer's time zone) outside which a layer has nobody on call."""

    days: Annotated[list[Weekday], Field(min_length=1, max_length=7)] = list(Weekday)
    start: time = time(0)
    # An end at or before the start runs past midnight; 00:00–00:00 is the whole day.
    end: time = time(0)


class NotifyRule(_Strict):
    priorities: Annotated[list[Literal["P1", "P2", "P3", "P4"]], Field(min_length=1, max_length=4)]
    notify: Annotated[list[Medium], Field(min_length=1, max_length=5)]
    # Sent this long after the step fires (cancelled if the page is acknowledged first).
    after_minutes: Annotated[float, Field(ge=0, le=24 * 60)] = 0


Responder.model_rebuild()


class Layer(_Strict):
    name: Name
    users: Annotated[list[Name], Field(min_length=1, max_length=100)]
    rotation: Literal["daily", "weekly", "custom"] = "weekly"
    # For custom rotations: the shift length in hours.
    shift_hours: Annotated[int, Field(ge=1, le=24 * 28)] | None = None
    # The first handoff, as wall-clock time in the layer's zone (later handoffs keep that time of
    # day across daylight-saving changes).
    start: datetime
    restrictions: Annotated[list[Restriction], Field(max_length=14)] = []
    # The zone of `start` and the restrictions; none: the schedule's. Follow-the-sun is one layer
    # per region, each restricted to its own working hours in its own zone.
    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, name: str | None) -> str | None:
        return None if name is None else _zone(name)

    @model_validator(mode="after")
    def _shift(self) -> Layer:
        if self.rotation == "custom" and self.shift_hours is None:
            raise ValueError("a custom rotation needs shift_hours")
        if self.rotation != "custom" and self.shift_hours is not None:
            raise ValueError("shift_hours is only for rotation: custom")
        if self.start.tzinfo is not None:
            raise ValueError("start is wall-clock time in the schedule's time zone: drop the offset")
        return self

    @property
    def shift_length_hours(self) -> int:
        return {"daily": 24, "weekly": 24 * 7}.get(self.rotation) or int(self.shift_hours or 0)


class Override(_Strict):
    user: Name
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _span(self) -> Override:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("override start and end need a UTC offset (e.g. 2026-01-05T09:00:00Z)")
        if self.end <= self.start:
            raise ValueError("override end must be after its start")
        return self


class Schedule(_Strict):
    name: Name
    timezone: str = "UTC"
    # Later layers take precedence over earlier ones where both have someone on call.
    layers: Annotated[list[Layer], Field(max_length=20)] = []
    overrides: Annotated[list[Override], Field(max_length=5000)] = []

    _tz = field_validator("timezone")(_zone)

    @model_validator(mode="after")
    def _someone(self) -> Schedule:
        if not self.layers and not self.overrides:
            raise ValueError(
                "a schedule needs at least one layer (or overrides, as an imported calendar has)"
            )
        return self


class Target(_Strict):
    # teams_channel: a Microsoft Teams channel's incoming webhook or Workflows URL (`url`).
    type: Literal["responder", "schedule", "slack_channel", "webhook", "teams_channel"]
    name: Name | None = None
    channel: Annotated[str, Field(max_length=80)] | None = None
    url: Annotated[str, Field(max_length=2000, pattern=r"^https?://")] | None = None
    # A secret reference (env:VAR or file:/path) for signing webhook bodies; never the secret itself.
    secret_ref: Annotated[str, Field(max_length=500, pattern=r"^(env|file):")] | None = None

    @model_validator(mode="after")
    def _fields(self) -> Target:
        wanted = {
            "responder": "name",
            "schedule": "name",
            "slack_channel": "channel",
            "webhook": "url",
            "teams_channel": "url",
        }
        if getattr(self, wanted[self.type]) is None:
            raise ValueError(f"a {self.type} target needs {wanted[self.type]}")
        return self


class Step(_Strict):
    targets: Annotated[list[Target], Field(min_length=1, max_length=20)]
    # How long to wait for an acknowledgement before the next step fires.
    delay_minutes: Annotated[float, Field(ge=0, le=24 * 60)] = 5


class Policy(_Strict):
    name: Name
    steps: Annotated[list[Step], Field(min_length=1, max_length=20)]
    # How many more times the whole policy runs when the last step goes unanswered.
    repeat: Annotated[int, Field(ge=0, le=10)] = 0


class Route(_Strict):
    """Incidents that match every condition given go to `policy`; the first matching route wins."""

    name: Name
    policy: Name
    priorities: Annotated[list[Literal["P1", "P2", "P3", "P4"]], Field(max_length=4)] = ["P1", "P2"]
    providers: Annotated[list[Annotated[str, Field(max_length=40)]], Field(max_length=20)] = []
    # Tenants the incident's evidence came from: a connection's name or its tenant id (domain, T…).
    tenants: Annotated[list[Annotated[str, Field(max_length=300)]], Field(max_length=100)] = []
    incident_types: Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=50)] = []
    # Tags of the incident's findings (their ATT&CK tags, e.g. attack.t1078 or attack.credential_access).
    tags: Annotated[list[Annotated[str, Field(max_length=100)]], Field(max_length=50)] = []
    # Business hours in `timezone`; with `during` set, the route holds only inside (or outside) them.
    during: Literal["business_hours", "outside_business_hours"] | None = None
    business_hours: Restriction = Restriction(
        days=[Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI], start=time(9), end=time(18)
    )
    timezone: str = "UTC"

    _tz = field_validator("timezone")(_zone)


class SmtpChannel(_Strict):
    """SMTP; with a password, STARTTLS is required (credentials never cross in clear)."""

    host: Annotated[str, Field(max_length=255)] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 25
    sender: Annotated[str, Field(max_length=320)] = "oncall@tenantguard.local"
    starttls: bool = False
    # The CA bundle (PEM) that signs the server's certificate, for a private CA; default the system's.
    # The certificate and its host name are always verified.
    ca_file: Annotated[str, Field(max_length=1000)] | None = None
    username: Annotated[str, Field(max_length=320)] | None = None
    password_ref: Annotated[str, Field(max_length=500, pattern=r"^(env|file):")] | None = None

    @model_validator(mode="after")
    def _tls_for_passwords(self) -> SmtpChannel:
        if self.password_ref and not self.starttls:
            raise ValueError("smtp: a password is only sent over TLS; set starttls: true")
        return self


class TwilioChannel(_Strict):
    account_sid: Annotated[str, Field(pattern=r"^AC[0-9a-f]{32}$")]
    auth_token_ref: Annotated[str, Field(max_length=500, pattern=r"^(env|file):")]
    from_number: Annotated[str, Field(pattern=r"^\+[1-9][0-9]{6,14}$")]
    # Where the Twilio REST API is (a Twilio-compatible endpoint in tests); default Twilio's own.
    base_url: Annotated[str, Field(max_length=2000, pattern=r"^https?://")] | None = None


class Channels(_Strict):
    """How to reach each medium. Secrets are references, resolved only when a page is sent."""

    name: Literal["default"] = "default"
    slack_connection: Name | None = None
    # The Slack app's signing secret (env:VAR or file:/path): verifies Acknowledge / Escalate clicks.
    slack_signing_secret_ref: Annotated[str, Field(max_length=500, pattern=r"^(env|file):")] | None = None
    smtp: SmtpChannel | None = None
    twilio: TwilioChannel | None = None
    # Where links in pages point (the API's public address).
    public_url: Annotated[str, Field(max_length=2000, pattern=r"^https?://")] = "http://127.0.0.1:8000"


class OncallDocument(_Strict):
    """Everything on-call, as one file or one API body."""

    responders: Annotated[list[Responder], Field(max_length=1000)] = []
    schedules: Annotated[list[Schedule], Field(max_length=200)] = []
    policies: Annotated[list[Policy], Field(max_length=200)] = []
    routes: Annotated[list[Route], Field(max_length=200)] = []
    channels: Channels | None = None

    @model_validator(mode="after")
    def _references(self) -> OncallDocument:
        for kind, items in (
            ("responders", self.responders),
            ("schedules", self.schedules),
            ("policies", self.policies),
            ("routes", self.routes),
        ):
            names = [item.name for item in items]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{kind}: duplicate name(s) {', '.join(dupes)}")
        people = {r.name for r in self.responders}
        schedules = {s.name for s in self.schedules}
        policies = {p.name for p in self.policies}
        for schedule in self.schedules:
            for layer in schedule.layers:
                for user in layer.users:
                    if user not in people:
                        raise ValueError(
                            f"schedule {schedule.name!r} layer {layer.name!r}: unknown responder {user!r}"
                        )
            for override in schedule.overrides:
                if override.user not in people:
                    raise ValueError(
                        f"schedule {schedule.name!r} override: unknown responder {override.user!r}"
                    )
        for policy in self.policies:
            for number, step in enumerate(policy.steps, 1):
                for target in step.targets:
                    if target.type == "responder" and target.name not in people:
                        raise ValueError(
                            f"policy {policy.name!r} step {number}: unknown responder {target.name!r}"
                        )
                    if target.type == "schedule" and target.name not in schedules:
                        raise ValueError(
                            f"policy {policy.name!r} step {number}: unknown schedule {target.name!r}"
                        )
        for route in self.routes:
            if route.policy not in policies:
                raise ValueError(f"route {route.name!r}: unknown policy {route.policy!r}")
        return self
