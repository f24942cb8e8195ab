"""Benign background activity: who works when, from where, on which device, doing what.

Each (person, local day) gets a :class:`DayPlan` (working sessions with an IP, a place and a
device) drawn from its own seeded RNG, and each event stream draws its own events for that
person-day from another seeded RNG. Nothing depends on what was generated before, so any day
of any stream can be produced on demand, in any order, with the same ids.

Records are compact tuples ``(ts, uid, kind, person, session, extra)``; renderers in
simulator/render/ turn them into vendor JSON only when a page is served.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from simulator.catalog import FIRST_PARTY_APPS, THIRD_PARTY_APPS
from simulator.geo import Block, City, local_midnight_utc
from simulator.tenant import Person, Tenant
from simulator.timestamps import DAY, HOUR, MINUTE, SECOND

Record = tuple[int, int, str, Any, Any, Any]  # ts, uid, kind, person, session, extra

LAPTOP_APPS = tuple(a for a in FIRST_PARTY_APPS if a.name not in ("Outlook Mobile",))
PHONE_APPS = tuple(
    a for a in FIRST_PARTY_APPS if a.name in ("Outlook Mobile", "Microsoft Teams", "Microsoft Office")
)
TRAVEL_CITIES = (
    "madrid",
    "barcelona",
    "paris",
    "lisbon",
    "rome",
    "milan",
    "amsterdam",
    "dublin",
    "toronto",
    "mexico_city",
    "cancun",
    "tokyo",
    "singapore",
    "sydney",
    "dubai",
    "munich",
    "chicago",
    "austin",
)


@dataclass(frozen=True, slots=True)
class Session:
    """A stretch of work from one place and device; every stream reuses its IP and device."""

    person: Person
    number: int
    start: int
    end: int
    ip: str
    city: City
    block: Block
    network: str  # office | home | travel | corporate_vpn | commercial_vpn | mobile
    device: Any  # tenant.Device
    local_day: int


@dataclass(frozen=True, slots=True)
class DayPlan:
    person: Person
    local_day: int
    sessions: tuple[Session, ...]
    trip: City | None

    @property
    def first(self) -> int:
        return self.sessions[0].start if self.sessions else 0

    @property
    def last(self) -> int:
        return max(s.end for s in self.sessions) if self.sessions else 0


def weekday(local_day: int) -> int:
    """Monday = 0 (1970-01-01 was a Thursday)."""
    return (local_day + 3) % 7


def make_uid(person_index: int, local_day: int, n: int) -> int:
    return ((person_index << 16 | (local_day & 0xFFFF)) << 12) | (n & 0xFFF)


def count(rng: random.Random, mean: float) -> int:
    """A small non-negative integer with the given mean (cheap, good enough for activity volumes)."""
    return int(rng.random() * 2 * mean + 0.5)


class Planner:
    """Makes day plans for people; cheap to call repeatedly (results are not cached here)."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.activity = tenant.scenario.activity
        self.spec = tenant.scenario.tenant

    def trip(self, person: Person, local_day: int) -> City | None:
        """A trip this week, if any: travellers go somewhere most weeks, others rarely."""
        week = (local_day + 3) // 7
        number = self.tenant.ids.fast("trip", person.index, week)
        chance = 0.35 if person.traveler else 0.015
        if (number % 10_000) / 10_000 >= chance or person.dormant:
            return None
        first = (number >> 16) % 4
        length = 2 + (number >> 20) % 3
        day_of_week = weekday(local_day)
        if not first <= day_of_week < first + length:
            return None
        options = [c for c in self.spec.offices if c != person.office.id] or [person.office.id]
        pool = TRAVEL_CITIES if (number >> 24) % 5 < 2 else tuple(options)
        return self.tenant.geo.city(pool[(number >> 28) % len(pool)])

    def plan(self, person: Person, local_day: int) -> DayPlan:
        tenant = self.tenant
        day_start = local_day * DAY
        if person.dormant or day_start + DAY <= person.created:
            return DayPlan(person, local_day, (), None)
        rng = tenant.ids.fast_rng("plan", person.index, local_day)
        trip = self.trip(person, local_day)
        city = trip or person.office
        midnight = local_midnight_utc(city.tz, local_day) * SECOND
        workday = weekday(local_day) < 5
        working = (
            rng.random() >= self.activity.workday_absence
            if workday
            else rng.random() < self.activity.weekend_work
        )
        sessions: list[Session] = []
        if working:
            start = midnight + int((person.work_start + rng.gauss(0, 0.4)) * HOUR)
            length = int(max(2.0, rng.gauss(8.3, 1.0) if workday else rng.uniform(0.5, 2.5)) * HOUR)
            network, block, where = self._laptop_network(rng, person, trip, local_day)
            sessions.append(
                self._session(
                    person, 0, start, start + length, block, where, network, person.laptop, rng, local_day
                )
            )
        phone_sessions = count(rng, 1.2 if working else 0.4)
        for k in range(phone_sessions):
            start = midnight + int(rng.uniform(7.0, 21.5) * HOUR)
            country = (trip or person.office).country
            block = tenant.geo.block(country, "isp", person.index + local_day % 3)
            sessions.append(
                self._session(
                    person,
                    1 + k,
                    start,
                    start + int(rng.uniform(4, 40) * MINUTE),
                    block,
                    trip or person.office,
                    "mobile",
                    person.phone,
                    rng,
                    local_day,
                )
            )
        sessions.sort(key=lambda s: s.start)
        return DayPlan(person, local_day, tuple(sessions), trip)

    def _laptop_network(
        self, rng: random.Random, person: Person, trip: City | None, local_day: int
    ) -> tuple[str, Block, City]:
        tenant = self.tenant
        hq = tenant.geo.city(self.spec.hq)
        if person.commercial_vpn and rng.random() < 0.4:
            return "commercial_vpn", tenant.commercial_vpn, tenant.geo.city("amsterdam")
        if trip is not None:
            if rng.random() < (0.7 if person.corporate_vpn else 0.25):
                return "corporate_vpn", tenant.corporate_vpn, hq
            block = tenant.geo.block(
                trip.country, "isp", tenant.ids.fast("hotel", person.index, (local_day + 3) // 7)
            )
            return "travel", block, trip
        if rng.random() < self.spec.remote_share:
            if person.corporate_vpn and rng.random() < 0.5:
                return "corporate_vpn", tenant.corporate_vpn, hq
            return "home", person.home_block, person.office
        return "office", tenant.offices.get(person.office.id, person.home_block), person.office

    def _session(
        self,
        person: Person,
        number: int,
        start: int,
        end: int,
        block: Block,
        city: City,
        network: str,
        device: Any,
        rng: random.Random,
        local_day: int,
    ) -> Session:
        start -= start % 1000
        host = person.home_host if network == "home" else rng.randrange(250)
        return Session(
            person, number, start, end, block.address(host), city, block, network, device, local_day
        )


# ------------------------------------------------------------------ per-stream background events


class Background:
    """Draws each stream's benign events for one person-day from that day's plan."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.activity = tenant.scenario.activity
        self.files_per_user = tenant.scenario.tenant.files_per_user
        self.generators = {
            "m365:signins": self._signins,
            "m365:directory_audits": self._directory_audits,
            "m365:unified_audit": self._unified_audit,
            "m365:risk_detections": self._risk_detections,
            "google:login": self._google_login,
            "google:drive": self._google_drive,
            "google:token": self._google_token,
            "google:saml": self._google_saml,
            "google:admin": self._google_admin,
            "google:user_accounts": self._google_user_accounts,
            "slack:audit": self._slack_audit,
            "okta:logs": self._okta_logs,
        }

    def records(self, stream: str, plan: DayPlan) -> list[Record]:
        generator = self.generators.get(stream)
        if generator is None:
            return []
        person = plan.person
        if not plan.sessions and not self._has_offline_events(person, plan.local_day):
            return []
        rng = self.tenant.ids.fast_rng(stream, person.index, plan.local_day)
        out: list[Record] = []
        generator(rng, plan, _Emitter(out, person, plan.local_day))
        return out

    def _has_offline_events(self, person: Person, local_day: int) -> bool:
        """Events that do not need the person at work: account creation by the helpdesk."""
        return local_day * DAY <= person.created < (local_day + 1) * DAY

    def _colleague(self, rng: random.Random, person: Person) -> Person:
        people = self.tenant.people
        if person.manager is not None and rng.random() < 0.4:
            return people[person.manager]
        return people[rng.randrange(len(people))]

    def _file_ref(self, rng: random.Random, person: Person) -> tuple[int, int]:
        """(owner, k): mostly one's own files, sometimes a colleague's."""
        if rng.random() < 0.7:
            extra = 2 if person.department == "Marketing" else 0
            return person.index, rng.randrange(self.files_per_user + extra)
        other = self._colleague(rng, person)
        return other.index, rng.randrange(self.files_per_user)

    def _helpdesk(self) -> Person:
        return self.tenant.people[2]

    # --- Microsoft 365

    def _signins(self, rng: random.Random, plan: DayPlan, emit: _Emitter) -> None:
        for session in plan.sessions:
            apps = PHONE_APPS if session.network == "mobile" else LAPTOP_APPS
            weights = [a.weight for a in apps]
            n = max(1, count(rng, self.activity.signins_per_session))
            for i in range(n):
                ts = session.start if i == 0 else rng.randint(session.start, session.end)
                app = rng.choices(apps, weights=weights)[0]
                if i == 0 and rng.random() < self.activity.failed_signin_rate:
                    emit(ts - rng.randint(20, 90) * SECOND, "fail", session, (app.app_id, 50126))
                mfa = i == 0 and session.network not in ("office",)
                emit(ts, "ok", session, (app.app_id, 0 if rng.random() > 0.03 else 50140, mfa))
        # non-interactive sign-ins come after every interactive one of the day (own RNG), so adding
        # them changed no interactive id
        ni_rng = self.tenant.ids.fast_rng("m365:signins:ni", plan.person.index, plan.local_day)
        for session in plan.sessions:
            apps = PHONE_APPS if session.network == "mobile" else LAPTOP_APPS
            weights = [a.weight for a in apps]
            first = min(session.start + 5 * MINUTE, session.end)
            for _ in range(count(ni_rng, self.activity.noninteractive_per_session)):
                app = ni_rng.choices(apps, weights=weights)[0]
                emit(ni_rng.randint(first, session.end), "ni", session, (app.app_id, 0))

    def _directory_audits(self, rng: random.Random, plan: DayPlan, emit: _Emitter) -> None:
        person = plan.person
        if self._has_offline_events(person, plan.local_day):
            emit(person.created, "add_user", None, self._helpdesk().index)
        if not plan.sessions:
            return
        session = plan.sessions[0]
        roll = rng.random()
        at = rng.randint(session.start, session.end)
        if roll < 0.006:
            emit(at, "password_change_self", session, None)
        elif roll < 0.009:
            emit(at, "security_info_registered", session, "mobilePhone")
        elif roll < 0.02:
            emit(at, "update_user", None, self._helpdesk().index)
        elif roll < 0.026:
            emit(at, "add_group_member", None, 0)

    def _unified_audit(self, rng: random.Random, plan: DayPlan, emit: _Emitter) -> None:
        for session in plan.sessions:
            emit(session.start + rng.randint(0, 5) * SECOND, "UserLoggedIn", session, None)
            if session.network == "mobile":
                continue
            for _ in range(count(rng, self.activity.file_ops_per_session)):
                op = rng.choices(
                    ("FileAccessed", "FileModified", "FileDownloaded", "FileUploaded", "FilePreviewed"),
                    weights=(55, 25, 8, 6, 6),
                )[0]
                emit(rng.randint(session.start, session.end), op, session, self._file_ref(rng, plan.person))
            for _ in range(count(rng, self.activity.mail_sent_per_day / max(1, len(plan.sessions)))):
                emit(
                    rng.randint(session.start, session.end),
                    "Send",
                    session,
                    self._colleague(rng, plan.person).index,
                )
        if plan.sessions and rng.random() < 0.004:
            session = plan.sessions[0]
            emit(
                rng.randint(session.start, session.end),
                "New-InboxRule",
                session,
                ("Newsletters", "MoveToFolder"),
            )
        # Teams sign-ins (Audit.General) from their own RNG, so the other records stay as they were
        teams = self.tenant.ids.fast_rng("m365:teams", plan.person.index, plan.local_day)
        for session in plan.sessions:
            if session.number == 0 or teams.random() < 0.3:
                emit(session.start + teams.randint(20, 300) * SECOND, "TeamsSessionStarted", session, None)

    def _risk_detections(self, rng: random.Random, plan: DayPlan, emit: _Emitter) -> None:
        for session in plan.sessions:
            if session.network == "commercial_vpn" and rng.random() < 0.5:
                emit(session.start + 30 * SECOND, "anonymizedIPAddress", session, "medium")
            elif session.network == "travel" and session.number == 0 and rng.random() < 0.25:
                emit(session.start + 30 * SECOND, "unfamiliarFeatures", session, "low")

    # --- Google Workspace

    def _google_login(self, rng: random.Random, plan: DayPlan, emit: _Emitter) -> None:
        for session in plan.sessions:
            if session.network == "mobile" and rng.random() < 0.7:
                continue
            if rng.random() < self.activity.failed_signin_rate:
                emit(session.start - rng.randint(15, 80) * SECOND, "login_failure", session, None)
            emit(session.start, "login_success", session, None)
            if session.network != "mobile" and rng.random() < 0.3:
                emit(session.end, "logout", session, None)

    def _google_drive(self, rng: random.Random, plan: DayPlan, emit: _Emitter) -> None:
        for session in plan.sessions:
            if session.network == "mobile":
                continue
            for _ in range(count(rng, self.activity.drive_events_per_session)):
                name = rng.choices(
                    ("view", "edit", "download", "create", "rename"), weights=(50, 30, 8, 4, 3)
                )[0]
                ref = (
                    self._file_ref(rng, plan.person)
                    if name != "create"
                    else (plan.person.index, rng.randrange(self.files_per_user))
                )
                emit(rng.randint(session.start, session.end), name, session, ref)

    def _google_token(self, rng: random.Random, plan: DayPlan, emit: _Emitter) -> None:
        if plan.sessions and rng.random() < 0.01:
            session = plan.sessions[0]
            app = rng.choice(THIRD_PARTY_APPS)
            emit(rng.randint(session.start, session.end), "authorize", session, app.key)

    def _google_saml(self, rng: random.Random, plan: DayPlan, emit: _Emitter) -> None:
        for session in plan.sessions:
            if session.network != "mobile" or rng.random() < 0.3:
                emit(session.start + rng.randint(30, 600) * SECOND, "login_success", session, "Slack")

    def _google_admin(self, rng: random.Random, plan: DayPlan, emit: _Emitter) -> None:
        person = plan.person
        if self._has_offline_events(person, plan.local_day):
            emit(person.created + 2 * MINUTE, "CREATE_USER", None, self._helpdesk().index)
        if not plan.sessions:
            return
        roll = rng.random()
        at = rng.randint(plan.sessions[0].start, plan.sessions[0].end)
        if roll < 0.008:
            emit(at, "CHANGE_PASSWORD", None, self._helpdesk().index)
        elif roll < 0.016:
            emit(at, "ADD_GROUP_MEMBER", None, 0)

    def _google_user_accounts(self, rng: random.Random, plan: DayPlan, emit: _Emitter) -> None:
        person = plan.person
        if not plan.sessions:
            return
        session = plan.sessions[0]
        if self._has_offline_events(person, plan.local_day) and person.two_sv:
            emit(session.start + 10 * MINUTE, "2sv_enroll", session, None)
        elif rng.random() < 0.006:
            emit(rng.randint(session.start, session.end), "password_edit", session, None)
        elif rng.random() < 0.002:
            emit(rng.randint(session.start, session.end), "recovery_phone_edit", session, None)

    # --- Slack

    def _slack_audit(self, rng: random.Random, plan: DayPlan, emit: _Emitter) -> None:
        for session in plan.sessions:
            if session.number == 0 or rng.random() < 0.3:
                if rng.random() < self.activity.failed_signin_rate / 2:
                    emit(session.start - 40 * SECOND, "user_login_failed", session, None)
                emit(session.start + rng.randint(60, 900) * SECOND, "user_login", session, None)
            if session.network == "mobile":
                continue
            for _ in range(count(rng, 0.6)):
                emit(
                    rng.randint(session.start, session.end),
                    "file_downloaded",
                    session,
                    self._file_ref(rng, plan.person),
                )
            if rng.random() < 0.15:
                emit(
                    rng.randint(session.start, session.end),
                    "file_shared",
                    session,
                    self._file_ref(rng, plan.person),
                )

    # --- Okta

    def _okta_logs(self, rng: random.Random, plan: DayPlan, emit: _Emitter) -> None:
        """Okta is the front door: a sign-in (with its MFA) per session, SSO into apps during it."""
        for session in plan.sessions:
            if session.number > 0 and rng.random() < 0.6:
                continue  # the Okta session carries over
            start = session.start - rng.randint(30, 240) * SECOND
            if rng.random() < self.activity.failed_signin_rate:
                emit(start - 50 * SECOND, "user.session.start:failure", session, None)
            emit(start, "user.session.start", session, None)
            emit(start + rng.randint(5, 40) * SECOND, "user.authentication.auth_via_mfa", session, None)
            for app in range(count(rng, 1.2)):
                emit(rng.randint(session.start, session.end), "user.authentication.sso", session, app)


class _Emitter:
    """Appends records with uids numbered in emission order for one (stream, person, day)."""

    __slots__ = ("out", "person", "local_day", "n")

    def __init__(self, out: list[Record], person: Person, local_day: int) -> None:
        self.out = out
        self.person = person
        self.local_day = local_day
        self.n = 0

    def __call__(self, ts: int, kind: str, session: Session | None, extra: Any) -> None:
        self.out.append(
            (
                ts - ts % 1000,
                make_uid(self.person.index, self.local_day, self.n),
                kind,
                self.person,
                session,
                extra,
            )
        )
        self.n += 1
