"""On-call lines on the incident's timeline: each step fired, each delivery attempt, acknowledgement.

Written in the caller's transaction beside the audit record, so the timeline and the audit chain
tell the same story.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from core.models.enums import TimelineEntryKind
from core.models.incident import TimelineEntry

TIMELINE_KIND = TimelineEntryKind.ONCALL


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
