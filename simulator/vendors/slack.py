"""Slack: Web API methods (POST or GET, form or JSON bodies, cursor paging) and the Audit Logs API."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from simulator.conversations import Message, slack_ts_text
from simulator.http import Request, Response
from simulator.render.slack import (
    SLACK_PREF_DEFAULTS,
    SLACK_PREFS,
    audit_extra,
    pref_change,
    render_entry,
    slack_user,
    workspace_entity,
)
from simulator.server import ApiError
from simulator.store import Window
from simulator.tenant import Channel, Person
from simulator.timestamps import DAY, MINUTE, SECOND, parse_slack_ts
from simulator.vendors.paging import decode_cursor, encode_cursor, event_page

if TYPE_CHECKING:
    from simulator.server import Simulator

AUDIT_ACTIONS = {
    "user": [
        "user_login",
        "user_login_failed",
        "user_logout",
        "user_session_invalidated",
        "user_session_reset_by_admin",
        "user_created",
        "user_deactivated",
        "user_reactivated",
        "role_change_to_admin",
        "role_change_to_owner",
        "anomaly",
    ],
    "file": [
        "file_downloaded",
        "file_shared",
        "file_public_link_created",
        "file_public_link_revoked",
        "file_deleted",
    ],
    "app": ["app_installed", "app_uninstalled", "app_scopes_expanded", "app_approved", "app_restricted"],
    "workspace_or_org": [
        *(action for action, _ in SLACK_PREFS.values()),
        "bulk_session_reset_by_admin",
    ],
}


def register(sim: Simulator) -> None:
    api = SlackApi(sim)
    add = sim.router.add
    methods = {
        "auth.test": (api.auth_test, "bot|admin|user|audit"),
        "users.list": (api.users_list, "bot|admin|user"),
        "users.info": (api.users_info, "bot|admin|user"),
        "users.lookupByEmail": (api.users_lookup_by_email, "bot|admin|user"),
        "users.conversations": (api.users_conversations, "bot|admin|user"),
        "conversations.members": (api.conversations_members, "bot|admin|user"),
        "conversations.list": (api.conversations_list, "bot|admin|user"),
        "conversations.info": (api.conversations_info, "bot|admin|user"),
        "conversations.history": (api.history, "bot|admin|user"),
        "conversations.replies": (api.replies, "bot|admin|user"),
        "chat.postMessage": (api.post_message, "bot|admin|user"),
        "chat.update": (api.update_message, "bot|admin|user"),
        "conversations.create": (api.conversations_create, "bot|admin|user"),
        "conversations.invite": (api.conversations_invite, "bot|admin|user"),
        "conversations.setTopic": (api.conversations_set_topic, "bot|admin|user"),
        "pins.add": (api.pins_add, "bot|admin|user"),
        "pins.list": (api.pins_list, "bot|admin|user"),
        "files.info": (api.files_info, "bot|admin|user"),
        "files.revokePublicURL": (api.revoke_public_url, "admin|user"),
        "files.sharedPublicURL": (api.share_public_url, "admin|user"),
        "team.info": (api.team_info, "bot|admin|user"),
        "team.preferences.list": (api.team_preferences, "bot|admin|user"),
        "admin.teams.settings.info": (api.team_settings, "admin"),
        "admin.users.session.reset": (api.session_reset, "admin"),
        "admin.users.remove": (api.users_remove, "admin"),
        "admin.conversations.kick": (api.admin_conversations_kick, "admin"),
        "admin.conversations.invite": (api.admin_conversations_invite, "admin"),
        "admin.apps.approved.list": (api.apps_approved, "admin"),
        "admin.apps.restricted.list": (api.apps_restricted, "admin"),
        "admin.apps.uninstall": (api.apps_uninstall, "admin"),
    }
    for name, (handler, auth) in methods.items():
        add("GET POST", "/api/" + name.replace(".", r"\."), handler, "slack", name, auth)
    add("POST", r"/_sim/slack/messages", api.person_posts, "sim", "slack_person_posts")
    add("GET", r"/audit/v1/logs", api.audit_logs, "slack", "audit", "audit")
    add("GET", r"/audit/v1/schemas", api.audit_schemas, "slack", "audit_schemas")
    add("GET", r"/audit/v1/actions", api.audit_actions, "slack", "audit_actions")


def ok(**values: Any) -> Response:
    return Response.json({"ok": True, **values})


def fail(error: str, **values: Any) -> Response:
    return Response.json({"ok": False, "error": error, **values})


class SlackApi:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.world = sim.world
        self.tenant = sim.tenant
        self.state = sim.state
        self._pref_history: list[dict[str, Any]] | None = None

    # ---------------------------------------------------------------- helpers

    def person(self, request: Request, name: str = "user") -> Person:
        key = request.arg(name) or request.arg("user_id") or ""
        person = self.tenant.person(key)
        if person is None:
            raise ApiError(200, "user_not_found", f"no user {key}")
        return person

    def limit(self, request: Request, default: int, maximum: int = 1000) -> int:
        raw = request.arg("limit")
        try:
            value = int(raw) if raw not in (None, "", "0") else default
        except ValueError:
            raise ApiError(200, "invalid_limit", f"limit {raw!r} is not a number") from None
        return max(1, min(value, maximum))

    def cursor(self, request: Request) -> dict[str, Any] | None:
        raw = request.arg("cursor")
        if not raw:
            return None
        data = decode_cursor(raw)
        if data is None:
            raise ApiError(200, "invalid_cursor", "cursor is not valid")
        return data

    def offset_page(self, request: Request, key: str, items: list[Any], default: int) -> Response:
        size = self.limit(request, default)
        cursor = self.cursor(request)
        offset = int(cursor["o"]) if cursor else 0
        more = offset + size < len(items)
        return ok(
            **{key: items[offset : offset + size]},
            response_metadata={"next_cursor": encode_cursor({"o": offset + size}) if more else ""},
        )

    def change(
        self, request: Request, action: str, target: dict[str, Any], person: Person | None = None
    ) -> None:
        self.state.bump(person)
        self.state.record_change(
            "slack",
            action,
            target,
            {"method": request.method, "path": request.path, "body": request.form or None},
            200,
        )

    def audit_event(
        self,
        action: str,
        subject: Person | None,
        entity: dict[str, Any],
        details: dict[str, Any] | None = None,
    ) -> None:
        admin = self.tenant.admins("slack")[0]
        extra = audit_extra(action, admin, entity, None, "tenantguard/1.0", None, details)
        self.world.store.add_dynamic("slack:audit", self.sim.now(), "entry", subject, extra)

    # ---------------------------------------------------------------- identity and workspace

    def auth_test(self, request: Request) -> Response:
        audience = request.params.get("_token_audience")
        tenant = self.tenant
        admin = tenant.admins("slack")[0]
        values: dict[str, Any] = {
            "url": f"https://{tenant.domain.split('.')[0]}.slack.com/",
            "team": tenant.scenario.tenant.name,
            "team_id": tenant.slack_team_id,
            "enterprise_id": tenant.slack_enterprise_id,
            "is_enterprise_install": audience == "audit",
        }
        if audience == "bot":
            values.update(
                {
                    "user": "tenantguard",
                    "user_id": tenant.ids.slack_id("U", "bot-user"),
                    "bot_id": tenant.ids.slack_id("B", "bot"),
                }
            )
        else:
            values.update({"user": admin.local_part, "user_id": admin.slack_id})
        return ok(**values)

    def user_object(self, person: Person) -> dict[str, Any]:
        state = self.state.user(person.index)
        tz = person.office.tz
        return {
            "id": person.slack_id,
            "team_id": self.tenant.slack_team_id,
            "name": person.local_part,
            "deleted": state.slack_deleted,
            "color": "9f69e7",
            "real_name": person.name,
            "tz": tz,
            "tz_label": tz,
            "tz_offset": 0,
            "profile": {
                "title": person.title,
                "phone": "",
                "real_name": person.name,
                "display_name": person.given,
                "email": person.email,
                "team": self.tenant.slack_team_id,
                "first_name": person.given,
                "last_name": person.family,
            },
            "is_admin": person.slack_role in ("admin", "owner", "primary_owner"),
            "is_owner": person.slack_role in ("owner", "primary_owner"),
            "is_primary_owner": person.slack_role == "primary_owner",
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": False,
            "is_app_user": False,
            "updated": (person.created // SECOND),
            "is_email_confirmed": True,
            "has_2fa": person.two_sv,
            "who_can_share_contact_card": "EVERYONE",
        }

    def users_list(self, request: Request) -> Response:
        now = self.sim.now()
        members = [
            self.user_object(p)
            for p in self.tenant.people
            if p.created <= now and p.index not in self.state.removed_users
        ]
        return self.offset_page(request, "members", members, 200)

    def users_info(self, request: Request) -> Response:
        guest = self.guest(request.arg("user") or "")
        if guest is not None:
            return ok(user=guest)
        return ok(user=self.user_object(self.person(request)))

    def users_lookup_by_email(self, request: Request) -> Response:
        email = (request.arg("email") or "").lower()
        guest = self.guest(email)
        if guest is not None:
            return ok(user=guest)
        person = self.tenant.person(email) if email else None
        if person is None or "@" not in email:
            return fail("users_not_found")
        return ok(user=self.user_object(person))

    def guest(self, key: str) -> dict[str, Any] | None:
        """A guest a story invited, as users.info shows one (is_restricted; ultra for a single-channel
        guest), by id or e-mail; None for members. Guests are not in users.list here (the
        collectors' member inventory stays what it was)."""
        with self.state.lock:
            found = self.state.slack_guests.get(key) or next(
                (g for g in self.state.slack_guests.values() if g["email"].lower() == key.lower()), None
            )
        if found is None:
            return None
        return {
            "id": found["id"],
            "team_id": self.tenant.slack_team_id,
            "name": found["name"],
            "deleted": bool(found.get("deleted")),
            "real_name": found["name"],
            "profile": {"real_name": found["name"], "display_name": found["name"], "email": found["email"]},
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": True,
            "is_ultra_restricted": found.get("kind") == "single_channel_guest",
            "is_bot": False,
            "is_app_user": False,
        }

    def member_ids(self, channel: Channel) -> list[str]:
        """Who is in a channel: its members' Slack ids, then the guests a story added."""
        with self.state.lock:
            guests = list(self.state.slack_channel_guests.get(channel.id, []))
        people = self.tenant.people
        return [people[i].slack_id for i in channel.members] + guests

    def conversations_members(self, request: Request) -> Response:
        """conversations.members: the user ids in a channel, cursor-paged."""
        return self.offset_page(request, "members", self.member_ids(self._channel(request)), 100)

    def users_conversations(self, request: Request) -> Response:
        """users.conversations: the channels a user (member or guest) is in, of the asked types."""
        key = request.arg("user") or ""
        guest = self.guest(key)
        user_id = guest["id"] if guest else self.person(request).slack_id
        types = (request.arg("types") or "public_channel").split(",")
        channels = [
            self.channel_object(c)
            for c in list(self.tenant.channels)
            if (("private_channel" in types and c.private) or ("public_channel" in types and not c.private))
            and user_id in self.member_ids(c)
        ]
        return self.offset_page(request, "channels", channels, 100)

    def channel_object(self, channel: Any) -> dict[str, Any]:
        return {
            "id": channel.id,
            "name": channel.name,
            "is_channel": not channel.private,
            "is_group": channel.private,
            "is_im": False,
            "is_mpim": False,
            "is_private": channel.private,
            "created": channel.created // SECOND,
            "is_archived": False,
            "is_general": channel.name == "general",
            "unlinked": 0,
            "name_normalized": channel.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_member": True,
            "context_team_id": self.tenant.slack_team_id,
            "topic": {"value": channel.topic, "creator": "", "last_set": 0},
            "purpose": {"value": channel.topic, "creator": "", "last_set": 0},
            "num_members": len(channel.members),
        }

    def conversations_list(self, request: Request) -> Response:
        types = (request.arg("types") or "public_channel").split(",")
        channels = [
            self.channel_object(c)
            for c in self.tenant.channels
            if ("private_channel" in types and c.private) or ("public_channel" in types and not c.private)
        ]
        return self.offset_page(request, "channels", channels, 100)

    def _channel(self, request: Request) -> Any:
        channel = self.world.conversations.slack_channel(request.arg("channel") or "")
        if channel is None:
            raise ApiError(200, "channel_not_found", "channel not found")
        return channel

    def conversations_info(self, request: Request) -> Response:
        return ok(channel=self.channel_object(self._channel(request)))

    def message_object(self, message: Message, parent: bool = False) -> dict[str, Any]:
        sender = message.sender
        body: dict[str, Any] = {
            "type": "message",
            "user": sender.slack_id if isinstance(sender, Person) else "USLACKBOT",
            "text": message.text,
            "ts": slack_ts_text(message.ts),
            "team": self.tenant.slack_team_id,
        }
        if message.thread:
            body["thread_ts"] = message.thread
            if message.thread != body["ts"]:
                conversations = self.world.conversations
                channel_messages = conversations.channel_messages(
                    "slack:messages",
                    message.container,
                    parse_slack_ts(message.thread),
                    parse_slack_ts(message.thread) + 1,
                )
                first = channel_messages[0] if channel_messages else None
                if first is not None and isinstance(first.sender, Person):
                    body["parent_user_id"] = first.sender.slack_id
        if message.reply_count:
            body["reply_count"] = message.reply_count
            body["reply_users_count"] = 1
        return body

    def _range(self, request: Request) -> tuple[int, int]:
        inclusive = request.arg("inclusive") in ("1", "true", "True")
        oldest = request.arg("oldest")
        latest = request.arg("latest")
        low = parse_slack_ts(oldest) + (0 if inclusive else 1) if oldest else 0
        high = parse_slack_ts(latest) + (1 if inclusive else 0) if latest else 1 << 62
        return low, high

    def history(self, request: Request) -> Response:
        channel = self._channel(request)
        low, high = self._range(request)
        cursor = self.cursor(request)
        if cursor:
            high = min(high, int(cursor["before"]))
        messages = [
            m
            for m in self.world.conversations.channel_messages("slack:messages", channel.id, low, high)
            if m.thread is None or m.thread == slack_ts_text(m.ts)
        ]
        messages.reverse()
        size = self.limit(request, self.sim.paging.slack_default, 999)
        chunk = messages[:size]
        more = len(messages) > size
        return ok(
            messages=[self.message_object(m) for m in chunk],
            has_more=more,
            pin_count=0,
            channel_actions_ts=None,
            channel_actions_count=0,
            response_metadata={"next_cursor": encode_cursor({"before": chunk[-1].ts}) if more else ""},
        )

    def replies(self, request: Request) -> Response:
        channel = self._channel(request)
        ts = request.arg("ts")
        if not ts:
            raise ApiError(200, "thread_not_found", "ts is required")
        low, high = self._range(request)
        messages = [
            m
            for m in self.world.conversations.channel_messages("slack:messages", channel.id, 0, 1 << 62)
            if (m.thread == ts or slack_ts_text(m.ts) == ts)
            and (slack_ts_text(m.ts) == ts or low <= m.ts < high)
        ]
        if not messages:
            raise ApiError(200, "thread_not_found", f"no thread {ts}")
        cursor = self.cursor(request)
        offset = int(cursor["o"]) if cursor else 0
        size = self.limit(request, self.sim.paging.slack_default, 1000)
        chunk = messages[offset : offset + size]
        more = offset + size < len(messages)
        return ok(
            messages=[self.message_object(m) for m in chunk],
            has_more=more,
            response_metadata={"next_cursor": encode_cursor({"o": offset + size}) if more else ""},
        )

    def post_message(self, request: Request) -> Response:
        text = request.arg("text") or ""
        if not text and not request.form.get("blocks"):
            return fail("no_text")
        recipient = self.tenant.person(request.arg("channel") or "")
        if recipient is not None and recipient.slack_id == request.arg("channel"):
            return self.direct_message(request, recipient, text)
        channel = self._channel(request)
        now = self.sim.now()
        conversations = self.world.conversations
        with self.state.lock:
            ts = max([now] + [m.ts + 1 for m in conversations.added])
            thread = request.arg("thread_ts")
            admin = self.tenant.admins("slack")[0]
            message = Message(
                "slack:messages", slack_ts_text(ts), ts, channel.id, admin, (), text, None, thread, 0
            )
            conversations.added.append(message)
        body = self.message_object(message)
        body["bot_id"] = self.tenant.ids.slack_id("B", "bot")
        self.change(request, "post_message", {"channel": channel.id, "ts": body["ts"], "text": text})
        return ok(channel=channel.id, ts=body["ts"], message=body)

    def direct_message(self, request: Request, recipient: Person, text: str) -> Response:
        """A bot posting to a user id writes to its direct-message channel with that user (``D...``)."""
        dm = self.tenant.ids.slack_id("D", "dm", recipient.slack_id)
        with self.state.lock:
            ts = slack_ts_text(self.sim.now())
        self.change(
            request, "post_message", {"channel": dm, "user": recipient.slack_id, "ts": ts, "text": text}
        )
        return ok(channel=dm, ts=ts, message={"type": "message", "text": text, "ts": ts})

    # ---------------------------------------------------------------- channels an app creates

    def conversations_create(self, request: Request) -> Response:
        """conversations.create: a new channel (names as Slack allows them: lower case, 80 chars)."""
        name = (request.arg("name") or "").strip()
        if not name or len(name) > 80 or not all(c.islower() or c.isdigit() or c in "-_" for c in name):
            return fail("invalid_name_specials" if name else "invalid_name_required")
        private = request.arg("is_private") in ("1", "true", "True")
        with self.state.lock:
            if any(c.name == name for c in self.tenant.channels):
                return fail("name_taken")
            channel = Channel(
                self.tenant.ids.slack_id("C", "created", name), name, private, (), "", self.sim.now()
            )
            self.tenant.channels.append(channel)
            self.world.conversations.created.add(channel.id)
        self.change(request, "create_channel", {"channel": channel.id, "name": name, "private": private})
        return ok(channel=self.channel_object(channel))

    def _replace_channel(self, old: Channel, new: Channel) -> None:
        channels = self.tenant.channels
        channels[channels.index(old)] = new

    def conversations_invite(self, request: Request) -> Response:
        channel = self._channel(request)
        users = [u for u in (request.arg("users") or "").split(",") if u]
        people = [self.tenant.person(u) for u in users]
        if not users or any(p is None for p in people):
            return fail("user_not_found")
        with self.state.lock:
            members = tuple(dict.fromkeys([*channel.members, *(p.index for p in people if p)]))
            updated = replace(channel, members=members)
            self._replace_channel(channel, updated)
        self.change(request, "invite_to_channel", {"channel": channel.id, "users": users})
        return ok(channel=self.channel_object(updated))

    def conversations_set_topic(self, request: Request) -> Response:
        channel = self._channel(request)
        topic = request.arg("topic") or ""
        if len(topic) > 250:
            return fail("too_long")
        with self.state.lock:
            self._replace_channel(channel, replace(channel, topic=topic))
        self.change(request, "set_topic", {"channel": channel.id, "topic": topic})
        return ok(channel=self.channel_object(replace(channel, topic=topic)))

    def pins_add(self, request: Request) -> Response:
        channel = self._channel(request)
        ts = request.arg("timestamp") or ""
        if not any(
            slack_ts_text(m.ts) == ts for m in self.world.conversations.added if m.container == channel.id
        ):
            return fail("message_not_found")
        with self.state.lock:
            pins = self.world.conversations.pins.setdefault(channel.id, [])
            if ts in pins:
                return fail("already_pinned")
            pins.append(ts)
        self.change(request, "pin_message", {"channel": channel.id, "ts": ts})
        return ok()

    def pins_list(self, request: Request) -> Response:
        channel = self._channel(request)
        conversations = self.world.conversations
        with self.state.lock:
            pinned = list(conversations.pins.get(channel.id, []))
        messages = {slack_ts_text(m.ts): m for m in conversations.added if m.container == channel.id}
        return ok(
            items=[
                {"type": "message", "channel": channel.id, "message": self.message_object(messages[ts])}
                for ts in pinned
                if ts in messages
            ]
        )

    def update_message(self, request: Request) -> Response:
        """chat.update: only messages posted through the API (the app's own) can be edited."""
        channel = self._channel(request)
        ts = request.arg("ts") or ""
        text = request.arg("text") or ""
        conversations = self.world.conversations
        with self.state.lock:
            found = next(
                (i for i, m in enumerate(conversations.added) if m.container == channel.id and m.id == ts),
                None,
            )
            if found is None:
                return fail("message_not_found")
            conversations.added[found] = replace(conversations.added[found], text=text)
        self.change(request, "update_message", {"channel": channel.id, "ts": ts, "text": text})
        return ok(channel=channel.id, ts=ts, text=text)

    def person_posts(self, request: Request) -> Response:
        """``POST /_sim/slack/messages {"channel", "user", "text"}``: a person writes in a channel."""
        channel = self._channel(request)
        person = self.person(request, "user")
        text = request.arg("text") or ""
        conversations = self.world.conversations
        with self.state.lock:
            ts = max([self.sim.now()] + [m.ts + 1 for m in conversations.added])
            message = Message(
                "slack:messages", slack_ts_text(ts), ts, channel.id, person, (), text, None, None, 0
            )
            conversations.added.append(message)
        return Response.json({"ok": True, "channel": channel.id, "ts": message.id})

    def team_object(self) -> dict[str, Any]:
        tenant = self.tenant
        return {
            "id": tenant.slack_team_id,
            "name": tenant.scenario.tenant.name,
            "domain": tenant.domain.split(".")[0],
            "email_domain": tenant.domain,
            "icon": {"image_default": True},
            "enterprise_id": tenant.slack_enterprise_id,
            "enterprise_name": tenant.scenario.tenant.name,
            "is_verified": False,
        }

    def team_info(self, request: Request) -> Response:
        return ok(team=self.team_object())

    def team_preferences(self, request: Request) -> Response:
        return ok(
            msg_edit_window_mins=-1,
            allow_message_deletion=True,
            display_real_names=True,
            disable_file_uploads="allow_all",
            who_can_post_general="everyone",
        )

    def team_settings(self, request: Request) -> Response:
        """What admin.teams.settings.info returns: the team's name, domains, icon and default channels
        (Slack's documented response and its SDKs' typed model), no security settings: those are
        only visible as the Audit Logs `pref.*` events of their changes (`pref_history`)."""
        team_id = request.arg("team_id") or ""
        if team_id != self.tenant.slack_team_id:
            raise ApiError(200, "team_not_found", f"no workspace {team_id!r}")
        general = next((c.id for c in self.tenant.channels if c.name == "general"), "")
        team = self.team_object()
        return ok(
            team={
                **team,
                "url": f"https://{team['domain']}.slack.com/",
                "enterprise_domain": f"{team['domain']}-org",
                "default_channels": [general],
            }
        )

    def pref_history(self) -> list[dict[str, Any]]:
        """The audit entries of the workspace's setup, newest first: the primary owner set each
        security setting from Slack's default to the tenant's value when the workspace was set up
        (300 days before the scenario, when its apps were installed), so the Audit Logs API, which
        keeps an org's events for its lifetime, answers `action=pref.…` with the setting in force."""
        if self._pref_history is None:
            with self.state.lock:
                settings = dict(self.state.slack_settings)
            owner = self.tenant.admins("slack")[0]
            setup = self.tenant.options.start - 300 * DAY
            entries = []
            for n, setting in enumerate(k for k in SLACK_PREFS if k in settings):
                action, details = pref_change(setting, settings[setting], SLACK_PREF_DEFAULTS[setting])
                spec = audit_extra(action, owner, workspace_entity(self.world.ctx), None, None, None, details)
                entry = render_entry(
                    self.world.ctx, self.world.ctx.ids.fast("slack-pref", n), setup + n * MINUTE, spec
                )
                entry["id"] = self.tenant.ids.guid("slack-pref", setting)
                entries.append(entry)
            self._pref_history = entries[::-1]
        return self._pref_history

    # ---------------------------------------------------------------- remediation

    def _guest_entity(self, guest: dict[str, Any]) -> dict[str, Any]:
        return {"type": "user", "user": {k: guest[k] for k in ("id", "name", "email", "team") if k in guest}}

    def session_reset(self, request: Request) -> Response:
        flags = {
            "mobile_only": request.arg("mobile_only") in ("true", "1"),
            "web_only": request.arg("web_only") in ("true", "1"),
        }
        with self.state.lock:
            guest = self.state.slack_guests.get(request.arg("user_id") or "")
        if guest is not None:  # a guest's sessions end as a member's do
            self.audit_event("user_session_reset_by_admin", None, self._guest_entity(guest), flags)
            self.change(request, "reset_slack_sessions", {"user": guest["email"], "user_id": guest["id"]})
            return ok()
        person = self.person(request, "user_id")
        self.audit_event(
            "user_session_reset_by_admin",
            person,
            {"type": "user", "user": slack_user(self.world.ctx, person)},
            flags,
        )
        self.change(
            request, "reset_slack_sessions", {"user": person.email, "user_id": person.slack_id}, person
        )
        return ok()

    def users_remove(self, request: Request) -> Response:
        with self.state.lock:
            guest = self.state.slack_guests.get(request.arg("user_id") or "")
            if guest is not None:
                guest["deleted"] = True
        if guest is not None:
            self.audit_event("user_deactivated", None, self._guest_entity(guest))
            self.change(
                request,
                "deactivate_user",
                {"user": guest["email"], "user_id": guest["id"], "team_id": request.arg("team_id")},
            )
            return ok()
        person = self.person(request, "user_id")
        self.state.user(person.index).slack_deleted = True
        self.audit_event(
            "user_deactivated", person, {"type": "user", "user": slack_user(self.world.ctx, person)}
        )
        self.change(
            request,
            "deactivate_user",
            {"user": person.email, "user_id": person.slack_id, "team_id": request.arg("team_id")},
            person,
        )
        return ok()

    def _user_ids(self, request: Request) -> list[str]:
        raw = request.arg("user_ids") or ""
        if raw.startswith("["):
            return [str(u) for u in json.loads(raw)]
        return [u for u in raw.split(",") if u]

    def admin_conversations_kick(self, request: Request) -> Response:
        """admin.conversations.kick: remove members or guests from a channel (private ones too);
        removed_user_ids and failed_user_ids ({user_id, error: not_in_channel}) as Slack answers."""
        channel = self.world.conversations.slack_channel(request.arg("channel_id") or "")
        if channel is None:
            return fail("channel_not_found")
        if channel.name == "general":
            return fail("channel_type_not_supported")
        wanted = self._user_ids(request)
        if not wanted:
            return fail("invalid_arguments")
        removed, failed = [], []
        with self.state.lock:
            current = self.world.conversations.slack_channel(channel.id) or channel
            guests = self.state.slack_channel_guests.setdefault(current.id, [])
            members = list(current.members)
            for user_id in wanted:
                person = self.tenant.person(user_id)
                if user_id in guests:
                    guests.remove(user_id)
                    removed.append(user_id)
                elif person is not None and person.index in members:
                    members.remove(person.index)
                    removed.append(user_id)
                else:
                    failed.append({"user_id": user_id, "error": "not_in_channel"})
            if len(members) != len(current.members):
                self._replace_channel(current, replace(current, members=tuple(members)))
        if not removed:
            return fail("failed_for_all_users", failed_user_ids=failed)
        self.change(request, "kick_from_channel", {"channel": channel.id, "users": removed})
        extra = {"warning": "failed_for_some_users"} if failed else {}
        return ok(removed_user_ids=removed, failed_user_ids=failed, **extra)

    def admin_conversations_invite(self, request: Request) -> Response:
        """admin.conversations.invite: add members or known guests to a channel."""
        channel = self.world.conversations.slack_channel(request.arg("channel_id") or "")
        if channel is None:
            return fail("channel_not_found")
        if channel.name == "general":
            return fail("channel_type_not_supported")
        wanted = self._user_ids(request)
        added, failed = [], []
        with self.state.lock:
            current = self.world.conversations.slack_channel(channel.id) or channel
            guests = self.state.slack_channel_guests.setdefault(current.id, [])
            members = list(current.members)
            for user_id in wanted:
                person = self.tenant.person(user_id)
                if user_id in self.state.slack_guests:
                    if user_id not in guests:
                        guests.append(user_id)
                    added.append(user_id)
                elif person is not None:
                    if person.index not in members:
                        members.append(person.index)
                    added.append(user_id)
                else:
                    failed.append({"user_id": user_id, "error": "user_not_found"})
            if len(members) != len(current.members):
                self._replace_channel(current, replace(current, members=tuple(members)))
        if not added:
            return fail("failed_for_all_users", failed_user_ids=failed)
        self.change(request, "invite_to_channel", {"channel": channel.id, "users": added})
        return ok(**({"failed_user_ids": failed} if failed else {}))

    def files_info(self, request: Request) -> Response:
        file_id = request.arg("file") or ""
        with self.state.lock:
            info = self.state.slack_public_files.get(file_id)
        if info is None:
            raise ApiError(200, "file_not_found", f"no file {file_id}")
        return ok(
            file={k: v for k, v in info.items() if k != "created"}
            | {"created": info["created"], "is_public": False}
        )

    def revoke_public_url(self, request: Request) -> Response:
        file_id = request.arg("file") or ""
        with self.state.lock:
            info = self.state.slack_public_files.get(file_id)
            if info is None:
                raise ApiError(200, "file_not_found", f"no file {file_id}")
            info["public_url_shared"] = False
        owner = self.tenant.person(info["user"])
        self.audit_event(
            "file_public_link_revoked",
            owner,
            {"type": "file", "file": {k: info[k] for k in ("id", "name", "filetype", "title")}},
        )
        self.change(request, "revoke_public_url", {"file_id": file_id, "name": info["name"]}, owner)
        return ok(file={**info, "is_public": False})

    def share_public_url(self, request: Request) -> Response:
        """files.sharedPublicURL: turn a file's public link on (again)."""
        file_id = request.arg("file") or ""
        with self.state.lock:
            info = self.state.slack_public_files.get(file_id)
            if info is None:
                raise ApiError(200, "file_not_found", f"no file {file_id}")
            info["public_url_shared"] = True
        owner = self.tenant.person(info["user"])
        self.audit_event(
            "file_public_link_created",
            owner,
            {"type": "file", "file": {k: info[k] for k in ("id", "name", "filetype", "title")}},
        )
        self.change(request, "share_public_url", {"file_id": file_id, "name": info["name"]}, owner)
        return ok(file={**info, "is_public": True})

    def app_object(self, app: Any) -> dict[str, Any]:
        return {
            "app": {
                "id": app.id,
                "name": app.name,
                "description": "",
                "help_url": "",
                "privacy_policy_url": "",
                "app_homepage_url": "",
                "app_directory_url": "",
                "is_app_directory_approved": app.approved,
                "is_internal": False,
                "additional_info": "",
            },
            "scopes": [
                {
                    "name": s,
                    "description": s,
                    "is_sensitive": s.split(":")[0] in ("admin", "channels", "groups", "files"),
                    "token_type": "user" if s == "admin" else "bot",
                }
                for s in app.scopes
            ],
            "date_updated": app.date_installed // SECOND,
            "last_resolved_by": {
                "actor_id": self.tenant.people[app.installed_by or 0].slack_id,
                "actor_type": "user",
            },
        }

    def apps_approved(self, request: Request) -> Response:
        with self.state.lock:
            apps = [self.app_object(a) for a in self.state.slack_apps.values()]
        return self.offset_page(request, "approved_apps", apps, 100)

    def apps_restricted(self, request: Request) -> Response:
        return self.offset_page(request, "restricted_apps", [], 100)

    def apps_uninstall(self, request: Request) -> Response:
        app_id = request.arg("app_id") or ""
        with self.state.lock:
            key = next((k for k, a in self.state.slack_apps.items() if a.id == app_id), None)
            app = self.state.slack_apps.pop(key) if key else None
        if app is None:
            raise ApiError(200, "app_not_found", f"no app {app_id}")
        self.audit_event("app_uninstalled", None, {"type": "app", "app": {"id": app.id, "name": app.name}})
        self.change(request, "uninstall_app", {"app_id": app_id, "name": app.name})
        return ok()

    # ---------------------------------------------------------------- audit logs

    def audit_logs(self, request: Request) -> Response:
        oldest, latest = request.arg("oldest"), request.arg("latest")
        try:
            low = int(oldest) * SECOND if oldest else 0
            high = (int(latest) + 1) * SECOND if latest else 1 << 62
            size = int(request.arg("limit") or self.sim.paging.slack_audit_default)
        except ValueError:
            return Response.json({"ok": False, "error": "invalid_arguments"}, 400)
        if not 1 <= size <= 9999:
            return Response.json({"ok": False, "error": "invalid_arguments"}, 400)
        actions = set(filter(None, (request.arg("action") or "").split(",")))
        actor = request.arg("actor")
        entity = request.arg("entity")
        cursor = decode_cursor(request.arg("cursor") or "") if request.arg("cursor") else None
        if request.arg("cursor") and cursor is None:
            return Response.json({"ok": False, "error": "invalid_cursor"}, 400)

        def keep(entry: dict[str, Any]) -> bool:
            if actions and entry["action"] not in actions:
                return False
            if actor and (entry.get("actor", {}).get("user") or {}).get("id") != actor:
                return False
            if entity:
                inner = entry.get("entity", {})
                return any(isinstance(v, dict) and v.get("id") == entity for v in inner.values())
            return True

        predicate = keep if (actions or actor or entity) else None
        history_from = int(cursor.get("h", 0)) if cursor else 0
        page = (
            event_page(
                self.sim, "slack:audit", Window(low, high, True), size, cursor, predicate, request.path
            )
            if not history_from
            else None
        )
        entries = page.items if page else []
        next_cursor = page.next if page else None
        if next_cursor is None:  # past the scenario's events (newest first): the workspace's setup
            history = [
                e
                for e in self.pref_history()
                if low <= e["date_create"] * SECOND < high and (predicate is None or predicate(e))
            ]
            room = size - len(entries)
            start = max(history_from - 1, 0)
            entries += history[start : start + room]
            if start + room < len(history):
                next_cursor = {"h": start + room + 1}
        return Response.json(
            {
                "entries": entries,
                "response_metadata": {"next_cursor": encode_cursor(next_cursor) if next_cursor else ""},
            }
        )

    def audit_schemas(self, request: Request) -> Response:
        return Response.json(
            {
                "schemas": [
                    {"type": t, "workspace_or_org": {}, "user": {}, "file": {}, "app": {}}
                    for t in AUDIT_ACTIONS
                ]
            }
        )

    def audit_actions(self, request: Request) -> Response:
        return Response.json({"actions": AUDIT_ACTIONS})
