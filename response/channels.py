"""A Slack channel per urgent incident: created, the responders invited, a live summary pinned,
timeline lines posted there, and the people's messages there mirrored back onto the timeline.

Everything is derived from database state (`IncidentResponse` keeps the channel, the pinned
summary's ts and hash, the newest timeline entry posted and the newest message mirrored), so a
run that is lost or repeated loses and duplicates nothing: a channel whose creation was not
committed is found again by its name, a mirrored message is keyed by its ts. Messages are
redacted (``core.redaction``) before they are stored, as every conversation is.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.audit import AuditAction
from core.clock import as_utc, utcnow
from core.db import Database
from core.models.connection import Connection
from core.models.enums import IncidentStatus, TimelineEntryKind
from core.models.incident import Incident, TimelineEntry
from core.models.response import IncidentResponse
from core.redaction import redact
from response.config import ResponseConfig
from response.errors import ChannelError
from response.journal import DRILL_MARK, note, state_for

log = logging.getLogger(__name__)
CLOSED = {IncidentStatus.CLOSED, IncidentStatus.FALSE_POSITIVE, IncidentStatus.DUPLICATE}
MIRROR_SOURCE = "slack/incident-channel"
# Timeline kinds not posted into the channel: evidence is in the summary, messages came from there.
NOT_POSTED = {TimelineEntryKind.EVIDENCE, TimelineEntryKind.MESSAGE, TimelineEntryKind.FINDING}
POST_LIMIT = 20
EXCERPT_CHARS = 1000


@dataclass
class ChannelReport:
    created: list[int] = field(default_factory=list)
    summaries: int = 0
    posted: int = 0
    mirrored: int = 0
    invited: int = 0
    failed: dict[int, str] = field(default_factory=dict)


def slack_client(session: Session, config: ResponseConfig) -> Any:
    """The bot's WebClient for the configured (or first enabled) Slack connection."""
    from providers.slack import slack_web_client

    query = select(Connection).where(Connection.provider == "slack", col(Connection.enabled).is_(True))
    if config.channels.slack_connection:
        query = query.where(Connection.name == config.channels.slack_connection)
    connection = session.exec(query.order_by(col(Connection.id))).first()
    if connection is None:
        raise ChannelError("no enabled Slack connection for incident channels; add one with a bot_token")
    return slack_web_client(connection)


def channel_name(incident: Incident, prefix: str, drill: bool) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", incident.title.lower()).strip("-")
    head = f"{'drill-' if drill else ''}{prefix}-{incident.id}"
    return f"{head}-{slug}"[:80].rstrip("-")


def summary_text(incident: Incident, drill: bool, public_url: str) -> str:
    """The pinned summary: what the incident is now (updated in place when any of it changes)."""
    lines = [
        f"{':rotating_light: ' if not drill else ':test_tube: DRILL — '}*[{incident.priority}] "
        f"Incident #{incident.id}: {incident.title}*",
        f"Status: *{incident.status}* · Severity: {incident.severity} · "
        f"Assignee: {incident.assignee or 'nobody yet'}",
        f"Findings: {incident.finding_count} · Evidence: {incident.evidence_count} · "
        f"First seen: {as_utc(incident.first_seen):%Y-%m-%d %H:%M} UTC",
    ]
    people = (incident.entities or {}).get("people") or []
    if people:
        lines.append("People: " + ", ".join(people[:5]) + (" …" if len(people) > 5 else ""))
    lines.append(f"Open: {public_url.rstrip('/')}/incidents/{incident.id}")
    return "\n".join(lines)


def _slack_call(what: str, call: Any) -> Any:
    from slack_sdk.errors import SlackApiError, SlackClientError

    try:
        return call()
    except SlackApiError as exc:
        raise ChannelError(f"Slack refused {what}: {exc.response.get('error')}") from exc
    except (SlackClientError, OSError) as exc:
        raise ChannelError(f"Slack unreachable for {what}: {type(exc).__name__}") from exc


def _find_channel(client: Any, name: str) -> str | None:
    cursor = None
    for _ in range(50):
        page = _slack_call(
            "conversations.list",
            lambda at=cursor: client.conversations_list(
                types="public_channel,private_channel", limit=200, cursor=at
            ),
        )
        for channel in page.get("channels") or []:
            if channel.get("name") == name:
                return str(channel["id"])
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return None
    return None


def _invitees(session: Session, incident: Incident, config: ResponseConfig) -> list[str]:
    """The on-call responders paged about the incident, the assignee when a Slack id, the fixed list."""
    from oncall.service import pages_of
    from oncall.store import load_document

    responders = {r.name: r.slack_user for r in load_document(session).responders if r.slack_user}
    paged = [
        responders[p["responder"]]
        for p in pages_of(session, incident.id or 0)
        if p["responder"] in responders
    ]
    return list(
        dict.fromkeys([*config.channels.invite, *paged, *_assignee_slack(session, incident, responders)])
    )


