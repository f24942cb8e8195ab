"""Story actions in Slack: hijacked logins, file theft, public links, rogue apps."""

from __future__ import annotations

from typing import Any

from simulator.activity import Session
from simulator.catalog import DeviceModel
from simulator.errors import ScenarioError
from simulator.render.slack import SLACK_PREFS, SLACK_TENANT_SETTINGS, pref_change, slack_file, slack_user
from simulator.render.slack import audit_extra as slack_extra
from simulator.scenario import StepSpec
from simulator.state import SlackApp
from simulator.stories.engine import StoryBuilder, action, file_refs
from simulator.tenant import Device, Person
from simulator.timestamps import HOUR, SECOND


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
        usual = b.session(person, at - 20 * HOUR, "office", {})  # where the session was used before
        _slack_entry(
            b,
            at + 90 * SECOND,
            person,
            session,
            "anomaly",
            {"type": "user", "user": slack_user(b.ctx, person)},
            {  # the fields of Slack's anomaly event reference; action_timestamp in microseconds
                "reason": ["asn", "ip_address", "user_agent", "session_fingerprint"],
                "action_timestamp": at,
                "location": f"{session.city.name}, {session.city.country}",
                "previous_ip_address": usual.ip,
                "previous_ua": usual.device.model.user_agent,
            },
            where=where,
        )


@action("slack.file_downloads")
def slack_file_downloads(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """Files downloaded one after another; `as_guest: true` makes the last invited guest the actor
    (from the place `from` names, on the user's network)."""
    person = b.person(p)
    n = int(p.get("files", 40))
    refs = file_refs(b, person, n, "m365", str(p.get("owners", "all")))
    where = b.where(p)
    guest = _last_guest(b, step) if p.get("as_guest") else None
    for i, ts in enumerate(b.spread(at, p, n, "20m")):
        session = b.session(person, ts, where, p)
        entity = {"type": "file", "file": slack_file(b.ctx, refs[i])}
        if guest is None:
            _slack_entry(b, ts, person, session, "file_downloaded", entity, where=where)
            continue
        b.emit(
            "slack:audit",
            ts,
            "entry",
            person,
            session,
            slack_extra(
                "file_downloaded",
                guest,
                entity,
                session.ip,
                session.device.model.user_agent,
                str(b.ids.number("slack-guest-session", guest["id"]) % 10**12),
            ),
        )


def _last_guest(b: StoryBuilder, step: StepSpec) -> dict[str, Any]:
    guests = b.created.get("slack_guest") or []
    if not guests:
        raise ScenarioError(f"step {step.id}: as_guest needs an earlier slack.guest_invited")
    return dict(guests[-1]["user"])


@action("slack.guest_invited")
def slack_guest_invited(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """A member invites an outside address as a single- or multi-channel guest and adds the
    guest to channels (private ones included): guest_created (the inviter the actor, the guest the
    entity), then guest_channel_join per channel as Slack records it: the guest joining is the actor,
    the inviter in details.inviter."""
    person = b.person(p)
    where = b.where(p)
    email = str(p.get("email", "guest@outside.example"))
    guest = {
        "id": b.ids.slack_id("U", "slack-guest", email, length=10),
        "name": str(p.get("name", email.split("@")[0])),
        "email": email,
        "team": b.tenant.slack_team_id,
    }
    session = b.session(person, at, where, p)
    kind = "multi_channel_guest" if len(p.get("channels", [])) > 1 else "single_channel_guest"
    _slack_entry(
        b, at, person, session, "guest_created", {"type": "user", "user": guest}, {"type": kind}, where=where
    )
    for i, name in enumerate(p.get("channels", ["general"])):
        channel = next((c for c in b.tenant.channels if c.name == name), None)
        if channel is None:
            raise ScenarioError(f"step {step.id}: no Slack channel #{name}")
        ts = at + (i + 1) * 40 * SECOND
        session = b.session(person, ts, where, p)  # the guest accepts from where it was invited
        inviter = {"id": person.slack_id, "name": person.name, "email": person.email, "team": guest["team"]}
        b.emit(
            "slack:audit",
            ts,
            "entry",
            person,
            session,
            slack_extra(
                "guest_channel_join",
                guest,
                {
                    "type": "channel",
                    "channel": {
                        "id": channel.id,
                        "name": channel.name,
                        "privacy": "private" if channel.private else "public",
                        "is_shared": False,
                        "is_org_shared": False,
                    },
                },
                session.ip,
                session.device.model.user_agent,
                str(b.ids.number("slack-guest-session", guest["id"]) % 10**12),
                {"inviter": inviter},
            ),
        )
        joined = b.state.slack_channel_guests.setdefault(channel.id, [])
        if guest["id"] not in joined:
            joined.append(guest["id"])
    # the guest exists in the workspace from now on: users.info, users.conversations and the
    # admin.conversations.kick/invite remediation read and change these
    b.state.slack_guests[guest["id"]] = {**guest, "invited_by": person.email, "kind": kind}
    b.remember("slack_guest", user=guest, invited_by=person.email)


@action("slack.export")
def slack_export(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """A workspace data export: started, completed some minutes later, then downloaded."""
    person = b.person(p)
    where = b.where(p)
    kind = str(p.get("kind", "manual"))
    workspace = {
        "type": "workspace",
        "workspace": {"id": b.tenant.slack_team_id, "name": b.tenant.scenario.tenant.name},
    }
    steps = [(f"{kind}_export_started", 0), (f"{kind}_export_completed", 18 * 60 * SECOND)]
    if p.get("download", True):
        steps.append((f"{kind}_export_downloaded", 26 * 60 * SECOND))
    for name, delay in steps:
        ts = at + delay
        _slack_entry(b, ts, person, b.session(person, ts, where, p), name, workspace, where=where)


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


@action("slack.setting_changed")
def slack_setting_changed(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """An admin changes a workspace security setting (`setting` one of SLACK_PREFS' keys, to
    `value`): the Audit Logs `pref.*` event with the previous and new values, which is also where the
    settings collector reads the setting in force from."""
    setting = str(p.get("setting", ""))
    if setting not in SLACK_PREFS:
        raise ScenarioError(f"slack.setting_changed: setting must be one of {', '.join(SLACK_PREFS)}")
    person = b.person(p)
    where = b.where(p)
    current = {**SLACK_TENANT_SETTINGS, **b.tenant.scenario.tenant.settings.get("slack", {})}
    name, details = pref_change(setting, p.get("value"), current[setting])
    session = b.session(person, at, where, p)
    entity = {
        "type": "workspace",
        "workspace": {"id": b.tenant.slack_team_id, "name": b.tenant.scenario.tenant.name},
    }
    _slack_entry(b, at, person, session, name, entity, details, where=where)
