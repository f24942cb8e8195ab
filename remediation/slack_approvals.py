"""Approve or reject remediation steps with Slack interactive buttons.

`approval_blocks` renders a step as a Block Kit message with Approve / Reject buttons;
`post_approval_request` posts it through a Slack connection. When someone clicks, Slack POSTs
the interaction to our endpoint (the API wires it to `handle_interaction`), which

1. checks the request is Slack's: the v0 HMAC-SHA256 signature of ``v0:{timestamp}:{body}`` with
   the app's signing secret on the raw bytes, and a timestamp no older than five minutes (a replay
   window) — an unsigned request is only counted (the API rate-limits them), never audited;
2. parses the button strictly (``<action id>:<16 hex digits>``) and accepts only the Slack teams
   tenantguard is connected to;
3. maps the clicking Slack user to an ApiPrincipal through ``slack_user_id`` (so four eyes and
   roles apply exactly as through the API);
4. checks the button still refers to the step's current version (fingerprint) and that the
   interaction was not processed before (``Approval.request_ref``);
5. approves or rejects as the Slack user (``Actor(channel=slack)``, the click as request id).

Every refusal of a signed request is audited; nothing is approved on a refused request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from core.audit import Actor, AuditAction, Channel, record
from core.db import Database
from core.models import Connection, RemediationAction
from core.settings import RemediationSettings, Settings
from providers.slack_signing import SlackSignatureInvalid, verify_slack_signature
from remediation.approvals import DecisionOutcome, approve, record_refusal, reject
from remediation.catalogue import get_action
from remediation.errors import ActionNotFound, ApprovalInvalid, Refused, SlackRequestRejected
from remediation.planner import PlanStep
from remediation.policy import ApprovalPolicy

APPROVE_ID = "tenantguard_approve"
REJECT_ID = "tenantguard_reject"
FINGERPRINT_PREFIX = 16
# "<action id>:<the first 16 hex digits of the step's fingerprint>", exactly as approval_blocks writes it
_BUTTON_VALUE = re.compile(rf"([1-9][0-9]{{0,17}}):([0-9a-f]{{{FINGERPRINT_PREFIX}}})")
_SLACK_ID = re.compile(r"[A-Z0-9]{1,40}")


@dataclass(frozen=True)
class InteractionResult:
    """What to answer Slack: HTTP status and the message replacing the buttons."""

    status_code: int
    text: str
    outcome: DecisionOutcome | None = None

    def as_response(self) -> dict[str, Any]:
        return {"response_type": "ephemeral", "replace_original": self.outcome is not None, "text": self.text}


def signing_secret(settings: RemediationSettings | None = None) -> str:
    from providers.credentials import resolve_reference

    config = settings or Settings().remediation
    if not config.slack_signing_secret_ref:
        raise SlackRequestRejected(
            "no Slack signing secret configured: set TENANTGUARD_REMEDIATION_SLACK_SIGNING_SECRET_REF=env:VAR"
        )
    return resolve_reference("slack_signing_secret", config.slack_signing_secret_ref)


def check_signature(
    body: bytes, headers: Mapping[str, str], secret: str, *, now: float | None = None, max_skew: int = 300
) -> None:
    """Raise SlackRequestRejected unless the request carries a fresh, valid v0 signature (raw bytes)."""
    try:
        verify_slack_signature(body, headers, (secret,), now=now, max_skew=max_skew)
    except SlackSignatureInvalid as exc:
        raise SlackRequestRejected(str(exc)) from None


def approval_blocks(step: PlanStep, fingerprint: str) -> list[dict[str, Any]]:
    """A Block Kit message for one step: what, on whom, why, risk, and the two buttons."""
    value = f"{step.id}:{fingerprint[:FINGERPRINT_PREFIX]}"
    text = (
        f"*{step.title}* — `{step.subject}` ({step.phase}, incident #{step.incident_id})\n"
        f"*Why:* {step.reason[:1500]}\n*Risk:* {step.risk}\n*Approvals:* {len(step.approved_by)} of {step.approvals_required}"
    )
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {
            "type": "actions",
            "block_id": f"tenantguard_action_{step.id}",
            "elements": [
                {
                    "type": "button",
                    "style": "primary",
                    "action_id": APPROVE_ID,
                    "value": value,
                    "text": {"type": "plain_text", "text": "Approve"},
                },
                {
                    "type": "button",
                    "style": "danger",
                    "action_id": REJECT_ID,
                    "value": value,
                    "text": {"type": "plain_text", "text": "Reject"},
                },
            ],
        },
    ]


def post_approval_request(db: Database, connection: Connection, channel: str, step: PlanStep) -> str:
    """Post the approval message for one step; returns the message ts."""
    from providers.slack import slack_web_client

    with db.session(readonly=True) as session:
        row = session.get(RemediationAction, step.id)
        if row is None:
            raise ActionNotFound(f"no remediation action {step.id}")
        fingerprint = row.fingerprint
    client = slack_web_client(connection)
    response = client.chat_postMessage(
        channel=channel,
        text=f"Approval needed: {step.title} — {step.subject}",
        blocks=approval_blocks(step, fingerprint),
    )
    return str(response["ts"])


def handle_interaction(
    db: Database,
    body: bytes,
    headers: Mapping[str, str],
    *,
    secret: str | None = None,
    policy: ApprovalPolicy | None = None,
    now: datetime | None = None,
    clock: float | None = None,
) -> InteractionResult:
    """Verify and apply one Slack block_actions interaction (see the module docstring)."""
    config = db.settings.remediation
    try:
        check_signature(
            body, headers, secret or signing_secret(config), now=clock, max_skew=config.slack_max_skew_seconds
        )
    except SlackRequestRejected as exc:  # not Slack's: counted and rate-limited by the API, not audited
        return InteractionResult(401, f"Refused: {exc}")
    try:
        user_id, team_id, action_id, fingerprint_prefix, decision, request_ref = _parse(body)
        if team_id not in _known_teams(db):
            raise SlackRequestRejected(
                f"Slack team {team_id} is not a workspace tenantguard is connected to "
                "(TENANTGUARD_REMEDIATION_SLACK_TEAM_IDS)"
            )
    except SlackRequestRejected as exc:
        _audit_rejected_request(db, exc)
        return InteractionResult(401, f"Refused: {exc}")
    actor = Actor(f"slack:{user_id}", Channel.SLACK, request_ref)
    try:
        with db.session(readonly=True) as session:
            row = session.get(RemediationAction, action_id)
            if row is None:
                raise ActionNotFound(f"no remediation action {action_id}")
            current = row.fingerprint
        if not current.startswith(fingerprint_prefix):
            outdated = ApprovalInvalid(
                f"the button was for an earlier version of action {action_id}; the plan changed, ask for a new message"
            )
            record_refusal(db, actor, f"slack {decision}", outdated, action_id=action_id)
            return InteractionResult(409, f"Refused: {outdated}")
        decide = approve if decision == "approve" else reject
        outcome = decide(
            db, action_id, actor, request_ref=request_ref, policy=policy, now=now, seen=fingerprint_prefix
        )
    except ActionNotFound as exc:
        return InteractionResult(404, f"Refused: {exc}")
    except Refused as exc:
        return InteractionResult(
            403 if exc.code in ("not_allowed", "self_approval") else 409, f"Refused: {exc}"
        )
    spec_title = get_action(row.action).title
    return InteractionResult(
        200,
        f"{decision.capitalize()}d by <@{user_id}>: {spec_title} — {row.subject} "
        f"({outcome.approvals} of {outcome.approvals_required} approvals; status {outcome.status})",
        outcome,
    )


def _parse(body: bytes) -> tuple[str, str, int, str, str, str]:
    """(slack user id, team id, action id, fingerprint prefix, approve|reject, request ref) from the form
    body; anything but the exact shape our buttons send is refused."""
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True)
        payload = json.loads(form["payload"][0])
        user_id = str(payload["user"]["id"])
        team_id = str(payload["team"]["id"])
        clicked = payload["actions"][0]
        kind = {APPROVE_ID: "approve", REJECT_ID: "reject"}[clicked["action_id"]]
        value = _BUTTON_VALUE.fullmatch(str(clicked["value"]))
        action_ts = str(clicked["action_ts"])
    except (UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise SlackRequestRejected(
            f"not a tenantguard block_actions payload ({type(exc).__name__})"
        ) from None
    if value is None:
        raise SlackRequestRejected(
            "the button value is not '<action id>:<16 hex digits>' as tenantguard sends it"
        )
    if not (_SLACK_ID.fullmatch(user_id) and _SLACK_ID.fullmatch(team_id)):
        raise SlackRequestRejected("the Slack user or team id is not an id Slack issues")
    return user_id, team_id, int(value[1]), value[2], kind, f"slack:{team_id}:{user_id}:{action_ts[:40]}"


def _known_teams(db: Database) -> set[str]:
    """The Slack workspaces (and Enterprise Grid orgs) tenantguard is connected to, plus any the
    operator names (TENANTGUARD_REMEDIATION_SLACK_TEAM_IDS)."""
    from sqlmodel import select

    teams = set(db.settings.remediation.slack_team_ids)
    with db.session(readonly=True) as session:
        for connection in session.exec(select(Connection).where(Connection.provider == "slack")).all():
            teams.update(str(t) for t in (connection.config.get("team_id"), connection.tenant) if t)
    return teams


def _audit_rejected_request(db: Database, exc: SlackRequestRejected) -> None:
    """A request Slack signed whose content is refused (a signed request is evidence worth keeping)."""
    with db.session() as session:
        record(
            session,
            actor=Actor("slack:signed", Channel.SLACK),
            action=AuditAction.REMEDIATION_REFUSED,
            object_type="slack_request",
            object_id="-",
            details={"request": "slack interaction", "code": exc.code, "reason": str(exc)[:300]},
        )