def _assignee_slack(session: Session, incident: Incident, responders: dict[str, str]) -> list[str]:
    """The assignee's Slack id: given as one, a principal's linked Slack user, or an on-call responder's."""
    from core.models.principal import ApiPrincipal

    who = (incident.assignee or "").strip()
    if not who:
        return []
    if re.fullmatch(r"[UW][A-Z0-9]+", who):
        return [who]
    name = who.removeprefix("principal:")
    linked = session.exec(
        select(ApiPrincipal.slack_user_id).where(
            ApiPrincipal.name == name, col(ApiPrincipal.disabled).is_(False)
        )
    ).first()
    if linked:
        return [str(linked)]
    return [responders[name]] if name in responders else []


def _invite(client: Any, channel_id: str, users: list[str]) -> None:
    from slack_sdk.errors import SlackApiError, SlackClientError

    try:
        client.conversations_invite(channel=channel_id, users=",".join(users))
    except SlackApiError as exc:
        if exc.response.get("error") != "already_in_channel":
            raise ChannelError(f"Slack refused conversations.invite: {exc.response.get('error')}") from exc
    except (SlackClientError, OSError) as exc:
        raise ChannelError(f"Slack unreachable for conversations.invite: {type(exc).__name__}") from exc


def _open_channel(
    session: Session,
    client: Any,
    incident: Incident,
    state: IncidentResponse,
    config: ResponseConfig,
    now: datetime,
) -> None:
    name = channel_name(incident, config.channels.prefix, state.drill)
    from slack_sdk.errors import SlackApiError

    try:
        created = client.conversations_create(name=name, is_private=config.channels.private)
        channel_id = str(created["channel"]["id"])
    except SlackApiError as exc:
        if exc.response.get("error") != "name_taken":
            raise ChannelError(
                f"Slack refused conversations.create {name}: {exc.response.get('error')}"
            ) from exc
        found = _find_channel(client, name)  # created by a run that did not commit
        if found is None:
            raise ChannelError(
                f"channel {name} exists but the bot cannot see it; rename or archive it"
            ) from exc
        channel_id = found
    invited = _invitees(session, incident, config)
    if invited:
        _invite(client, channel_id, invited)
    topic = f"{DRILL_MARK if state.drill else ''}[{incident.priority}] #{incident.id} {incident.title}"[:250]
    _slack_call(
        "conversations.setTopic", lambda: client.conversations_setTopic(channel=channel_id, topic=topic)
    )
    text = summary_text(incident, state.drill, config.public_url)
    posted = _slack_call("chat.postMessage", lambda: client.chat_postMessage(channel=channel_id, text=text))
    ts = str(posted["ts"])
    _slack_call("pins.add", lambda: client.pins_add(channel=channel_id, timestamp=ts))
    newest = session.exec(
        select(TimelineEntry.id)
        .where(TimelineEntry.incident_id == incident.id)
        .order_by(col(TimelineEntry.id).desc())
    ).first()
    state.channel_id, state.channel_name, state.summary_ts = channel_id, name, ts
    state.summary_hash = _digest(text)
    state.own_ts = [ts]
    state.invited = invited
    state.mirrored_ts = ts
    state.posted_entry_id = int(newest or 0)
    state.channel_error = ""
    state.updated_at = now
    session.add(state)
    note(
        session,
        incident.id or 0,
        action=AuditAction.RESPONSE_CHANNEL_CREATED,
        title=f"Incident channel #{name} opened; {len(invited)} invited; summary pinned",
        details={"channel": channel_id, "name": name, "invited": invited, "summary_ts": ts},
        at=now,
        drill=state.drill,
        ref=("slack_channel", channel_id),
    )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def post_to_channel(client: Any, state: IncidentResponse, text: str) -> str:
    """Post `text` as the bot and remember its ts (so it is never mirrored back)."""
    posted = _slack_call(
        "chat.postMessage", lambda: client.chat_postMessage(channel=state.channel_id, text=text)
    )
    ts = str(posted["ts"])
    state.own_ts = [*state.own_ts[-200:], ts]
    return ts


