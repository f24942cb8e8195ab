"""Chat and e-mail: Slack channel messages, Teams channel/chat messages, Outlook mail and Gmail.

Background messages are drawn per (channel, UTC day) for channels and per (person, local day)
for mailboxes, from their own seeded RNGs, so they stream like events. Stories add messages
(an analyst's thread, a colleague's "did you just sign in from ...?") that belong to the ground
truth.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from simulator.activity import Planner, count
from simulator.data_files import load_yaml
from simulator.tenant import Channel, Person, Tenant
from simulator.timestamps import DAY, HOUR, MINUTE

CONVERSATION_STREAMS = ("slack:messages", "m365:teams_messages", "m365:mail", "google:gmail")
TEXT_FILE = Path(__file__).parent / "data" / "conversations.yaml"


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message or e-mail, vendor-neutral.

    `container` is the Slack channel id, Teams channel/chat id or mailbox owner's index (as text);
    `thread` is the Slack thread_ts / Teams parent id / mail conversation id.
    """

    stream: str
    id: str
    ts: int
    container: str
    sender: Person | str  # a person or an external e-mail address
    recipients: tuple[Person | str, ...]
    text: str
    subject: str | None = None
    thread: str | None = None
    reply_count: int = 0

    @property
    def sender_email(self) -> str:
        return self.sender.email if isinstance(self.sender, Person) else self.sender

    @property
    def provider_id(self) -> str:
        """The id the ground truth uses (see README.md, 'Provider ids')."""
        if self.stream == "slack:messages":
            return f"{self.container}:{slack_ts_text(self.ts)}"
        return self.id


def slack_ts_text(ts: int) -> str:
    return f"{ts // 1_000_000}.{ts % 1_000_000:06d}"


@lru_cache(maxsize=1)
def texts() -> dict[str, Any]:
    return load_yaml(TEXT_FILE.read_text())


@dataclass(frozen=True, slots=True)
class TeamsChannel:
    team_id: str
    id: str
    name: str
    team_name: str
    members: tuple[int, ...]


