"""Who is acting: principal strings ("principal:alice", "slack:U123", "system:policy") resolved to
the ApiPrincipal behind them, so that one person reaching us through the API and through Slack
is recognised as the same person (four eyes cannot be bypassed by switching channels)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlmodel import Session, select

from core.audit import Actor
from core.models import ApiPrincipal


@dataclass(frozen=True)
class Principal:
    label: str  # canonical: "principal:<name>" for people, the given string for system actors
    role: str | None
    system: bool = False
    known: bool = True


def as_principal(actor: Actor, who: Principal) -> Actor:
    """`actor` named by its canonical principal (a Slack user is recorded as the person behind it)."""
    return replace(actor, name=who.label)


def resolve_actor(session: Session, who: str) -> Principal:
    """The canonical principal for a principal string; unknown or disabled principals have no role."""
    scheme, sep, name = who.partition(":")
    if sep and scheme == "system":
        return Principal(label=who, role=None, system=True)
    if sep and scheme == "slack":
        row = session.exec(select(ApiPrincipal).where(ApiPrincipal.slack_user_id == name)).first()
    else:
        name = name if sep and scheme == "principal" else who
        row = session.exec(select(ApiPrincipal).where(ApiPrincipal.name == name)).first()
    if row is None:
        return Principal(label=who if sep else f"principal:{who}", role=None, known=False)
    role = None if row.disabled else row.role
    return Principal(label=f"principal:{row.name}", role=role)