def _refresh(
    session: Session,
    client: Any,
    incident: Incident,
    state: IncidentResponse,
    config: ResponseConfig,
    report: ChannelReport,
) -> None:
    missing = [u for u in _invitees(session, incident, config) if u not in state.invited]
    if missing:  # paged or assigned since the channel opened
        _invite(client, state.channel_id, missing)
        state.invited = [*state.invited, *missing]
        report.invited += len(missing)
        note(
            session,
            incident.id or 0,
            action=AuditAction.RESPONSE_CHANNEL_INVITED,
            title=f"Invited {len(missing)} more to #{state.channel_name} (paged or assigned since it opened)",
            details={"channel": state.channel_id, "invited": missing},
            drill=state.drill,
            ref=("slack_channel", state.channel_id),
        )
    text = summary_text(incident, state.drill, config.public_url)
    if _digest(text) != state.summary_hash:
        _slack_call(
            "chat.update",
            lambda: client.chat_update(channel=state.channel_id, ts=state.summary_ts, text=text),
        )
        state.summary_hash = _digest(text)
        report.summaries += 1
    entries = session.exec(
        select(TimelineEntry)
        .where(TimelineEntry.incident_id == incident.id, col(TimelineEntry.id) > state.posted_entry_id)
        .order_by(col(TimelineEntry.id))
        .limit(POST_LIMIT)
    ).all()
    for entry in entries:
        if entry.kind not in NOT_POSTED and entry.source != MIRROR_SOURCE:
            post_to_channel(client, state, f"_{as_utc(entry.at):%H:%M}_ {entry.title}")
            report.posted += 1
        state.posted_entry_id = int(entry.id or 0)


def _mirror(
    session: Session, client: Any, incident: Incident, state: IncidentResponse, report: ChannelReport
) -> None:
    """The people's messages since the last one mirrored, redacted, as timeline lines."""
    history = _slack_call(
        "conversations.history",
        lambda: client.conversations_history(
            channel=state.channel_id, oldest=state.mirrored_ts or "0", limit=200
        ),
    )
    own = set(state.own_ts)
    for message in sorted(history.get("messages") or [], key=lambda m: float(m["ts"])):
        ts = str(message["ts"])
        state.mirrored_ts = max(state.mirrored_ts, ts, key=float) if state.mirrored_ts else ts
        if ts in own or message.get("bot_id") or message.get("subtype"):
            continue
        clean = redact(str(message.get("text") or ""))
        author = str(message.get("user") or "someone")
        key = f"slack:{state.channel_id}:{ts}"
        exists = session.exec(
            select(TimelineEntry.id).where(
                TimelineEntry.incident_id == incident.id, TimelineEntry.dedup_key == key
            )
        ).first()
        if exists is not None:
            continue
        session.add(
            TimelineEntry(
                incident_id=incident.id or 0,
                at=datetime.fromtimestamp(float(ts), tz=UTC),
                kind=TimelineEntryKind.MESSAGE,
                source=MIRROR_SOURCE,
                title=f"message from {author} in #{state.channel_name}",
                body={
                    "channel": state.channel_id,
                    "author": author,
                    "excerpt": clean.text[:EXCERPT_CHARS],
                    "redactions": clean.counts,
                    "ts": ts,
                },
                ref_type="slack_message",
                ref_id=ts,
                actor=author[:200],
                dedup_key=key,
            )
        )
        report.mirrored += 1


def run_channels(db: Database, config: ResponseConfig, now: datetime | None = None) -> ChannelReport:
    """Open channels for urgent incidents that have none; refresh and mirror the open ones."""
    when = as_utc(now or utcnow())
    report = ChannelReport()
    if not config.channels.enabled:
        return report
    with db.session(readonly=True) as session:
        wanted = session.exec(
            select(Incident.id).where(
                col(Incident.priority).in_([p.value for p in config.channels.priorities]),
                col(Incident.merged_into_id).is_(None),
            )
        ).all()
        have = dict(session.exec(select(IncidentResponse.incident_id, IncidentResponse.channel_id)).all())
    live = {i for i in wanted if i is not None} | {i for i, channel in have.items() if channel}
    for incident_id in sorted(live):
        try:
            with db.session() as session:
                incident = session.get(Incident, incident_id)
                if incident is None:
                    continue
                state = state_for(session, incident_id)
                if not state.channel_id and incident.status in CLOSED:
                    continue
                client = slack_client(session, config)
                if not state.channel_id:
                    _open_channel(session, client, incident, state, config, when)
                    report.created.append(incident_id)
                    continue
                _mirror(session, client, incident, state, report)
                _refresh(session, client, incident, state, config, report)
                state.updated_at = when
                session.add(state)
        except (ChannelError, IntegrityError) as exc:
            report.failed[incident_id] = str(exc)
            log.warning("incident %s channel: %s", incident_id, exc)
            _failed(db, incident_id, str(exc), when)
    return report


def _failed(db: Database, incident_id: int, reason: str, when: datetime) -> None:
    with db.session() as session:
        state = state_for(session, incident_id)
        if state.channel_error == reason[:500]:
            return  # said once; a lasting failure is not a line every sweep
        state.channel_error = reason[:500]
        session.add(state)
        note(
            session,
            incident_id,
            action=AuditAction.RESPONSE_CHANNEL_FAILED,
            title=f"Incident channel: {reason[:300]}",
            details={"error": reason[:300]},
            at=when,
            drill=state.drill,
        )
