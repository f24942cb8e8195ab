"""Execution and rollback of approved steps, through the providers' APIs.

For each step, in plan order: check it is approved (valid, unexpired approvals on its current
fingerprint) and that the steps it depends on succeeded; read the target (a missing target is
refused, nothing written); skip the write when the state is already right; write; read back to
verify. The step's status, the exact calls, the provider's response ids and the state before
the change (what rollback restores) are stored, and each transition goes to the audit chain and
the incident timeline. Re-running a succeeded step does nothing (idempotent). In a dry run the
reads are made, the writes are only listed, and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlmodel import col, select

from core.audit import Actor
from core.clock import as_utc, isoformat, utcnow
from core.db import Database
from core.models import ActionStatus, Connection, RemediationAction
from core.permissions import Permission, roles_allowed
from core.settings import Settings
from providers.calls import CallLog, HttpCall
from providers.errors import ProviderError
from remediation.approvals import (
    Standing,
    approvals_of,
    audited_refusals,
    is_approved,
    standing_of,
    valid_approvals,
)
from remediation.catalogue import ActionSpec, get_action
from remediation.connections import open_gateway
from remediation.errors import (
    ActionNotFound,
    ApprovalInvalid,
    ConnectionUnavailable,
    InvalidState,
    NotAllowed,
    Refused,
)
from remediation.journal import note
from remediation.principals import as_principal, resolve_actor

EXECUTOR = Actor.system("remediation")
RUNNABLE = (ActionStatus.APPROVED, ActionStatus.FAILED, ActionStatus.RUNNING)
STALE_RUN = timedelta(minutes=10)
STOPPING = (ActionStatus.FAILED, ActionStatus.REJECTED, ActionStatus.SKIPPED, ActionStatus.ROLLED_BACK)

GatewayFactory = Callable[[Connection | None, CallLog], Any]


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"  # changed and verified
    UNCHANGED = "unchanged"  # the state was already right; nothing written
    ALREADY_DONE = "already_done"  # succeeded in an earlier run; nothing called
    DRY_RUN = "dry_run"
    FAILED = "failed"
    REFUSED = "refused"
    STOPPED = "stopped"  # a step it depends on failed or was rejected
    WAITING = "waiting"  # not approved yet, or waits for a step that has not run
    ROLLED_BACK = "rolled_back"


@dataclass(frozen=True)
class StepResult:
    action_id: int
    action: str
    subject: str
    outcome: Outcome
    message: str = ""
    calls: tuple[HttpCall, ...] = ()
    verification: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "action_id": self.action_id,
            "action": self.action,
            "subject": self.subject,
            "outcome": str(self.outcome),
            "message": self.message,
            "calls": [c.as_dict() for c in self.calls],
            "verification": self.verification,
        }


@dataclass(frozen=True)
class ExecutionReport:
    dry_run: bool
    results: tuple[StepResult, ...]

    @property
    def ok(self) -> bool:
        return not any(r.outcome in (Outcome.FAILED, Outcome.REFUSED, Outcome.STOPPED) for r in self.results)

    def by_outcome(self, outcome: Outcome) -> list[StepResult]:
        return [r for r in self.results if r.outcome == outcome]

    @property
    def calls(self) -> list[HttpCall]:
        return [c for r in self.results for c in r.calls]

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "ok": self.ok, "results": [r.as_dict() for r in self.results]}


def _select(
    db: Database, incident_id: int | None, action_ids: Sequence[int] | None
) -> list[RemediationAction]:
    if incident_id is None and not action_ids:
        raise ActionNotFound("name an incident or at least one action id to execute")
    with db.session(readonly=True) as session:
        query = select(RemediationAction)
        if action_ids:
            query = query.where(col(RemediationAction.id).in_(list(action_ids)))
        if incident_id is not None:
            query = query.where(RemediationAction.incident_id == incident_id)
        rows = list(
            session.exec(
                query.order_by(
                    col(RemediationAction.incident_id),
                    col(RemediationAction.position),
                    col(RemediationAction.id),
                )
            ).all()
        )
    missing = set(action_ids or ()) - {r.id for r in rows}
    if missing:
        raise ActionNotFound(f"no remediation action(s) {', '.join(map(str, sorted(missing)))}")
    return rows


def execute(
    db: Database,
    settings: Settings | None = None,
    incident_id: int | None = None,
    *,
    action_ids: Sequence[int] | None = None,
    dry_run: bool = False,
    actor: Actor = EXECUTOR,
    gateway_factory: GatewayFactory = open_gateway,
    now: datetime | None = None,
) -> ExecutionReport:
    """Run the approved steps of an incident (or the given steps) in plan order.

    `settings` is accepted for symmetry with the other stage entry points (connections and
    their secrets come from the database and the environment).
    """
    rows = _select(db, incident_id, action_ids)
    if not dry_run:
        _check_executor(db, actor, incident_id, action_ids)
    results: list[StepResult] = []
    for row in rows:
        explicit = bool(action_ids)
        results.append(_run_step(db, row.id or 0, explicit, dry_run, actor, gateway_factory, now or utcnow()))
    return ExecutionReport(dry_run, tuple(results))


def _check_executor(
    db: Database, actor: Actor, incident_id: int | None, action_ids: Sequence[int] | None
) -> None:
    """A person running approved steps needs the actions:execute permission (approval is the gate)."""
    first = action_ids[0] if action_ids else None
    with audited_refusals(db, actor, "execute", action_id=first, incident_id=incident_id):
        with db.session(readonly=True) as session:
            who = resolve_actor(session, actor)
        if not who.system and not who.may(Permission.ACTIONS_EXECUTE):
            raise NotAllowed(
                f"{actor} may not execute remediation (role {who.role_names}); needs one of "
                f"{', '.join(roles_allowed(Permission.ACTIONS_EXECUTE))}"
            )


def _run_step(
    db: Database,
    action_id: int,
    explicit: bool,
    dry_run: bool,
    actor: Actor,
    factory: GatewayFactory,
    now: datetime,
) -> StepResult:
    with db.session(readonly=True) as session:
        row = session.get(RemediationAction, action_id)
        assert row is not None
        approvals = approvals_of(session, action_id)
        standing = standing_of(session, row, approvals)
        deps = {
            d.id: d.status
            for d in session.exec(
                select(RemediationAction).where(col(RemediationAction.id).in_(row.depends_on or []))
            ).all()
        }
        connection = session.get(Connection, row.connection_id) if row.connection_id else None
    spec = get_action(row.action)
    base: dict[str, Any] = {"action_id": action_id, "action": row.action, "subject": row.subject}

    if row.status == ActionStatus.SUCCEEDED:
        return StepResult(**base, outcome=Outcome.ALREADY_DONE, message="succeeded earlier; nothing to do")
    if row.status in (ActionStatus.REJECTED, ActionStatus.SKIPPED, ActionStatus.ROLLED_BACK):
        return StepResult(
            **base,
            outcome=Outcome.STOPPED if row.status != ActionStatus.ROLLED_BACK else Outcome.ROLLED_BACK,
            message=f"step is {row.status}",
        )

    if not dry_run:
        gate = _gate(db, row, approvals, standing, explicit, actor, now)
        if gate is not None:
            return StepResult(**base, outcome=gate[0], message=gate[1])
        blocked = {d: s for d, s in deps.items() if s in STOPPING}
        if blocked:
            return _stop(db, row, actor, blocked, now)
        pending = {d: s for d, s in deps.items() if s != ActionStatus.SUCCEEDED}
        if pending:
            return StepResult(
                **base,
                outcome=Outcome.WAITING,
                message=f"waits for step(s) {', '.join(str(d) for d in sorted(d for d in pending if d is not None))}",
            )

    log = CallLog(dry_run=dry_run)
    try:
        gateway = factory(connection, log)
    except ConnectionUnavailable as exc:
        # Nothing was called: a missing secret or a disabled connection is the operator's to fix,
        # so the step stays approved (and its dependents wait) instead of failing for good.
        if not dry_run:
            with db.session() as session:
                fresh = session.get(RemediationAction, row.id)
                assert fresh is not None
                note(
                    session,
                    fresh,
                    "not_run",
                    actor,
                    f"Not run: {spec.title} — {row.subject}: {exc} (still approved; fix it and execute again)",
                    {"error": str(exc)},
                    now,
                )
        return StepResult(
            **base,
            outcome=Outcome.FAILED,
            message=f"{exc} — not run, still approved: fix it and execute again",
        )

    if not dry_run and not _claim(db, row, actor, now):
        return StepResult(**base, outcome=Outcome.WAITING, message="another executor is running this step")
    try:
        outcome, message, verification, before = _perform(spec, gateway, row.target, row.params)
    except Refused as exc:  # raised by the inspect read: a missing or protected target
        if not dry_run:
            _finish(
                db,
                row,
                ActionStatus.SKIPPED,
                actor,
                "refused",
                f"Refused (nothing executed): {spec.title} — {row.subject}: {exc}",
                {"code": exc.code, "reason": str(exc)},
                log,
                now,
            )
        return StepResult(**base, outcome=Outcome.REFUSED, message=str(exc), calls=tuple(log.calls))
    except ProviderError as exc:
        if not dry_run:
            _finish(
                db,
                row,
                ActionStatus.FAILED,
                actor,
                "failed",
                f"Failed: {spec.title} — {row.subject}: {exc}",
                {"error": str(exc)},
                log,
                now,
            )
        return StepResult(**base, outcome=Outcome.FAILED, message=str(exc), calls=tuple(log.calls))

    if dry_run:
        return StepResult(
            **base,
            outcome=Outcome.DRY_RUN,
            message=message,
            calls=tuple(log.calls),
            verification=verification,
        )
    status = ActionStatus.SUCCEEDED if outcome != Outcome.FAILED else ActionStatus.FAILED
    event = "succeeded" if status == ActionStatus.SUCCEEDED else "failed"
    title = f"{'Done' if status == ActionStatus.SUCCEEDED else 'Failed'}: {spec.title} — {row.subject} ({message})"
    details = {
        "outcome": str(outcome),
        "changed": outcome == Outcome.SUCCEEDED,
        "before": before,
        "verification": verification,
    }
    _finish(
        db, row, status, actor, event, title, details, log, now, verified=status == ActionStatus.SUCCEEDED
    )
    return StepResult(
        **base, outcome=outcome, message=message, calls=tuple(log.calls), verification=verification
    )


def _perform(
    spec: ActionSpec, gateway: Any, target: dict[str, Any], params: dict[str, Any]
) -> tuple[Outcome, str, dict[str, Any], dict[str, Any]]:
    operation = spec.operation
    before = operation.inspect(gateway, target, params)
    if operation.satisfied(before, params):
        return Outcome.UNCHANGED, "already in the desired state; nothing written", {}, before
    operation.apply(gateway, target, params, before)
    if gateway.log.dry_run:
        writes = "; ".join(c.describe() for c in gateway.log.writes)
        return Outcome.DRY_RUN, f"would call: {writes}", {"would_verify": spec.verification}, before
    check = operation.verify(gateway, target, params, before)
    if not check.ok:
        return Outcome.FAILED, f"verification failed: {spec.verification}", check.observed, before
    return Outcome.SUCCEEDED, "changed and verified", check.observed, before


def _gate(
    db: Database,
    row: RemediationAction,
    approvals: list[Any],
    standing: Standing,
    explicit: bool,
    actor: Actor,
    now: datetime,
) -> tuple[Outcome, str] | None:
    """None when the step may run; otherwise why not (refusals audited, stale approvals reset)."""
    if row.status == ActionStatus.PROPOSED:
        if explicit:
            _refuse(
                db,
                row,
                actor,
                ApprovalInvalid(
                    f"action {row.id} is not approved; it needs {row.approvals_required} approval(s)"
                ),
            )
            return Outcome.REFUSED, "not approved"
        return (
            Outcome.WAITING,
            f"waits for approval ({len(valid_approvals(row, approvals, now, standing))} of {row.approvals_required})",
        )
    if row.status not in RUNNABLE:
        return Outcome.STOPPED, f"step is {row.status}"
    if is_approved(row, approvals, now, standing):
        return None
    given = [a for a in approvals if a.decision == "approve"]
    expired = [a.principal for a in given if a.expires_at is not None and a.expires_at <= now]
    stale = [a.principal for a in given if a.fingerprint != row.fingerprint or a.step_version != row.version]
    gone = [a.principal for a in given if standing.counts(a) is None]
    why = "the approvals are no longer valid"
    if expired:
        why = f"approval(s) by {', '.join(expired)} expired"
    elif stale:
        why = f"approval(s) by {', '.join(stale)} were given on a different version of the step"
    elif gone:
        why = f"approval(s) by {', '.join(gone)} no longer count (approver disabled, or not independent)"
    exc = ApprovalInvalid(f"action {row.id}: {why}; approve it again")
    _refuse(db, row, actor, exc, reset=True, now=now)
    return Outcome.REFUSED, str(exc)


def _refuse(
    db: Database,
    row: RemediationAction,
    actor: Actor,
    exc: Refused,
    *,
    reset: bool = False,
    now: datetime | None = None,
) -> None:
    from remediation.approvals import record_refusal

    if reset:
        with db.session() as session:
            fresh = session.get(RemediationAction, row.id)
            if fresh is not None and fresh.status in RUNNABLE:
                fresh.status = ActionStatus.PROPOSED
                fresh.updated_at = now or utcnow()
                session.add(fresh)
    record_refusal(db, actor, "execute", exc, action_id=row.id)


def _stop(
    db: Database, row: RemediationAction, actor: Actor, blocked: dict[int | None, str], now: datetime
) -> StepResult:
    spec = get_action(row.action)
    why = ", ".join(f"step {d} {s}" for d, s in sorted(blocked.items(), key=lambda kv: kv[0] or 0))
    with db.session() as session:
        fresh = session.get(RemediationAction, row.id)
        assert fresh is not None
        fresh.status = ActionStatus.SKIPPED
        fresh.result = {**(fresh.result or {}), "execution": {"outcome": "stopped", "reason": why}}
        fresh.updated_at = now
        session.add(fresh)
        note(
            session,
            fresh,
            "stopped",
            actor,
            f"Stopped (not executed): {spec.title} — {row.subject}: {why}",
            {"reason": why},
            now,
        )
    return StepResult(row.id or 0, row.action, row.subject, Outcome.STOPPED, f"not run: {why}")


def _claim(db: Database, row: RemediationAction, actor: Actor, now: datetime) -> bool:
    """Mark the step running unless another executor holds it (a RUNNING step older than
    STALE_RUN is taken over: its executor died; inspect-before-write makes the re-run safe)."""
    spec = get_action(row.action)
    with db.session() as session:
        fresh = session.exec(
            select(RemediationAction).where(RemediationAction.id == row.id).with_for_update()
        ).one()
        held = fresh.status == ActionStatus.RUNNING and as_utc(fresh.updated_at) > now - STALE_RUN
        if held or fresh.status not in RUNNABLE:
            return False
        fresh.status = ActionStatus.RUNNING
        fresh.updated_at = now
        session.add(fresh)
        note(session, fresh, "execution_started", actor, f"Executing: {spec.title} — {row.subject}", {}, now)
        return True


def _finish(
    db: Database,
    row: RemediationAction,
    status: ActionStatus,
    actor: Actor,
    event: str,
    title: str,
    details: dict[str, Any],
    log: CallLog,
    now: datetime,
    *,
    verified: bool = False,
) -> None:
    calls = [c.as_dict() for c in log.calls]
    with db.session() as session:
        fresh = session.get(RemediationAction, row.id)
        assert fresh is not None
        fresh.status = status
        fresh.result = {
            **(fresh.result or {}),
            "execution": {**details, "calls": calls, "at": isoformat(now)},
        }
        fresh.provider_response_ids = [*fresh.provider_response_ids, *log.response_ids]
        fresh.executed_at = now
        fresh.updated_at = now
        if verified:
            fresh.verified_at = utcnow()
        session.add(fresh)
        summary = {k: v for k, v in details.items() if k != "before"}
        note(
            session,
            fresh,
            event,
            actor,
            title,
            {
                **summary,
                "calls": [c.describe() for c in log.calls if c.kind == "write"],
                "response_ids": log.response_ids,
            },
            now,
        )


# --------------------------------------------------------------------------- rollback


def rollback(
    db: Database,
    settings: Settings | None = None,
    action_id: int | None = None,
    *,
    incident_id: int | None = None,
    actor: Actor,
    dry_run: bool = False,
    gateway_factory: GatewayFactory = open_gateway,
    now: datetime | None = None,
) -> ExecutionReport:
    """Undo succeeded, reversible steps (one, or every one of an incident in reverse order)."""
    now = now or utcnow()
    rows = _select(db, incident_id, [action_id] if action_id is not None else None)
    if action_id is None:
        rows = [r for r in reversed(rows) if r.status == ActionStatus.SUCCEEDED and r.reversible]
    with (
        audited_refusals(db, actor, "rollback", action_id=action_id, incident_id=incident_id),
        db.session(readonly=True) as session,
    ):
        who = resolve_actor(session, actor)
        if who.system or not who.may(Permission.ACTIONS_ROLLBACK):
            raise NotAllowed(
                f"{actor} may not roll back remediation: needs one of "
                f"{', '.join(roles_allowed(Permission.ACTIONS_ROLLBACK))}"
            )
    resolved = as_principal(actor, who)
    results = [_rollback_step(db, row.id or 0, resolved, dry_run, gateway_factory, now) for row in rows]
    return ExecutionReport(dry_run, tuple(results))


def _rollback_step(
    db: Database, action_id: int, actor: Actor, dry_run: bool, factory: GatewayFactory, now: datetime
) -> StepResult:
    with db.session(readonly=True) as session:
        row = session.get(RemediationAction, action_id)
        assert row is not None
        connection = session.get(Connection, row.connection_id) if row.connection_id else None
    spec = get_action(row.action)
    base: dict[str, Any] = {"action_id": action_id, "action": row.action, "subject": row.subject}
    with audited_refusals(db, actor, "rollback", action_id=action_id):
        if row.status != ActionStatus.SUCCEEDED:
            raise InvalidState(
                f"action {action_id} is {row.status}; only a succeeded step can be rolled back"
            )
        if not spec.reversible:
            raise InvalidState(f"{spec.name} is irreversible; action {action_id} cannot be rolled back")
    execution = (row.result or {}).get("execution", {})
    if not execution.get("changed") or spec.inverse is None:
        why = "it changed nothing" if not execution.get("changed") else "its effect ends by itself"
        if not dry_run:
            _finish_rollback(
                db,
                row,
                actor,
                f"Rolled back (nothing to undo: {why}): {spec.title} — {row.subject}",
                {"undone": False, "reason": why},
                CallLog(),
                now,
            )
        return StepResult(
            **base,
            outcome=Outcome.ROLLED_BACK if not dry_run else Outcome.DRY_RUN,
            message=f"nothing to undo: {why}",
        )
    inverse = get_action(spec.inverse)
    target, params = spec.operation.inverse_request(row.target, row.params, execution.get("before") or {})
    log = CallLog(dry_run=dry_run)
    try:
        gateway = factory(connection, log)
        outcome, message, verification, _ = _perform(inverse, gateway, target, params)
    except (ConnectionUnavailable, ProviderError, Refused) as exc:
        if not dry_run:
            with db.session() as session:
                fresh = session.get(RemediationAction, action_id)
                assert fresh is not None
                note(
                    session,
                    fresh,
                    "rollback_failed",
                    actor,
                    f"Rollback failed: {spec.title} — {row.subject}: {exc}",
                    {"error": str(exc), "calls": [c.describe() for c in log.calls]},
                    now,
                )
        return StepResult(**base, outcome=Outcome.FAILED, message=str(exc), calls=tuple(log.calls))
    if dry_run:
        return StepResult(**base, outcome=Outcome.DRY_RUN, message=message, calls=tuple(log.calls))
    if outcome == Outcome.FAILED:
        with db.session() as session:
            fresh = session.get(RemediationAction, action_id)
            assert fresh is not None
            note(
                session,
                fresh,
                "rollback_failed",
                actor,
                f"Rollback not verified: {spec.title} — {row.subject}",
                {"verification": verification},
                now,
            )
        return StepResult(
            **base, outcome=Outcome.FAILED, message=message, calls=tuple(log.calls), verification=verification
        )
    _finish_rollback(
        db,
        row,
        actor,
        f"Rolled back with {inverse.name}: {spec.title} — {row.subject}",
        {"undone": True, "inverse": inverse.name, "verification": verification},
        log,
        now,
    )
    return StepResult(
        **base,
        outcome=Outcome.ROLLED_BACK,
        message=f"undone with {inverse.name}; {message}",
        calls=tuple(log.calls),
        verification=verification,
    )


def _finish_rollback(
    db: Database,
    row: RemediationAction,
    actor: Actor,
    title: str,
    details: dict[str, Any],
    log: CallLog,
    now: datetime,
) -> None:
    with db.session() as session:
        fresh = session.get(RemediationAction, row.id)
        assert fresh is not None
        fresh.status = ActionStatus.ROLLED_BACK
        fresh.rolled_back_at = now
        fresh.updated_at = now
        fresh.result = {
            **(fresh.result or {}),
            "rollback": {**details, "calls": [c.as_dict() for c in log.calls], "at": isoformat(now)},
        }
        fresh.provider_response_ids = [*fresh.provider_response_ids, *log.response_ids]
        session.add(fresh)
        note(
            session,
            fresh,
            "rolled_back",
            actor,
            title,
            {**details, "calls": [c.describe() for c in log.writes], "response_ids": log.response_ids},
            now,
        )
