"""Which chat and mail messages belong to which incident, and why.

Pure matching over already-redacted messages. A message is scored against each incident whose
conversation window (``first_seen - before`` … ``last_seen + after``) contains it:

* 2 — it names something specific to the incident: a source IP, an app, the incident itself
  (``INC-12``), or it sits in a thread/channel linked to the incident;
* 1 — it names one of the incident's files, and talks about security (file names are everyday
  words: "Budget forecast" alone says nothing);
* 1 — it involves one of the incident's people: written by, sent to, or mentioning them
  (address, ``<@U123>`` mention, full name) — unless only written by someone who talks about
  security every day (an analyst closing alerts is no sign of anything);
* 1 — it talks about security ("phishing", "not me", "MFA prompt", "compromised", ...).

A message that only a person ties to the incident must be sent within `PERSON_ONLY_AFTER` (24 h)
of the incident's last activity, not anywhere in the 72 h after it; and when it names the kind of
alert it is about ("closing yesterday's impossible travel alert"), that kind must be one of the
incident's findings (`alert_kinds`): it is talk about some other alert, not about this incident.

It is attached when the score reaches 2, to the incident(s) with the best score (naming a person
beats being written by one). Specific matches are settled first, so an analyst's reply in an
incident's thread stays with that incident. Then the threads of attached messages are linked and
their other messages follow ("same thread as message #7"), as do the answers right after an
attached message in a small chat (Teams chats, Slack DMs have no threads). A person merely
chatting in the window is not enough: that is most of a company's chat.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any

from timeline.entities import IdentityIndex, normalise_email, normalise_name

ATTACH_SCORE = 2
CHAT_MAX_AUTHORS = 3
ROUTINE_SECURITY_MESSAGES = 3
ROUTINE_LOOKBACK = timedelta(days=14)
CHAT_REPLY_WINDOW = timedelta(minutes=30)
# A message tied to an incident only through a person (written by, sent to or naming one of its
# people, talking about security) counts up to this long after the incident's last activity; the
# whole conversation window (`TimelineConfig.conversation_after`, 72 h) is for messages naming
# something specific. A victim's "that wasn't me" comes within hours; one of the people talking
# about some other alert two days later is not about this incident.
PERSON_ONLY_AFTER = timedelta(hours=24)
MAIL_STREAMS = frozenset({"mail", "gmail"})
SECURITY_WORDS = (
    r"phish\w*",
    r"suspicious",
    r"compromis\w*",
    r"hack(?:ed|er|ers)?",
    r"malware",
    r"ransomware",
    r"breach\w*",
    r"leak(?:ed)?",
    r"unauthori[sz]ed",
    r"(?:was|wasn'?t|was not|not) me",
    r"didn'?t (?:do|sign|log|share|approve|request|create|send|install|grant|authori[sz]e)\w*",
    r"did not (?:do|sign|log|share|approve|request|create|send|install|grant|authori[sz]e)\w*",
    r"mfa (?:prompt|push|request|notification)s?",
    r"(?:okta|okta verify|duo) push(?:es)?",
    r"(?:2fa|two[- ]factor|verification) (?:code|prompt|request)s?",
    r"(?:weird|strange|odd|unexpected|unusual|random) (?:sign[- ]?in|log[- ]?in|login|prompt|email|mail|message|link|"
    r"request|activity|app|access|alert|rule|forward\w*|share|sharing|file)s?",
    r"reset (?:my|your|the|his|her) password",
    r"password reset",
    r"locked out",
    r"verify your (?:account|identity|password)",
    r"security (?:alert|incident|team)",
    r"forwarding rule",
    r"inbox rule",
    r"consent(?:ed)?",
    r"revok\w*",
    r"impossible travel",
    r"exfiltrat\w*",
    r"(?:sign|log)[- ]?in from",
    r"shared (?:publicly|externally|with anyone)",
    r"public link",
    r"made [^.?!\n]{0,60}public",
    r"shared [^.?!\n]{0,60}(?:externally|outside|with anyone)",
    r"(?:is|are) public",
    r"bank details",
    r"mfa",
    r"2sv",
    r"2fa",
    r"authenticator",
    r"posture drift",
    r"drift",
    r"change (?:ticket|board|process|request)",
    r"not approved",
    r"without (?:approval|a ticket)",
    r"(?:too many|a lot of) permissions",
    r"resign(?:ed|ation)?",
    r"offboarding",
    r"last day",
)
# "the impossible travel alert", "yesterday's phishing alerts": a message naming the kind of alert
# (or finding, detection) it is about; the words before it are the kind.
_ALERT_KIND = re.compile(
    r"((?:[a-z0-9][\w'-]* ){0,3}[a-z0-9][\w'-]*) (?:alert|alarm|detection|finding)s?(?!\w)", re.IGNORECASE
)
# Words in front of "alert" that say nothing of its kind, nor do what every alert is about
# ("a weird login alert").
_NOT_A_KIND_WORDS = (
    "a an the this that these those my your our their his her its any every each another other "
    "same new old open opened closed closing close resolved resolving false positive true real "
    "security yesterday today tonight last first second next weekly daily one two earlier got "
    "get saw see seen have had has is was about on of for re fw fwd to from and or critical "
    "high medium low urgent p1 p2 p3 p4 i we you me us just also still weird strange odd "
    "unexpected unusual suspicious random login log-in logon sign-in signin in access activity "
    "account accounts email mail user users okta microsoft google slack"
)
_NOT_A_KIND = frozenset(_NOT_A_KIND_WORDS.split())
_SECURITY = re.compile(r"(?<!\w)(?:" + "|".join(SECURITY_WORDS) + r")(?!\w)", re.IGNORECASE)
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){1,8}")
_SLACK_MENTION = re.compile(r"<@([A-Za-z0-9]{2,30})(?:\|[^>]{0,100})?>")
_MIN_TERM = 4


@dataclass(frozen=True)
class MessageFacts:
    id: int
    provider: str
    stream: str
    provider_message_id: str
    channel: str | None
    thread_id: str | None
    author: str | None
    sent_at: datetime
    subject: str | None
    text: str
    recipients: tuple[str, ...] = ()

    attachments: tuple[str, ...] = ()
    # The channel's name when the collector stored it with the message (meta.channel_name).
    channel_name: str | None = None

    @property
    def _scope(self) -> str:
        # A mail conversation spans mailboxes (each holds its own copy); a chat thread id is
        # only unique inside its channel.
        return "" if self.stream in MAIL_STREAMS else (self.channel or "")

    @property
    def thread_key(self) -> tuple[str, str, str] | None:
        """The thread this message sits in (a Slack thread's first message carries its own ts)."""
        if self.thread_id:
            return (self.provider, self._scope, self.thread_id)
        return None

    @property
    def own_key(self) -> tuple[str, str, str]:
        return (self.provider, self._scope, self.provider_message_id)


@dataclass(frozen=True)
class IncidentTerms:
    """What an incident's messages may mention, and the window they may fall in."""

    incident_id: int
    window_start: datetime
    window_end: datetime
    person_keys: frozenset[str]  # "person:12" / "email:x@y"
    names: Mapping[str, str]  # lower-case full name -> person key
    strong: Mapping[str, str]  # lower-case term -> what it is ("source IP 203.0.113.5")
    threads: frozenset[tuple[str, str, str]] = frozenset()
    channels: frozenset[tuple[str, str]] = frozenset()
    person_window_end: datetime | None = None  # for person-only matches (PERSON_ONLY_AFTER); None: window_end
    # What the incident's findings are (their titles and rule ids, lower case): a person-only
    # message naming another kind of alert is not about it (`alert_kinds`); "" when unknown.
    about: str = ""


@dataclass
class ConversationMatch:
    message_id: int
    incident_id: int
    score: int
    reasons: list[str] = field(default_factory=list)
    thread_key: tuple[str, str, str] | None = None
    # Names something specific to the incident (or sits in its thread), rather than only a
    # person of the incident talking about security.
    specific: bool = False
    rank: int = 0


def alert_kinds(text: str) -> list[tuple[str, ...]]:
    """The kinds of alert a message names, each as its words ("closing yesterday's impossible travel
    alert" -> [("impossible", "travel")]); a bare "security alert" or "weird login alert" names none.

    A person-only message whose security talk is all such names is skipped for an incident of
    another kind; one that also says "that wasn't me" is not."""
    kinds = []
    for found in _ALERT_KIND.finditer(text):
        kind: list[str] = []
        for word in reversed(found.group(1).lower().split()):  # the words right before "alert"
            if word in _NOT_A_KIND or word.endswith(("'s", "\u2019s", ":", ",", ";")):
                break  # "yesterday's", "queue:", "the" end the kind
            kind.insert(0, word)
        if kind:
            kinds.append(tuple(kind))
    return kinds


def _is_about(kind: tuple[str, ...], about: str) -> bool:
    """Whether an incident whose findings read `about` is of this alert kind (any of its words, or
    their stems: "phishing" finds "phish", "travel" finds "travelled")."""
    return any(word[:5] in about for word in kind if len(word) >= 3)


def incident_terms(
    incident_id: int,
    window: tuple[datetime, datetime],
    entities: Mapping[str, Any],
    keys: Iterable[str],
    identities: IdentityIndex,
    linked: Iterable[Mapping[str, Any]] = (),
    last_seen: datetime | None = None,
    about: Iterable[str] = (),
) -> IncidentTerms:
    """Terms from an incident's entities and grouping keys (people through the identity index).
    `last_seen` (the incident's last activity) bounds person-only matches (`PERSON_ONLY_AFTER`);
    `about` (its findings' titles and rule ids) the kinds of alert they may name (`alert_kinds`)."""
    strong: dict[str, str] = {
        f"inc-{incident_id}": "the incident",
        f"incident #{incident_id}": "the incident",
    }
    person_keys: set[str] = set()
    names: dict[str, str] = {}
    for key in keys:
        kind, _, value = key.partition(":")
        if kind == "person":
            person_keys.add(key)
            facts = identities.people.get(int(value))
            if facts and facts.display_name and len(facts.display_name.split()) >= 2:
                names[" ".join(facts.display_name.lower().split())] = key
        elif kind == "email":
            person_keys.add(key)
    # Specific things come from the grouping keys, which leave out what is common (office IPs,
    # first-party apps) and what a finding names too many of (a mass download's files).
    labels = {
        normalise_name(str(v)): str(v) for field in ("files", "apps") for v in entities.get(field) or ()
    }
    for key in keys:
        kind, _, value = key.partition(":")
        if kind == "ip" and "/" not in value:
            strong[value.lower()] = f"source IP {value}"
        elif kind in ("file", "app"):
            _add_name(strong, labels.get(value, value), kind)
    threads = set()
    channels = set()
    for link in linked:
        provider, channel = str(link.get("provider") or ""), str(link.get("channel") or "")
        if link.get("thread_id"):
            threads.add((provider, channel, str(link["thread_id"])))
        elif channel:
            channels.add((provider, channel))
    return IncidentTerms(
        incident_id,
        window[0],
        window[1],
        frozenset(person_keys),
        names,
        strong,
        frozenset(threads),
        frozenset(channels),
        None if last_seen is None else min(window[1], last_seen + PERSON_ONLY_AFTER),
        " ".join(about).lower(),
    )


def _add_name(strong: dict[str, str], name: str, what: str) -> None:
    text = " ".join(name.strip().lower().split())
    if len(text) >= _MIN_TERM:
        strong.setdefault(text, f"{what} {name.strip()}")
    stem, dot, extension = text.rpartition(".")
    if dot and 1 <= len(extension) <= 5 and len(stem) >= 8:
        strong.setdefault(stem, f"{what} {name.strip()}")


def _term_pattern(terms: Iterable[str]) -> re.Pattern[str] | None:
    ordered = sorted(set(terms), key=len, reverse=True)
    if not ordered:
        return None
    return re.compile(r"(?<![\w@.\-])(?:" + "|".join(re.escape(t) for t in ordered) + r")(?![\w@\-]|\.\w)")


class ConversationLinker:
    """Match many messages against many incidents in one pass over each message's text."""

    def __init__(
        self,
        incidents: Sequence[IncidentTerms],
        identities: IdentityIndex,
        security_history: Mapping[str, Sequence[datetime]] | None = None,
    ) -> None:
        self.incidents = {i.incident_id: i for i in incidents}
        self.identities = identities
        # When each author wrote about security before (see `routine_security_talk`).
        self.security_history = security_history or {}
        self._strong: dict[str, list[tuple[int, str]]] = {}
        self._names: dict[str, list[tuple[int, str]]] = {}
        self._people: dict[str, list[int]] = {}
        for incident in incidents:
            for term, what in incident.strong.items():
                self._strong.setdefault(term, []).append((incident.incident_id, what))
            for name, key in incident.names.items():
                self._names.setdefault(name, []).append((incident.incident_id, key))
            for key in incident.person_keys:
                self._people.setdefault(key, []).append(incident.incident_id)
        self._pattern = _term_pattern([*self._strong, *self._names])

    def _person_key(self, value: str) -> str | None:
        address = parseaddr(value)[1] if "<" in value else value
        person = self.identities.person_for(address or value)
        if person is not None:
            return f"person:{person}"
        if "@" in (address or ""):
            return f"email:{normalise_email(address)}"
        return None

    def routine_security_talk(self, message: MessageFacts, incident: IncidentTerms) -> bool:
        """Whether the author wrote about security several times in the two weeks before the
        incident (analysts, IT staff); what they say is then no sign about this incident."""
        times = self.security_history.get(message.author or "", ())
        since = min(message.sent_at, incident.window_start) - ROUTINE_LOOKBACK
        before = sum(1 for t in times if since <= t < incident.window_start)
        return before >= ROUTINE_SECURITY_MESSAGES

    def _in_window(self, incident: IncidentTerms, message: MessageFacts) -> bool:
        if message.thread_key in incident.threads or message.own_key in incident.threads:
            return message.sent_at >= incident.window_start
        return incident.window_start <= message.sent_at <= incident.window_end

    def score(self, message: MessageFacts) -> list[ConversationMatch]:
        """Every incident this message could belong to, with its score and reasons."""
        text = "\n".join([message.subject or "", message.text, *message.attachments])
        lowered = text.lower()
        strong: dict[int, list[str]] = {}
        files: dict[int, list[str]] = {}
        people: dict[int, list[str]] = {}
        mentioned: set[int] = set()
        if self._pattern is not None:
            for found in self._pattern.finditer(lowered):
                term = found.group(0)
                for incident_id, what in self._strong.get(term, ()):
                    # File names are everyday words ("Budget forecast"): on their own they only
                    # count as much as a person does.
                    (files if what.startswith("file ") else strong).setdefault(incident_id, []).append(
                        f"mentions {what}"
                    )
                for incident_id, key in self._names.get(term, ()):
                    people.setdefault(incident_id, []).append(f"mentions {self.identities.label(key)}")
                    mentioned.add(incident_id)
        found_keys = [self._person_key(m.group(0)) for m in _EMAIL.finditer(text)]
        found_keys += [self._person_key(m.group(1)) for m in _SLACK_MENTION.finditer(text)]
        for person in {k for k in found_keys if k}:
            for incident_id in self._people.get(person, ()):
                people.setdefault(incident_id, []).append(f"mentions {self.identities.label(person)}")
                mentioned.add(incident_id)
        author = self._person_key(message.author) if message.author else None
        for incident_id in self._people.get(author or "", ()):
            people.setdefault(incident_id, []).append(f"written by {self.identities.label(author or '')}")
        for recipient in message.recipients:
            to = self._person_key(recipient)
            for incident_id in self._people.get(to or "", ()):
                people.setdefault(incident_id, []).append(f"sent to {self.identities.label(to or '')}")
                mentioned.add(incident_id)
        for incident in self.incidents.values():
            if message.thread_key in incident.threads or message.own_key in incident.threads:
                strong.setdefault(incident.incident_id, []).append("in a thread linked to the incident")
            elif (message.provider, message.channel or "") in incident.channels:
                strong.setdefault(incident.incident_id, []).append(
                    f"in channel {message.channel} linked to the incident"
                )
        security = _SECURITY.search(text)
        # the kinds of alert it names, when nothing else in it talks about security (read only
        # for a message that a person alone ties to an incident: most messages are no candidate)
        person_only = set(people) - set(strong) - set(files)
        kinds = (
            alert_kinds(text)
            if person_only and security and not _SECURITY.search(_ALERT_KIND.sub(" ", text))
            else []
        )
        matches: list[ConversationMatch] = []
        for incident_id in set(strong) | set(files) | set(people):
            incident = self.incidents[incident_id]
            if not self._in_window(incident, message):
                continue
            if (
                incident_id not in strong
                and incident_id not in files
                and incident.person_window_end is not None
                and message.sent_at > incident.person_window_end
            ):
                continue  # only a person ties it to the incident, and it is long after (PERSON_ONLY_AFTER)
            if (
                kinds
                and incident_id in person_only
                and incident.about
                and not any(_is_about(kind, incident.about) for kind in kinds)
            ):
                continue  # only a person ties it, and it is about another kind of alert
            reasons = [
                *sorted(set(strong.get(incident_id, ()))),
                *sorted(set(files.get(incident_id, ()))),
                *sorted(set(people.get(incident_id, ()))),
            ]
            score = (
                (2 if incident_id in strong else 0)
                + (1 if incident_id in files else 0)
                + (1 if incident_id in people else 0)
            )
            if security:
                score += 1
                reasons.append(f"talks about security (\u201c{security.group(0)}\u201d)")
            if incident_id in files and not security:
                # A file name is everyday vocabulary unless the message is about security.
                score -= 1
                reasons = [r for r in reasons if not r.startswith("mentions file ")]
            if (
                incident_id not in strong
                and incident_id not in mentioned
                and self.routine_security_talk(message, incident)
            ):
                continue  # the author talks security every day: their talk says nothing of this incident
            specific = incident_id in strong or (incident_id in files and bool(security))
            # Among equal scores, a message is about the person it names, not the one who wrote it.
            rank = score * 10 + (2 if incident_id in mentioned else 0) + (1 if specific else 0)
            matches.append(
                ConversationMatch(message.id, incident_id, score, reasons, message.thread_key, specific, rank)
            )
        return matches

    def link(self, messages: Sequence[MessageFacts]) -> list[ConversationMatch]:
        """Attach messages to incidents, specific evidence first.

        Pass one attaches messages that name something of an incident, and the rest of their
        threads. Pass two looks only at what is left: a person of an incident talking about
        security, and the rest of those threads. So an analyst's reply in an incident's thread
        belongs to that incident, not also to some other incident about the analyst.
        """
        scored = {m.id: [x for x in self.score(m) if x.score >= ATTACH_SCORE] for m in messages}
        canned = _canned_texts(messages)
        for message in messages:
            if _normalised_text(message) in canned:  # weak matches on canned text say nothing
                scored[message.id] = [x for x in scored[message.id] if x.specific]
        specific = {i: [x for x in found if x.specific] for i, found in scored.items()}
        attached = self._attach(messages, specific, taken=set())
        taken = {m.message_id for m in attached}
        weak = {i: [x for x in found if not x.specific] for i, found in scored.items() if i not in taken}
        return attached + self._attach(messages, weak, taken=taken)

    def _attach(
        self,
        messages: Sequence[MessageFacts],
        candidates: Mapping[int, list[ConversationMatch]],
        *,
        taken: set[int],
    ) -> list[ConversationMatch]:
        attached: list[ConversationMatch] = []
        threads: dict[tuple[str, str, str], tuple[int, int]] = {}  # thread -> (incident, message)
        for message in messages:
            found = candidates.get(message.id) or []
            if not found:
                continue
            best = max(m.rank for m in found)
            for match in found:
                if match.rank == best:
                    attached.append(match)
                    for key in (message.thread_key, message.own_key):
                        if key is not None:
                            threads.setdefault(key, (match.incident_id, message.id))
        done = {(m.message_id, m.incident_id) for m in attached}
        for message in messages:
            if message.id in taken:
                continue
            for key in (message.thread_key, message.own_key):
                owner = threads.get(key) if key is not None else None
                if owner is None or (message.id, owner[0]) in done:
                    continue
                incident_id, anchor = owner
                if message.sent_at < self.incidents[incident_id].window_start:
                    continue
                done.add((message.id, incident_id))
                reasons = [f"same thread as message #{anchor}"]
                attached.append(
                    ConversationMatch(
                        message.id, incident_id, ATTACH_SCORE, reasons, message.thread_key, True
                    )
                )
        attached.extend(self._chat_replies(messages, attached, done, taken))
        return attached

    def _chat_replies(
        self,
        messages: Sequence[MessageFacts],
        attached: Sequence[ConversationMatch],
        done: set[tuple[int, int]],
        taken: set[int],
    ) -> list[ConversationMatch]:
        """In a small chat (a 1:1 or group chat has no threads), the answers right after an
        attached message belong with it: "Did you get weird emails from me?" — "Yes, ...".
        """
        authors: dict[tuple[str, str], set[str]] = {}
        for message in messages:
            if is_direct_chat(message):
                authors.setdefault((message.provider, message.channel or ""), set()).add(message.author or "")
        by_id = {m.id: m for m in messages}
        replies: list[ConversationMatch] = []
        for match in list(attached):
            anchor = by_id.get(match.message_id)
            if anchor is None or not is_direct_chat(anchor):
                continue
            if len(authors.get((anchor.provider, anchor.channel or ""), ())) > CHAT_MAX_AUTHORS:
                continue
            for message in messages:
                if (
                    message.id in taken
                    or (message.id, match.incident_id) in done
                    or (message.provider, message.channel) != (anchor.provider, anchor.channel)
                    or not anchor.sent_at < message.sent_at <= anchor.sent_at + CHAT_REPLY_WINDOW
                ):
                    continue
                done.add((message.id, match.incident_id))
                minutes = int((message.sent_at - anchor.sent_at).total_seconds() // 60)
                reasons = [f"answers message #{anchor.id} in the same chat {minutes} min later"]
                replies.append(
                    ConversationMatch(message.id, match.incident_id, ATTACH_SCORE, reasons, None, True)
                )
        return replies


def _normalised_text(message: MessageFacts) -> str:
    return " ".join(message.text.lower().split())[:300]


def _canned_texts(messages: Sequence[MessageFacts]) -> set[str]:
    """Texts that several people posted word for word: templates, bots, canned replies."""
    authors: dict[str, set[str]] = {}
    for message in messages:
        text = _normalised_text(message)
        if text:
            authors.setdefault(text, set()).add(message.author or "")
    return {text for text, who in authors.items() if len(who) >= 2}


def talks_security(text: str) -> bool:
    return _SECURITY.search(text) is not None


def is_direct_chat(message: MessageFacts) -> bool:
    """A 1:1 or group chat (no threads, few people), not a channel: Teams chats, Slack DMs."""
    channel = message.channel or ""
    if message.stream == "teams_messages":
        return channel.endswith(("@unq.gbl.spaces", "@thread.v2"))
    if message.provider == "slack":
        return channel.startswith("D")
    return False
