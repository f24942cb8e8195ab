"""Declared change windows: who changes what, when, under which change reference.

A finding whose evidence was all done by a window's declared actor inside the window opens no
incident: it is reported with the change reference in the daily digest (see
:mod:`timeline.noise`). Declaring and cancelling are mutations: the caller's role is checked by
the API/CLI, and each writes its audit record in the same transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from core.audit import Actor, AuditAction, record
from core.clock import as_utc, isoformat, utcnow
from core.db import Database
from core.models.noise import ChangeWindow
from timeline.entities import normalise_email
from timeline.errors import ChangeWindowError

# A change window is for a change, not a standing exemption.
MAX_WINDOW = timedelta(days=7)
MAX_REFERENCE = 200
MAX_DESCRIPTION = 2000


def window_dict(window: ChangeWindow) -> dict[str, Any]:
    return {
        "id": window.id,
        "reference": window.reference,
        "actor": window.actor,
        "starts_at": isoformat(window.starts_at),
        "ends_at": isoformat(window.ends_at),
        "description": window.description,
        "created_by": window.created_by,
        "created_at": isoformat(window.created_at),
        "cancelled_at": isoformat(window.cancelled_at) if window.cancelled_at else None,
        "cancelled_by": window.cancelled_by,
    }


def declare_change_window(
    db: Database,
    *,
    reference: str,
    actor_email: str,
    starts_at: datetime,
    ends_at: datetime,
    description: str = "",
    actor: Actor,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Store a change window (audited); raises ChangeWindowError naming what is wrong."""
    reference = reference.strip()
    if not reference or len(reference) > MAX_REFERENCE:
        raise ChangeWindowError(
            f"reference must be 1–{MAX_REFERENCE} characters (the change's id, e.g. CHG-5102)"
        )
    email = normalise_email(actor_email)
    if "@" not in email or len(email) > 320:
        raise ChangeWindowError(f"actor {actor_email!r} is not an email address (who carries out the change)")
    if len(description) > MAX_DESCRIPTION:
        raise ChangeWindowError(f"description is longer than {MAX_DESCRIPTION} characters")
    start, end = as_utc(starts_at), as_utc(ends_at)
    if end <= start:
        raise ChangeWindowError(f"ends_at {isoformat(end)} is not after starts_at {isoformat(start)}")
    if end - start > MAX_WINDOW:
        raise ChangeWindowError(
            f"the window is {end - start} long; at most {MAX_WINDOW.days} days (declare each change on its own)"
        )
    when = now or utcnow()
    with db.session() as session:
        window = ChangeWindow(
            reference=reference,
            actor=email,
            starts_at=start,
            ends_at=end,
            description=description.strip(),
            created_by=actor.name,
            created_at=when,
        )
        session.add(window)
        session.flush()
        record(
            session,
            actor=actor,
            action=AuditAction.CHANGE_WINDOW_DECLARED,
            object_type="change_window",
            object_id=window.id or 0,
            details={
                "reference": reference,
                "actor": email,
                "starts_at": isoformat(start),
                "ends_at": isoformat(end),
            },
            at=when,
        )
        return window_dict(window)


def cancel_change_window(
    db: Database, window_id: int, *, actor: Actor, now: datetime | None = None
) -> dict[str, Any] | None:
    """Cancel a window (audited); None when there is no such window. Findings already reported
    inside it stay reported; later ones in its time are judged as if it never existed."""
    when = now or utcnow()
    with db.session() as session:
        window = session.get(ChangeWindow, window_id, with_for_update=True)
        if window is None:
            return None
        if window.cancelled_at is not None:
            raise ChangeWindowError(
                f"change window {window_id} was already cancelled by {window.cancelled_by}"
            )
        window.cancelled_at = when
        window.cancelled_by = actor.name
        session.add(window)
        record(
            session,
            actor=actor,
            action=AuditAction.CHANGE_WINDOW_CANCELLED,
            object_type="change_window",
            object_id=window_id,
            details={"reference": window.reference},
            at=when,
        )
        return window_dict(window)


def list_change_windows(
    db: Database, *, include_cancelled: bool = False, limit: int = 200
) -> list[dict[str, Any]]:
    with db.session(readonly=True) as session:
        query = select(ChangeWindow).order_by(col(ChangeWindow.starts_at).desc(), col(ChangeWindow.id).desc())
        if not include_cancelled:
            query = query.where(col(ChangeWindow.cancelled_at).is_(None))
        return [window_dict(w) for w in session.execute(query.limit(limit)).scalars()]
