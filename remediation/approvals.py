"""Four-eyes approval of remediation steps: approve, reject, auto-approve by policy, expiry.

An approval counts only while it is unexpired, was given on the step's current version (its
fingerprint — what the step would do — and its version number, which a re-plan that changes the
step bumps), comes from a person other than the requester's (principals are linked to persons, see
remediation.principals; nor from a principal the requester created), and its approver is still
enabled. One approval per person. Every
refusal — missing role, self-approval, a decided or executed step, a replay — is written to
the audit chain (and the incident timeline) in its own transaction before the error is raised,
so a refused request leaves a trace but changes nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from core.audit import Actor, AuditAction, Channel, record
from core.clock import as_utc, utcnow
from core.db import Database
from core.models import ActionStatus, Approval, Decision, Incident, RemediationAction
from core.permissions import Permission, roles_allowed
from core.redaction import redact_typed
from remediation.catalogue import get_action
from remediation.errors import (
    ActionNotFound,
    AlreadyDecided,
    InvalidState,
    NotAllowed,
    Refused,
    SelfApproval,
    StaleStep,
)
from remediation.journal import note
from remediation.policy import ApprovalPolicy, configured_policy
from remediation.principals import Principal, as_principal, resolve_actor
from remediation.targets import target_is_admin

POLICY_PRINCIPAL = "system:policy"
POLICY_ACTOR = Actor(POLICY_PRINCIPAL, Channel.SYSTEM)
DECIDABLE = (ActionStatus.PROPOSED, ActionStatus.APPROVED, ActionStatus.FAILED)
# The shortest fingerprint prefix an approver may quote for the version they saw (Slack buttons carry 16).
FINGERPRINT_MIN = 16


@dataclass(frozen=True)
class DecisionOutcome:
    action_id: int
    status: str
    approvals: int
    approvals_required: int
    approved_by: tuple[str, ...]


@contextmanager
def audited_refusals(
    db: Database, actor: Actor, request: str, *, action_id: int | None = None, incident_id: int | None = None
) -> Iterator[None]:
    """Let a Refused escape only after recording it (the failed transaction has been rolled back)."""
    try:
        yield
    except Refused as exc:
        record_refusal(db, actor, request, exc, action_id=action_id, incident_id=incident_id)
        raise


def record_refusal(
    db: Database,
    actor: Actor,
    request: str,
    exc: Refused,
    *,
    action_id: int | None = None,
    incident_id: int | None = None,
) -> None:
    with db.session() as session:
        row = session.get(RemediationAction, action_id) if action_id is not None else None
        details = {"request": request, "code": exc.code, "reason": str(exc)}
        if row is not None:
            note(
                session,
                row,
                "refused",
                actor,
                f"Refused {request} of {row.action} — {row.subject}: {exc}",
                details,
            )
        else:
            record(
                session,
                actor=actor,
                action=AuditAction.REMEDIATION_REFUSED,
                object_type="incident" if incident_id is not None else "remediation_action",
                object_id=str(incident_id if incident_id is not None else action_id),
                details=details,
            )


@dataclass(frozen=True)
class Standing:
    """What four eyes needs to know beyond the approval rows: the requester's person, and for each
    approving principal its person, its creator and whether it may still decide."""

    requester_person: str
    requester_creator: str
    persons: dict[str, Principal]

    def counts(self, approval: Approval) -> str | None:
        """The person this approval counts for, or None when it does not count (any more)."""
        if approval.principal == POLICY_PRINCIPAL:
            return POLICY_PRINCIPAL
        who = self.persons.get(approval.principal)
        if who is None or who.local or who.system:
            return None
        if not who.label.startswith("sso:") and (not who.known or who.role is None):
            return None  # disabled (or deleted) since: the approval stops counting
        person = approval.person or who.person
        if self.requester_person in (person, who.created_by) or person == self.requester_creator:
            return None
        return person


def standing_of(
    session: Session,
    action: RemediationAction,
    approvals: Sequence[Approval],
    *,
    known: Sequence[Principal] = (),
) -> Standing:
    labels = {a.principal for a in approvals if a.principal != POLICY_PRINCIPAL} - {p.label for p in known}
    requester = resolve_actor(session, action.requested_by)
    return Standing(
        requester_person=requester.person,
        requester_creator=requester.created_by or "-",
        persons={
            **{label: resolve_actor(session, label) for label in labels},
            **{p.label: p for p in known},
        },
    )


def valid_approvals(
    action: RemediationAction, approvals: Sequence[Approval], now: datetime, standing: Standing
) -> list[Approval]:
    """Approvals that still count: approve decisions, unexpired, on the current version of the step,
    from an approver still enabled, one per person, none from the requester's person (or a principal
    the requester created)."""
    seen: set[str] = set()
    valid: list[Approval] = []
    for approval in sorted(approvals, key=lambda a: as_utc(a.at)):
        if approval.decision != Decision.APPROVE:
            continue
        if approval.fingerprint != action.fingerprint or approval.step_version != action.version:
            continue
        if approval.expires_at is not None and as_utc(approval.expires_at) <= now:
            continue
        if approval.principal == action.requested_by:
            continue
        person = standing.counts(approval)
        if person is None or person in seen:
            continue
        seen.add(person)
        valid.append(approval)
    return valid


def is_approved(
    action: RemediationAction, approvals: Sequence[Approval], now: datetime, standing: Standing
) -> bool:
    valid = valid_approvals(action, approvals, now, standing)
    if any(a.principal == POLICY_PRINCIPAL for a in valid):
        return True
    return len(valid) >= action.approvals_required


def approvals_of(session: Session, action_id: int) -> list[Approval]:
    return list(session.exec(select(Approval).where(Approval.action_id == action_id)).all())


def _policy(db: Database, policy: ApprovalPolicy | None) -> ApprovalPolicy:
    return policy or configured_policy(db.settings)


def approve(
    db: Database,
    action_id: int,
    actor: Actor,
    *,
    comment: str = "",
    request_ref: str | None = None,
    policy: ApprovalPolicy | None = None,
    now: datetime | None = None,
    seen: str | None = None,
) -> DecisionOutcome:
    """Record `actor`'s approval; the step becomes approved once the policy's count is reached.

    `seen` is the step's fingerprint (or its first 16+ hex digits) as the approver was shown it: when
    the step has changed since, the approval is refused (stale_step), never given on the new version."""
    return _decide(
        db,
        action_id,
        actor,
        Decision.APPROVE,
        comment,
        request_ref,
        _policy(db, policy),
        now or utcnow(),
        seen,
    )


def reject(
    db: Database,
    action_id: int,
    actor: Actor,
    *,
    comment: str = "",
    request_ref: str | None = None,
    policy: ApprovalPolicy | None = None,
    now: datetime | None = None,
    seen: str | None = None,
) -> DecisionOutcome:
    """Reject the step: it will not run (its dependants are stopped) unless re-planned with changes."""
    return _decide(
        db,
        action_id,
        actor,
        Decision.REJECT,
        comment,
        request_ref,
        _policy(db, policy),
        now or utcnow(),
        seen,
    )


def _decide(
    db: Database,
    action_id: int,
    caller: Actor,
    decision: Decision,
    comment: str,
    request_ref: str | None,
    policy: ApprovalPolicy,
    now: datetime,
    seen: str | None = None,
) -> DecisionOutcome:
    with db.session(readonly=True) as session:
        if session.get(RemediationAction, action_id) is None:
            raise ActionNotFound(
                f"no remediation action {action_id}; `tenantguard plan INCIDENT` lists the steps"
            )
    with audited_refusals(db, caller, str(decision), action_id=action_id), db.session() as session:
        action = session.get(RemediationAction, action_id)
        assert action is not None
        actor = resolve_actor(session, caller)
        _check_may_decide(session, action, actor, decision, request_ref, seen)
        approvals = approvals_of(session, action_id)
        standing = standing_of(session, action, approvals, known=(actor,))
        if decision == Decision.APPROVE and any(
            standing.counts(a) == actor.person for a in valid_approvals(action, approvals, now, standing)
        ):
            raise AlreadyDecided(f"{actor.person} ({actor.label}) has already approved action {action_id}")
        approval = Approval(
            action_id=action_id,
            principal=actor.label,
            decision=decision,
            comment=redact_typed(comment),
            via=caller.channel.value,
            at=now,
            expires_at=now + policy.approval_ttl if decision == Decision.APPROVE else None,
            fingerprint=action.fingerprint,
            step_version=action.version,
            person=actor.person,
            role=actor.role or "",
            request_ref=request_ref,
        )
        session.add(approval)
        session.flush()
        approvals.append(approval)
        spec = get_action(action.action)
        if decision == Decision.REJECT:
            action.status = ActionStatus.REJECTED
            event, title = "rejected", f"Rejected by {actor.label}: {spec.title} — {action.subject}"
        elif is_approved(action, approvals, now, standing):
            action.status = ActionStatus.APPROVED
            event, title = "approved", f"Approved by {actor.label}: {spec.title} — {action.subject}"
        else:
            event, title = (
                "approval_recorded",
                (
                    f"Approval {len(valid_approvals(action, approvals, now, standing))} of {action.approvals_required} "
                    f"by {actor.label}: {spec.title} — {action.subject}"
                ),
            )
        action.updated_at = now
        session.add(action)
        note(
            session,
            action,
            event,
            as_principal(caller, actor),
            title,
            {
                "comment": approval.comment,
                "expires_at": approval.expires_at.isoformat() if approval.expires_at else None,
                "person": approval.person,
                "step_version": approval.step_version,
                "fingerprint": approval.fingerprint,
            },
            now,
        )
        valid = valid_approvals(action, approvals, now, standing)
        return DecisionOutcome(
            action_id, action.status, len(valid), action.approvals_required, tuple(a.principal for a in valid)
        )


def _check_may_decide(
    session: Session,
    action: RemediationAction,
    actor: Principal,
    decision: Decision,
    request_ref: str | None,
    seen: str | None,
) -> None:
    """People only, authenticated, with the actions:decide permission (core.permissions), never on a
    request of their own person (nor one whose principal they created, or that created theirs), only on
    the version of the step they saw, each Slack click once."""
    if actor.system:
        raise NotAllowed(
            f"{actor.label} is a system actor: only people approve or reject (policy approvals are automatic)"
        )
    if actor.local and decision == Decision.APPROVE:
        raise NotAllowed(
            f"{actor.label} is an unauthenticated local operator and never counts as an approver: "
            "authenticate with your token (--token, TENANTGUARD_TOKEN or `tenantguard login`)"
        )
    if not actor.known:
        raise NotAllowed(
            f"{actor.label} is not a known principal; create it with `tenantguard principals create`"
        )
    if not actor.may(Permission.ACTIONS_DECIDE):
        raise NotAllowed(
            f"{actor.label} has role {actor.role_names}; deciding on remediation needs one of "
            f"{', '.join(roles_allowed(Permission.ACTIONS_DECIDE))}"
        )
    if action.status not in DECIDABLE:
        raise InvalidState(
            f"action {action.id} is {action.status}; only proposed or approved steps can be decided"
        )
    if seen is not None and (len(seen) < FINGERPRINT_MIN or not action.fingerprint.startswith(seen.lower())):
        raise StaleStep(
            f"action {action.id} is not the version you saw (now version {action.version}, fingerprint "
            f"{action.fingerprint[:FINGERPRINT_MIN]}): look at the plan again and decide on what it does now"
        )
    requester = resolve_actor(session, action.requested_by)
    if decision == Decision.APPROVE:
        if requester.label == actor.label or requester.person == actor.person:
            raise SelfApproval(
                f"{actor.label} is {actor.person}, who requested action {action.id} (as {requester.label}), "
                "and cannot approve it: ask another person"
            )
        if actor.created_by == requester.person or (
            requester.created_by and actor.person == requester.created_by
        ):
            raise SelfApproval(
                f"{actor.label} and the requester of action {action.id} ({requester.label}) are not "
                "independent: one created the other's principal (and saw its token); ask another person"
            )
    if request_ref and session.exec(select(Approval).where(Approval.request_ref == request_ref)).first():
        raise AlreadyDecided(f"request {request_ref} was already processed (replay)")


def try_auto_approve(
    session: Session, action: RemediationAction, incident: Incident, policy: ApprovalPolicy, now: datetime
) -> bool:
    """Approve a freshly proposed step by policy when a named auto-approve rule covers it."""
    if action.status != ActionStatus.PROPOSED:
        return False
    admin = target_is_admin(session, action.provider, action.subject)
    if admin is None:
        return False  # only a target known not to be an admin qualifies
    rule = policy.auto_approves(action.action, incident.priority, admin)
    if rule is None:
        return False
    existing = [a for a in approvals_of(session, action.id or 0) if a.principal == POLICY_PRINCIPAL]
    standing = Standing(requester_person="", requester_creator="-", persons={})
    if any(a.fingerprint == action.fingerprint for a in valid_approvals(action, existing, now, standing)):
        return False
    session.add(
        Approval(
            action_id=action.id or 0,
            principal=POLICY_PRINCIPAL,
            decision=Decision.APPROVE,
            comment=f"auto-approved: {rule.action} during a {incident.priority} on a non-admin target",
            via="policy",
            at=now,
            expires_at=now + policy.approval_ttl,
            fingerprint=action.fingerprint,
            step_version=action.version,
            person=POLICY_PRINCIPAL,
            role="policy",
        )
    )
    action.status = ActionStatus.APPROVED
    session.add(action)
    spec = get_action(action.action)
    note(
        session,
        action,
        "auto_approved",
        POLICY_ACTOR,
        f"Auto-approved by policy: {spec.title} — {action.subject}",
        {"priority": incident.priority, "rule": rule.action},
        now,
    )
    return True
