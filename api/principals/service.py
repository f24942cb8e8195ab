"""Creating, listing and disabling principals; shared by the API and `tenantguard principals`."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.errors import Conflict, NotFound, Unprocessable
from api.principals.schemas import NAME_PATTERN
from api.tokens import hash_token, new_token
from core.audit import Actor, AuditAction, record
from core.clock import utcnow
from core.db import Database
from core.models import ApiPrincipal, Role
from remediation.principals import resolve_actor


def _public(principal: ApiPrincipal) -> dict[str, Any]:
    return {
        "name": principal.name,
        "role": principal.role,
        "token_prefix": principal.token_prefix,
        "disabled": principal.disabled,
        "slack_user_id": principal.slack_user_id,
        "person": principal.person,
        "created_by": principal.created_by,
    }


def create_principal(
    db: Database,
    pepper: bytes,
    *,
    name: str,
    role: Role | str,
    actor: Actor,
    slack_user_id: str | None = None,
    person: str | None = None,
) -> tuple[ApiPrincipal, str]:
    """A new principal and its token (returned once; only its HMAC is stored).

    `person` links it to the one person behind it (default: its own name); four eyes compares
    persons. The creator's person is recorded too: having seen the token, the creator never counts
    as independent of it (remediation.approvals)."""
    if not re.match(NAME_PATTERN, name):
        raise Unprocessable(
            f"principal name {name!r} is not allowed: use letters, digits and . _ @ + - (at most 190)"
        )
    try:
        role = Role(role)
    except ValueError:
        raise Unprocessable(f"role {role!r} does not exist; choose one of {', '.join(Role)}")
    if slack_user_id is not None and not re.fullmatch(r"[UW][A-Z0-9]{1,40}", slack_user_id):
        raise Unprocessable(f"Slack user id {slack_user_id!r} is not one (U... or W..., capitals and digits)")
    if person is not None and not re.match(NAME_PATTERN, person):
        raise Unprocessable(
            f"person {person!r} is not allowed: an e-mail address or a name of letters, digits and . _ @ + -"
        )
    issued = new_token()
    principal = ApiPrincipal(
        name=name,
        role=role,
        token_hash=hash_token(issued.token, pepper),
        token_prefix=issued.key_id,
        slack_user_id=slack_user_id,
        person=person or name,
    )
    try:
        with db.session() as session:
            principal.created_by = resolve_actor(session, actor).person
            if session.exec(select(ApiPrincipal).where(ApiPrincipal.name == name)).first() is not None:
                raise Conflict(f"principal {name!r} already exists; choose another name")
            session.add(principal)
            session.flush()
            record(
                session,
                actor=actor,
                action=AuditAction.PRINCIPAL_CREATED,
                object_type="principal",
                object_id=principal.name,
                before=None,
                after=_public(principal),
            )
    except IntegrityError:
        raise Conflict(f"principal {name!r} already exists; choose another name")
    return principal, issued.token


def list_principals(session: Session) -> list[ApiPrincipal]:
    return list(session.exec(select(ApiPrincipal).order_by(col(ApiPrincipal.name))).all())


def disable_principal(db: Database, *, name: str, actor: Actor) -> ApiPrincipal:
    """Disable a principal: its token stops working at once. Already disabled: nothing changes."""
    with db.session() as session:
        principal = session.exec(select(ApiPrincipal).where(ApiPrincipal.name == name)).first()
        if principal is None:
            raise NotFound(f"principal {name!r} does not exist (see `tenantguard principals list`)")
        if principal.disabled:
            return principal
        before = _public(principal)
        principal.disabled = True
        principal.disabled_at = utcnow()
        session.add(principal)
        session.flush()
        record(
            session,
            actor=actor,
            action=AuditAction.PRINCIPAL_DISABLED,
            object_type="principal",
            object_id=principal.name,
            before=before,
            after=_public(principal),
        )
        return principal
