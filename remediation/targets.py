"""Facts about targets the plan needs from what is stored: is the target an admin, which connection."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from core.models import Account, Connection, Event, Finding


def target_is_admin(session: Session, provider: str, subject: str) -> bool | None:
    """Whether the subject is an admin in that provider; None when we have no account record."""
    if not subject:
        return None
    accounts = session.exec(
        select(Account).where(
            Account.provider == str(provider),
            (Account.email == subject.lower()) | (Account.provider_user_id == subject),
        )
    ).all()
    if not accounts:
        return None
    return any(a.is_admin for a in accounts)


def connections_by_provider(session: Session, findings: Sequence[Finding]) -> dict[str, int | None]:
    """The connection each provider's steps run through: where the evidence came from, else the only one."""
    chosen: dict[str, int | None] = {}
    event_ids = [e for f in findings for e in (f.evidence_event_ids or [])][:500]
    if event_ids:
        for provider, connection_id in session.exec(
            select(Event.provider, Event.connection_id).where(col(Event.id).in_(event_ids))
        ).all():
            if connection_id is not None:
                chosen.setdefault(provider, connection_id)
    for connection in session.exec(select(Connection).where(Connection.enabled == True)).all():  # noqa: E712
        chosen.setdefault(connection.provider, connection.id)
    return chosen
