"""Who changed a setting: join a configuration change with the admin audit events around it.

A snapshot only says *that* a value changed between two collections. The admin audit streams
(Entra directory audits and the unified audit log, Google admin activity, Slack audit logs) say
who did it. We look for admin events inside the window between the two snapshots (a little
wider, for clock skew and Google's reporting lag) that mention the object id or the setting's
name, and take the best-scoring, latest one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from sqlmodel import Session, col, select

from core.models import Event

ADMIN_STREAMS: dict[str, tuple[str, ...]] = {
    "m365": ("directory_audits", "unified_audit"),
    "google": ("admin",),
    "slack": ("audit",),
}
WINDOW_SLACK = timedelta(minutes=15)
MAX_CANDIDATES = 5000
_SETTING_WORDS = ("policy", "setting", "pref", "config", "update", "change", "set-")


@dataclass(frozen=True)
class ChangeAttribution:
    actor: str | None
    event_id: int
    provider_event_id: str
    occurred_at: datetime
    action: str | None
    score: int


_GENERIC = ("value", "state", "isenabled", "enabled")


def _leaf_names(paths: list[str]) -> tuple[list[str], list[str]]:
    """(specific leaf names, generic ones). A specific name anywhere in an event is a hint; a
    generic one (`isEnabled`, `state`) only when the event names it as a value — the way audit
    logs list a modified property (`"displayName": "isEnabled"`, Google's parameter `name`)."""
    specific: list[str] = []
    generic: list[str] = []
    for path in paths:
        leaf = path.rsplit(".", 1)[-1].lower()
        if len(leaf) < 4 or leaf in specific or leaf in generic:
            continue
        (generic if leaf in _GENERIC else specific).append(leaf)
    return specific, generic


def _named_as_value(text: str, name: str) -> bool:
    """`name` appears as a JSON string value (not as a key) in compact JSON `text`."""
    quoted = f'"{name}"'
    start = text.find(quoted)
    while start >= 0:
        end = start + len(quoted)
        if start > 0 and text[start - 1] in ":[," and not text.startswith(":", end):
            return True
        start = text.find(quoted, end)
    return False


def attribute_change(
    session: Session,
    *,
    provider: str,
    connection_id: int | None,
    object_id: str,
    paths: list[str],
    since: datetime | None,
    until: datetime,
) -> ChangeAttribution | None:
    """The admin event most likely to have made this change, or None when nothing fits."""
    streams = ADMIN_STREAMS.get(provider, ())
    if not streams:
        return None
    start = (since or until - timedelta(days=1)) - WINDOW_SLACK
    query = select(Event).where(
        Event.provider == provider,
        col(Event.stream).in_(streams),
        col(Event.occurred_at) >= start,
        col(Event.occurred_at) <= until + WINDOW_SLACK,
    )
    if connection_id is not None:
        query = query.where(Event.connection_id == connection_id)
    events = session.exec(query.order_by(col(Event.occurred_at).desc()).limit(MAX_CANDIDATES)).all()
    needle_id = object_id.lower()
    leaves, generic = _leaf_names(paths)
    best: ChangeAttribution | None = None
    for event in events:
        text = orjson.dumps(event.raw).decode().lower()
        score = 0
        if needle_id and len(needle_id) >= 4 and needle_id in text:
            score += 3
        score += 2 * sum(1 for leaf in leaves if leaf in text)
        score += 2 * sum(1 for leaf in generic if _named_as_value(text, leaf))
        action = (event.action or "").lower()
        if any(word in action for word in _SETTING_WORDS):
            score += 1
        if score < 2:
            continue
        if best is None or score > best.score:
            best = ChangeAttribution(
                event.actor,
                int(event.id or 0),
                event.provider_event_id,
                event.occurred_at,
                event.action,
                score,
            )
    return best
