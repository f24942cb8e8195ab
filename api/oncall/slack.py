"""Slack clicks on on-call pages (Acknowledge / Escalate): signature, person, permission, action.

The Slack user is mapped to an API principal (``slack_user_id``); it must be enabled and its role
must carry ``oncall:ack``. The acknowledgement (or escalate-now) and its one audit record commit in
the same transaction; every refusal is audited too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import select

from core.audit import Actor, Channel
from core.db import Database
from core.models import ApiPrincipal, Role
from core.permissions import Permission, allows
from oncall.errors import OncallError, OncallNotFound, OncallRefused
from oncall.service import escalation_view
from oncall.slack import SlackClick, apply_click, record_refusal, verify_click
from oncall.store import get_channels


def _secret(db: Database) -> str:
    from providers.credentials import resolve_reference

    with db.session(readonly=True) as session:
        channels = get_channels(session)
    if not channels.slack_signing_secret_ref:
        raise OncallRefused(
            "no Slack signing secret configured for on-call: set channels.slack_signing_secret_ref"
        )
    return resolve_reference("slack_signing_secret", channels.slack_signing_secret_ref)


def handle_oncall_click(db: Database, body: bytes, headers: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    """(HTTP status, Slack answer) for one on-call button click."""
    click: SlackClick | None = None
    try:
        click = verify_click(body, headers, _secret(db))
        with db.session() as session:
            row = session.exec(
                select(ApiPrincipal).where(ApiPrincipal.slack_user_id == click.user_id)
            ).first()
            if row is None or row.disabled:
                raise OncallRefused(f"Slack user {click.user_id} is not a tenantguard principal")
            if not allows([Role(row.role)], Permission.ONCALL_ACK):
                raise OncallRefused(f"principal {row.name} ({row.role}) may not acknowledge pages")
            actor = Actor(f"principal:{row.name}", Channel.SLACK, click.request_ref)
            escalation = apply_click(session, click, actor)
            view = escalation_view(escalation)
    except OncallRefused as exc:
        if click is None:  # not Slack's (the API counts and rate-limits these): nothing to audit
            return 401, _answer(f"Refused: {exc}", replace=False)
        with db.session() as session:
            record_refusal(
                session,
                click.user_id,
                str(exc),
                request_ref=click.request_ref,
            )
        return 403, _answer(f"Refused: {exc}", replace=False)
    except OncallNotFound as exc:
        return 404, _answer(f"Refused: {exc}", replace=False)
    except OncallError as exc:
        return 409, _answer(f"Refused: {exc}", replace=False)
    verb = {
        "acknowledge": "Acknowledged",
        "escalate": "Escalated",
        "resolve": "Resolved",
        "reassign": f"Reassigned to {click.responder}",
    }[click.action]
    return 200, {
        **_answer(f"{verb} by <@{click.user_id}>: incident #{view['incident_id']}", replace=True),
        "escalation": {k: view[k] for k in ("id", "incident_id", "status", "next_step")},
    }


def _answer(text: str, *, replace: bool) -> dict[str, Any]:
    return {"response_type": "ephemeral", "replace_original": replace, "text": text}
