"""Who is acting: principal strings resolved to the person behind them, so that four eyes compares
persons, not credentials.

- ``principal:<name>`` is an API token principal (ApiPrincipal row), its person the row's `person`;
- ``slack:<user id>`` is the principal whose Slack user id it is (a Slack click is that person);
- ``sso:<name>`` is a single sign-on (OIDC) user: their roles come from the identity provider's
  token (carried by :class:`SsoActor`), their person is their name claim, so a token principal
  linked to that person (or named like it) is the same person and never their second pair of eyes;
- ``local:<os user>`` is a CLI operator who chose not to authenticate: recorded as such, allowed
  what the machine's shell already allows (it can open the database), never an approver;
- ``system:<job>`` is the service itself (policy, scheduler).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sqlmodel import Session, select

from core.audit import Actor
from core.models import ApiPrincipal, Role
from core.permissions import Permission, role_allows

SSO_SCHEME = "sso"
LOCAL_SCHEME = "local"


@dataclass(frozen=True)
class SsoActor(Actor):
    """An authenticated single sign-on caller: the roles its identity provider's token granted."""

    roles: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Principal:
    label: str  # canonical: "principal:<name>", "sso:<name>", "local:<user>", or the system actor's string
    role: str | None
    system: bool = False
    known: bool = True
    person: str = ""
    # The person who created the principal (and so once held its token); "" when unknown.
    created_by: str = ""
    local: bool = False
    roles: frozenset[str] = frozenset()

    def may(self, permission: Permission) -> bool:
        """The permission matrix for this principal (a local operator acts as the machine's admin)."""
        held = self.roles or frozenset({self.role} if self.role else ())
        return any(role_allows(role, permission) for role in held)

    @property
    def role_names(self) -> str:
        held = self.roles or frozenset({self.role} if self.role else ())
        return ", ".join(sorted(held)) or "none (disabled)"


def as_principal(actor: Actor, who: Principal) -> Actor:
    """`actor` named by its canonical principal (a Slack user is recorded as the person behind it)."""
    return replace(actor, name=who.label)


def person_of_row(row: ApiPrincipal) -> str:
    return row.person or row.name


def resolve_actor(session: Session, who: str | Actor) -> Principal:
    """The canonical principal for a principal string; unknown or disabled principals have no role."""
    sso_roles = who.roles if isinstance(who, SsoActor) else None
    who = who.name if isinstance(who, Actor) else who
    scheme, sep, name = who.partition(":")
    if sep and scheme == "system":
        return Principal(label=who, role=None, system=True, person=who)
    if sep and scheme == LOCAL_SCHEME:
        return Principal(label=who, role=Role.ADMIN, local=True, person=who)
    if sep and scheme == SSO_SCHEME:
        roles = frozenset(sso_roles or ())
        # Without the token's roles (a stored requester, a past approval) the name still says who it was.
        return Principal(label=who, role=max(roles, default=None), known=True, person=name, roles=roles)
    if sep and scheme == "slack":
        row = session.exec(select(ApiPrincipal).where(ApiPrincipal.slack_user_id == name)).first()
    else:
        name = name if sep and scheme == "principal" else who
        row = session.exec(select(ApiPrincipal).where(ApiPrincipal.name == name)).first()
    if row is None:
        label = who if sep else f"principal:{who}"
        # Unknown: the name still names a person (a single sign-on user of that name is the same one).
        return Principal(
            label=label, role=None, known=False, person=name if scheme == "principal" or not sep else label
        )
    role = None if row.disabled else row.role
    return Principal(
        label=f"principal:{row.name}", role=role, person=person_of_row(row), created_by=row.created_by
    )