class Conversations:
    """Background conversations, generated on demand, plus the messages stories added."""

    def __init__(self, tenant: Tenant, story_messages: list[Message]) -> None:
        self.tenant = tenant
        self.planner = Planner(tenant)
        self.activity = tenant.scenario.activity
        self.story = story_messages
        self.added: list[Message] = []  # chat.postMessage and friends
        self.created: set[str] = set()  # channels made by conversations.create: no background chatter
        self.pins: dict[str, list[str]] = {}  # channel id -> pinned message ts, oldest first
        ids = tenant.ids
        self.teams_channels = [
            TeamsChannel(
                ids.guid("team", "company"),
                f"19:{ids.hex('teams-channel', 'general', length=32)}@thread.tacv2",
                "General",
                f"{tenant.scenario.tenant.name}",
                tuple(p.index for p in tenant.people),
            ),
            TeamsChannel(
                ids.guid("team", "it"),
                f"19:{ids.hex('teams-channel', 'it', length=32)}@thread.tacv2",
                "Security",
                "IT",
                tuple(p.index for p in tenant.people if p.department == "IT"),
            ),
        ]

    # ---------------------------------------------------------------- channels (Slack, Teams)

    def channel_messages(self, stream: str, channel_id: str, start: int, end: int) -> list[Message]:
        """Messages (top level and replies) in a channel within [start, end), oldest first."""
        out: list[Message] = []
        low, high = max(start, self.tenant.options.start), min(end, self.tenant.options.end)
        for day in (
            range(low // DAY, (high - 1) // DAY + 1) if low < high and channel_id not in self.created else ()
        ):
            out.extend(m for m in self._channel_day(stream, channel_id, day) if low <= m.ts < high)
        out.extend(
            m
            for m in self.story + self.added
            if m.stream == stream and m.container == channel_id and start <= m.ts < end
        )
        out.sort(key=lambda m: (m.ts, m.id))
        return out

    def _channel_day(self, stream: str, channel_id: str, day: int) -> list[Message]:
        tenant = self.tenant
        members, name = self._channel_members(stream, channel_id)
        if not members:
            return []
        rng = tenant.ids.fast_rng(
            stream, tenant.ids.fast("channel", len(channel_id), ord(channel_id[-1]), ord(channel_id[1])), day
        )
        if (day + 3) % 7 >= 5:
            return []
        n = count(rng, min(12.0, 0.5 + len(members) * self.activity.slack_messages_per_day / 25))
        out: list[Message] = []
        for k in range(n):
            author = tenant.people[rng.choice(members)]
            ts = day * DAY + int(rng.uniform(13, 22) * HOUR) + rng.randrange(1000) * 1000 + k
            text = self._line(rng, stream, name, author)
            reply_count = count(rng, 0.6) if rng.random() < 0.25 else 0
            parent = self._message(stream, channel_id, ts, author, text, None, reply_count, members)
            out.append(parent)
            for r in range(reply_count):
                replier = tenant.people[rng.choice(members)]
                reply_ts = ts + int(rng.uniform(1, 50) * MINUTE) + r
                out.append(
                    self._message(
                        stream,
                        channel_id,
                        reply_ts,
                        replier,
                        rng.choice(texts()["slack"]["team"]).format(
                            colleague=author.given, title="the doc", city="", number=rng.randint(1000, 9999)
                        ),
                        parent,
                        0,
                        members,
                    )
                )
        return out

    def _message(
        self,
        stream: str,
        channel_id: str,
        ts: int,
        author: Person,
        text: str,
        parent: Message | None,
        reply_count: int,
        members: tuple[int, ...],
    ) -> Message:
        if stream == "slack:messages":
            mid = slack_ts_text(ts)
            thread = slack_ts_text(parent.ts) if parent else (mid if reply_count else None)
        else:
            mid = str(ts // 1000)
            thread = parent.id if parent else None
        return Message(stream, mid, ts, channel_id, author, (), text, None, thread, reply_count)

    def _channel_members(self, stream: str, channel_id: str) -> tuple[tuple[int, ...], str]:
        if stream == "slack:messages":
            channel = self.slack_channel(channel_id)
            return (channel.members, channel.name) if channel else ((), "")
        teams = next((c for c in self.teams_channels if c.id == channel_id), None)
        return (teams.members, "team") if teams else ((), "")

    def slack_channel(self, channel_id: str) -> Channel | None:
        return next(
            (c for c in self.tenant.channels if c.id == channel_id or c.name == channel_id.lstrip("#")), None
        )

    def _line(self, rng: random.Random, stream: str, channel: str, author: Person) -> str:
        lines = texts()["slack"]
        pool = lines.get(channel) or lines["team"]
        tenant = self.tenant
        colleague = tenant.people[rng.randrange(len(tenant.people))]
        files = tenant.files_of(author.index, "m365")
        return rng.choice(pool).format(
            colleague=colleague.given,
            city=rng.choice(["Madrid", "Tokyo", "Chicago", "Paris", "Toronto"]),
            number=rng.randint(1000, 9999),
            title=files[rng.randrange(len(files))].title,
        )

    # ---------------------------------------------------------------- mailboxes (Outlook, Gmail)

    def mailbox(self, stream: str, person: Person, start: int, end: int) -> list[Message]:
        """Messages received by a person within [start, end), oldest first."""
        out: list[Message] = []
        low, high = max(start, self.tenant.options.start), min(end, self.tenant.options.end)
        if low < high:
            for local_day in range(low // DAY - 1, high // DAY + 2):
                out.extend(m for m in self._mail_day(stream, person, local_day) if low <= m.ts < high)
        out.extend(
            m
            for m in self.story + self.added
            if m.stream == stream and person in m.recipients + (m.sender,) and start <= m.ts < end
        )
        out.sort(key=lambda m: (m.ts, m.id))
        return out

    def _mail_day(self, stream: str, person: Person, local_day: int) -> list[Message]:
        plan = self.planner.plan(person, local_day)
        if not plan.sessions:
            return []
        tenant = self.tenant
        rng = tenant.ids.fast_rng(stream, person.index, local_day)
        out = []
        session = plan.sessions[0]
        for k in range(count(rng, self.activity.mails_per_day)):
            sender = tenant.people[rng.randrange(len(tenant.people))]
            ts = rng.randint(session.start, max(session.start, session.end)) // 1000 * 1000 + k
            lines = texts()
            files = tenant.files_of(sender.index, "m365")
            subject = rng.choice(lines["mail_subjects"]).format(
                number=rng.randint(1, 4), title=files[0].title
            )
            out.append(
                self.mail(
                    stream,
                    ts,
                    sender,
                    (person,),
                    subject,
                    rng.choice(lines["mail_bodies"]),
                    key=(person.index, local_day, k),
                )
            )
        return out

    def mail(
        self,
        stream: str,
        ts: int,
        sender: Person | str,
        recipients: tuple[Person | str, ...],
        subject: str,
        body: str,
        key: Any,
        thread: str | None = None,
    ) -> Message:
        return make_mail(self.tenant, stream, ts, sender, recipients, subject, body, key, thread)

    # ---------------------------------------------------------------- listing for ground truth / introspection

    def all_messages(self, stream: str) -> list[Message]:
        options = self.tenant.options
        out: list[Message] = []
        if stream == "slack:messages":
            for channel in self.tenant.channels:
                out.extend(self.channel_messages(stream, channel.id, options.start, options.end + 400 * DAY))
        elif stream == "m365:teams_messages":
            for teams_channel in self.teams_channels:
                out.extend(
                    self.channel_messages(stream, teams_channel.id, options.start, options.end + 400 * DAY)
                )
            out.extend(
                m
                for m in self.story + self.added
                if m.stream == stream and m.container.endswith("@unq.gbl.spaces")
            )
        else:
            seen = set()
            for person in self.tenant.people:
                for message in self.mailbox(stream, person, options.start, options.end + 400 * DAY):
                    if message.id not in seen:
                        seen.add(message.id)
                        out.append(message)
        return out


def make_mail(
    tenant: Tenant,
    stream: str,
    ts: int,
    sender: Person | str,
    recipients: tuple[Person | str, ...],
    subject: str,
    body: str,
    key: Any,
    thread: str | None = None,
) -> Message:
    """An Outlook (m365:mail) or Gmail (google:gmail) message with deterministic ids."""
    ids = tenant.ids
    if stream == "m365:mail":
        mid = "AAMkA" + ids.token("mail", stream, key, length=40) + "AAA="
        thread = thread or "AAQkA" + ids.token("conversation", stream, key, length=30) + "="
    else:
        mid = ids.hex("gmail", key, length=16)
        thread = thread or mid
    owner = next((r for r in recipients if isinstance(r, Person)), sender)
    container = str(owner.index) if isinstance(owner, Person) else ""
    return Message(stream, mid, ts, container, sender, recipients, body, subject, thread)
