"""On-call lines on the incident's timeline: each step fired, each delivery attempt, acknowledgement.

Written in the caller's transaction beside the audit record, so the timeline and the audit chain
tell the same story.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session

from core.models.enums import TimelineEntryKind
from core.models.incident import TimelineEntry

TIMELINE_KIND = TimelineEntryKind.ONCALL


def recipient(responder: str, medium: str, address: str) -> str:
    """Who a page went to, as the timeline, the audit chain and the actor of its link name it: the
    responder, a Slack channel, or a webhook / Teams channel by its host only (a Teams or webhook URL
    is itself a credential: whoever holds it can post there)."""
    if responder:
        return responder
    if medium in ("webhook", "teams"):
        return f"{medium}:{urlsplit(address).hostname or 'unknown'}"
    return address


def on_timeline(
    session: Session,
    incident_id: int,
    *,
    at: datetime,
    title: str,
    body: dict[str, Any],
    actor: str,
    ref: tuple[str, str],
) -> None:
    session.add(
        TimelineEntry(
            incident_id=incident_id,
            at=at,
            kind=TIMELINE_KIND,
            source="oncall",
            title=title[:1000],
            body=body,
            ref_type=ref[0],
            ref_id=ref[1][:200],
            actor=actor[:200],
        )
    )
