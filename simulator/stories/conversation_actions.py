"""Story conversations: Slack threads, Outlook and Gmail e-mails, Teams chats."""

from __future__ import annotations

from typing import Any

from simulator.conversations import Message, make_mail, slack_ts_text
from simulator.errors import ScenarioError
from simulator.scenario import StepSpec
from simulator.stories.engine import StoryBuilder, action
from simulator.tenant import Person
from simulator.timestamps import parse_duration


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
