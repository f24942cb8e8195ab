"""The planner: an incident's findings + playbooks -> one ordered, de-duplicated plan.

`propose_steps` is pure (findings in, proposed steps out). `plan_for_incident` stores the
proposal as RemediationAction rows: a step already in the plan (same idempotency key) is
updated, never duplicated, and keeps its approvals as long as what it would do (its
fingerprint) is unchanged — so re-planning when new findings arrive loses no approval.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlmodel import Session, col, select

from core.audit import Actor
from core.clock import isoformat, utcnow
from core.db import Database
from core.errors import IncidentNotFoundError
from core.models import (
    ActionStatus,
    Approval,
    ConfigSnapshot,
    Finding,
    FindingStatus,
    Incident,
    RemediationAction,
)
from core.permissions import Permission, roles_allowed
from core.redaction import redact_typed
from remediation.catalogue import ActionSpec, BlastRadius, Phase, Risk, get_action
from remediation.errors import CatalogueError, NotAllowed
from remediation.journal import note
from remediation.playbooks import (
    ENTITY_VARIABLES,
    Playbook,
    PlaybookStep,
    Unbound,
    fill,
    load_playbooks,
    template_variables,
)
from remediation.policy import ApprovalPolicy, configured_policy
from remediation.principals import as_principal, resolve_actor
from remediation.targets import connections_by_provider, target_is_admin

SNAPSHOT_BEFORE = "@snapshot_before"
# Which fields of a snapshot a restore writes back, per configuration object type.
RESTORABLE_FIELDS = {"ca_policy": ("displayName", "state", "conditions", "grantControls", "sessionControls")}
_SNAPSHOT_TYPES = {"m365.restore_ca_policy": ("ca_policy", "policy_id")}
# A step called for by many findings names this many of them in its reason (and counts the rest).
MAX_NAMED_FINDINGS = 8
_SUBJECT_FIELDS = ("user", "file_id", "item_id", "file", "app", "policy_id", "policy_name", "grant_id")


# --------------------------------------------------------------------------- pure part


@dataclass(frozen=True)
class ProposedStep:
    action: str
    phase: Phase
    target: dict[str, Any]
    params: dict[str, Any]
    subject: str
    reasons: tuple[str, ...]
    finding_ids: tuple[int, ...]
    playbooks: tuple[str, ...]
    after: tuple[str, ...]
    key: str
    order: tuple[int, int, int]  # phase, playbook step index, first finding


@dataclass(frozen=True)
class PlanNote:
    playbook: str
    action: str
    finding_id: int | None
    reason: str

    def __str__(self) -> str:
        return f"{self.action} (playbook {self.playbook}, finding #{self.finding_id}): {self.reason}"


@dataclass
class _Merge:
    step: ProposedStep
    # why -> the playbooks and findings that call for it (one sentence, however many findings)
    reasons: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    finding_ids: list[int] = field(default_factory=list)
    playbooks: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)


SnapshotLookup = Callable[[str, str, datetime], dict[str, Any] | None]


def subject_of(target: dict[str, Any]) -> str:
    for name in _SUBJECT_FIELDS:
        if target.get(name):
            return str(target[name])
    return "tenant"


def _finding_variables(finding: Finding, incident: Incident) -> dict[str, Any]:
    return {
        "finding": {
            "id": finding.id,
            "rule_id": finding.rule_id,
            "provider": finding.provider,
            "first_seen": isoformat(finding.first_seen),
            "last_seen": isoformat(finding.last_seen),
        },
        "incident": {
            "id": incident.id,
            "priority": incident.priority,
            "first_seen": isoformat(incident.first_seen),
        },
        "context": finding.context or {},
    }


def _bindings(step: PlaybookStep, finding: Finding, incident: Incident) -> Iterable[dict[str, Any]]:
    """One variable set per combination of the entities the step's templates name."""
    base = _finding_variables(finding, incident)
    used = {
        alt.split(".")[0]
        for v in template_variables(step.target) | template_variables(step.params)
        for alt in v.split("|")
    }
    names = sorted(used & set(ENTITY_VARIABLES) | ({"person"} if "domain" in used else set()))
    entities = finding.entities or {}
    choices: list[list[tuple[str, str | None]]] = [
        [(name, value) for value in dict.fromkeys(entities.get(ENTITY_VARIABLES[name]) or [])]
        or [(name, None)]
        for name in names
    ]
    for combination in itertools.product(*choices):
        variables = dict(base)
        variables.update({k: v for k, v in combination if v is not None})
        person = variables.get("person")
        if isinstance(person, str) and "@" in person:
            variables["domain"] = person.rsplit("@", 1)[1].lower()
        yield variables


def _only_if(step: PlaybookStep, incident: Incident) -> bool:
    priorities = step.only_if.get("priority")
    return not priorities or incident.priority in priorities


def propose_steps(
    incident: Incident,
    findings: Sequence[Finding],
    playbooks: Sequence[Playbook],
    snapshot_before: SnapshotLookup | None = None,
) -> tuple[list[ProposedStep], list[PlanNote]]:
    """Merge the playbooks of every finding into one ordered list of steps, plus notes on gaps."""
    merged: dict[str, _Merge] = {}
    notes: list[PlanNote] = []
    for finding in findings:
        for playbook in playbooks:
            if not playbook.matches(finding):
                continue
            for index, step in enumerate(playbook.steps):
                spec = get_action(step.action)
                if finding.provider and finding.provider != spec.provider:
                    continue
                if not _only_if(step, incident):
                    continue
                try:
                    bound = list(_bind_step(step, spec, finding, incident, snapshot_before))
                except Unbound as exc:
                    notes.append(
                        PlanNote(
                            playbook.id,
                            step.action,
                            finding.id,
                            f"cannot fill {exc.args[0]} from the finding",
                        )
                    )
                    continue
                for target, params in bound:
                    guarded = spec.guard(target) if spec.guard else None
                    if guarded:
                        notes.append(PlanNote(playbook.id, step.action, finding.id, guarded))
                        continue
                    key = f"{spec.name}|{spec.idempotency_part(target)}"
                    entry = merged.get(key)
                    if entry is None:
                        entry = merged[key] = _Merge(
                            ProposedStep(
                                action=spec.name,
                                phase=step.phase,
                                target=target,
                                params=params,
                                subject=subject_of(target),
                                reasons=(),
                                finding_ids=(),
                                playbooks=(),
                                after=(),
                                key=key,
                                order=(step.phase.rank, index, finding.id or 0),
                            )
                        )
                    why_playbooks, why_findings = entry.reasons.setdefault(step.why.strip(), ([], []))
                    if playbook.id not in why_playbooks:
                        why_playbooks.append(playbook.id)
                    label = f"#{finding.id} {finding.rule_id}"
                    if label not in why_findings:
                        why_findings.append(label)
                    if finding.id is not None and finding.id not in entry.finding_ids:
                        entry.finding_ids.append(finding.id)
                    if playbook.id not in entry.playbooks:
                        entry.playbooks.append(playbook.id)
                    entry.after.extend(a for a in step.after if a not in entry.after)
    steps = [
        ProposedStep(
            **{
                **m.step.__dict__,
                "reasons": tuple(_reason_text(why, *by) for why, by in m.reasons.items()),
                "finding_ids": tuple(m.finding_ids),
                "playbooks": tuple(m.playbooks),
                "after": tuple(m.after),
            }
        )
        for m in merged.values()
    ]
    steps.sort(key=lambda s: (s.order, s.subject, s.action))
    return steps, notes


def _reason_text(why: str, playbooks: Sequence[str], findings: Sequence[str]) -> str:
    """One step's reason: the playbook's sentence once, then every playbook and finding behind it."""
    named = ", ".join(findings[:MAX_NAMED_FINDINGS])
    if len(findings) > MAX_NAMED_FINDINGS:
        named += f" and {len(findings) - MAX_NAMED_FINDINGS} more"
    word = "finding" if len(findings) == 1 else "findings"
    which = "playbook" if len(playbooks) == 1 else "playbooks"
    return f"{why} [{which} {', '.join(playbooks)}; {word} {named}]"


def _bind_step(
    step: PlaybookStep,
    spec: ActionSpec,
    finding: Finding,
    incident: Incident,
    snapshot_before: SnapshotLookup | None,
) -> Iterable[tuple[dict[str, Any], dict[str, Any]]]:
    for variables in _bindings(step, finding, incident):
        filled = {k: v for k, v in fill(step.target, variables).items() if v not in (None, "")}
        for target in _expand_lists(filled):
            params = {k: v for k, v in step.params.items() if v != SNAPSHOT_BEFORE}
            params = fill(params, variables)
            for name in (k for k, v in step.params.items() if v == SNAPSHOT_BEFORE):
                params[name] = _from_snapshot(spec, target, finding, snapshot_before)
            spec.check_target(target, params)
            yield target, params


def _expand_lists(target: dict[str, Any]) -> list[dict[str, Any]]:
    """A context field can hold several values (an audit record naming two apps): one target each."""
    keys = [k for k, v in target.items() if isinstance(v, list)]
    if not keys:
        return [target]
    combos = itertools.product(
        *[dict.fromkeys(str(x) for x in target[k] if x not in (None, "")) for k in keys]
    )
    return [{**target, **dict(zip(keys, combo, strict=True))} for combo in combos]


def _from_snapshot(
    spec: ActionSpec, target: dict[str, Any], finding: Finding, snapshot_before: SnapshotLookup | None
) -> dict[str, Any]:
    object_type, id_field = _SNAPSHOT_TYPES.get(spec.name, ("", ""))
    data = (
        snapshot_before(object_type, str(target.get(id_field)), finding.first_seen)
        if snapshot_before
        else None
    )
    if not data:
        baseline = (finding.context or {}).get("old_value")
        if isinstance(baseline, dict):
            return baseline
        raise Unbound(
            f"a {object_type} snapshot of {target.get(id_field)} from before {isoformat(finding.first_seen)}"
        )
    return {k: data[k] for k in RESTORABLE_FIELDS.get(object_type, tuple(data)) if k in data}


# --------------------------------------------------------------------------- risk


@dataclass(frozen=True)
class RiskAssessment:
    risk: Risk
    explanation: str


def assess_risk(spec: ActionSpec, target_is_admin: bool | None) -> RiskAssessment:
    """Blast radius sets the base; a self-healing effect lowers it; an admin target raises it."""
    base = {BlastRadius.OBJECT: 0, BlastRadius.USER: 1, BlastRadius.APP: 1, BlastRadius.TENANT: 2}[
        spec.blast_radius
    ]
    parts = [f"blast radius {spec.blast_radius}"]
    if spec.reversible and spec.inverse is None:
        base -= 1
        parts.append("effect ends by itself (the user signs in again)")
    elif spec.reversible:
        parts.append(f"reversible with {spec.inverse}")
    else:
        parts.append("irreversible")
    if target_is_admin:
        base += 1
        parts.append("target is an admin")
    elif target_is_admin is None and spec.blast_radius == BlastRadius.USER:
        parts.append("admin status of the target unknown")
    elif spec.blast_radius == BlastRadius.USER:
        parts.append("target is not an admin")
    risk = list(Risk)[max(0, min(base, 2))]
    return RiskAssessment(risk, f"{risk}: " + "; ".join(parts))


# --------------------------------------------------------------------------- stored plan


@dataclass(frozen=True)
class PlanStep:
    id: int
    incident_id: int
    position: int
    phase: str
    action: str
    title: str
    provider: str
    subject: str
    target: dict[str, Any]
    params: dict[str, Any]
    reason: str
    risk: str
    blast_radius: str
    reversible: bool
    inverse: str | None
    status: str
    # The version the approver sees: approving with `seen=fingerprint` binds the approval to it.
    version: int
    fingerprint: str
    requested_by: str
    approvals_required: int
    approved_by: tuple[str, ...]
    depends_on: tuple[int, ...]
    verification: str
    permission: str
    connection_id: int | None
    finding_ids: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "approved_by": list(self.approved_by),
            "depends_on": list(self.depends_on),
            "finding_ids": list(self.finding_ids),
        }


@dataclass(frozen=True)
class Plan:
    incident_id: int
    steps: tuple[PlanStep, ...]
    notes: tuple[str, ...] = ()

    def step(self, action: str, subject: str | None = None) -> PlanStep:
        for s in self.steps:
            if s.action == action and (subject is None or s.subject.lower() == subject.lower()):
                return s
        raise KeyError(f"no step {action} {subject or ''} in the plan of incident {self.incident_id}")

    def step_by_id(self, action_id: int) -> PlanStep:
        for s in self.steps:
            if s.id == action_id:
                return s
        raise KeyError(f"no step {action_id} in the plan of incident {self.incident_id}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "steps": [s.as_dict() for s in self.steps],
            "notes": list(self.notes),
        }


def fingerprint(
    action: str, connection_id: int | None, target: dict[str, Any], params: dict[str, Any]
) -> str:
    payload = {"action": action, "connection_id": connection_id, "target": target, "params": params}
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()


def plan_for_incident(
    db: Database,
    incident_id: int,
    requested_by: Actor,
    *,
    playbooks: Sequence[Playbook] | None = None,
    policy: ApprovalPolicy | None = None,
    now: datetime | None = None,
) -> Plan:
    """Propose (or re-plan) the remediation of an incident; returns the whole stored plan."""
    config = db.settings.remediation
    playbooks = list(playbooks) if playbooks is not None else load_playbooks(config.playbooks_dir)
    policy = policy or configured_policy(db.settings)
    now = now or utcnow()
    from remediation.approvals import audited_refusals, try_auto_approve

    with audited_refusals(db, requested_by, "plan", incident_id=incident_id):
        with db.session() as session:
            incident = session.get(Incident, incident_id)
            if incident is None:
                raise IncidentNotFoundError(
                    f"no incident {incident_id}; `tenantguard incidents list` shows them"
                )
            actor = resolve_actor(session, requested_by)
            if not actor.system and not actor.may(Permission.ACTIONS_REQUEST):
                raise NotAllowed(
                    f"{requested_by} may not request remediation: needs one of the roles "
                    f"{', '.join(roles_allowed(Permission.ACTIONS_REQUEST))} (has {actor.role_names})"
                )
            findings = session.exec(
                select(Finding)
                .where(Finding.incident_id == incident_id, Finding.status != FindingStatus.SUPPRESSED)
                .order_by(col(Finding.first_seen), col(Finding.id))
            ).all()
            proposed, notes = propose_steps(incident, findings, playbooks, _snapshot_lookup(session))
            connections = connections_by_provider(session, findings)
            rows = _store(
                session, incident, proposed, as_principal(requested_by, actor), connections, policy, now
            )
            for row in rows:
                try_auto_approve(session, row, incident, policy, now)
        plan = get_plan(db, incident_id, now=now)
    return Plan(plan.incident_id, plan.steps, tuple(str(n) for n in notes))


def _store(
    session: Session,
    incident: Incident,
    proposed: list[ProposedStep],
    requested_by: Actor,
    connections: dict[str, int | None],
    policy: ApprovalPolicy,
    now: datetime,
) -> list[RemediationAction]:
    existing = {
        a.idempotency_key: a
        for a in session.exec(
            select(RemediationAction).where(RemediationAction.incident_id == incident.id)
        ).all()
    }
    rows: list[RemediationAction] = []
    for position, step in enumerate(proposed):
        spec = get_action(step.action)
        admin = target_is_admin(session, spec.provider, step.subject)
        assessment = assess_risk(spec, admin)
        connection_id = connections.get(str(spec.provider))
        key = f"incident:{incident.id}|{step.key}"
        row = existing.pop(key, None)
        values: dict[str, Any] = {
            "position": position,
            "reason": " ".join(step.reasons),
            "risk": str(assessment.risk),
            "finding_ids": list(step.finding_ids),
            "playbooks": list(step.playbooks),
            "approvals_required": policy.approvals_required(str(spec.blast_radius), str(assessment.risk)),
            "updated_at": now,
        }
        plan_facts = {"risk": assessment.explanation, "after": list(step.after)}
        print_fp = fingerprint(spec.name, connection_id, step.target, step.params)
        if row is None:
            row = RemediationAction(
                incident_id=incident.id,
                action=spec.name,
                provider=str(spec.provider),
                connection_id=connection_id,
                target=step.target,
                params=step.params,
                phase=str(step.phase),
                requested_by=requested_by.name,
                idempotency_key=key,
                subject=step.subject,
                blast_radius=str(spec.blast_radius),
                reversible=spec.reversible,
                fingerprint=print_fp,
                **values,
            )
            row.result = {"plan": plan_facts}
            session.add(row)
            session.flush()
            note(
                session,
                row,
                "proposed",
                requested_by,
                f"Proposed: {spec.title} — {step.subject}",
                {
                    "phase": row.phase,
                    "risk": row.risk,
                    "reason": row.reason,
                    "approvals_required": row.approvals_required,
                },
                now,
            )
        else:
            for name, value in values.items():
                setattr(row, name, value)
            row.result = {**(row.result or {}), "plan": plan_facts}
            if row.fingerprint != print_fp and row.status in (ActionStatus.PROPOSED, ActionStatus.APPROVED):
                previous = row.requested_by
                row.target, row.params, row.connection_id, row.fingerprint = (
                    step.target,
                    step.params,
                    connection_id,
                    print_fp,
                )
                # A new version of the step: whoever re-planned it asked for this one (so they cannot
                # approve it), and no approval of an earlier version counts (bound to the version).
                row.version += 1
                row.requested_by = requested_by.name
                row.status = ActionStatus.PROPOSED
                note(
                    session,
                    row,
                    "replanned",
                    requested_by,
                    f"Re-planned (approvals needed again): {spec.title} — {step.subject}",
                    {
                        "reason": "what the step would do changed",
                        "version": row.version,
                        "fingerprint": print_fp,
                        "previous_requester": previous,
                    },
                    now,
                )
            session.add(row)
        rows.append(row)
    session.flush()
    _set_dependencies(session, rows)
    return rows


def _set_dependencies(session: Session, rows: list[RemediationAction]) -> None:
    """Explicit `after:` on the same subject, and every recover step after all earlier steps on its subject."""
    by_subject: dict[str, list[RemediationAction]] = {}
    for row in rows:
        by_subject.setdefault(row.subject.lower(), []).append(row)
    for row in rows:
        after = set((row.result or {}).get("plan", {}).get("after", ()))
        deps = {
            other.id
            for other in by_subject[row.subject.lower()]
            if other.id != row.id
            and (
                other.action in after
                or (row.phase == Phase.RECOVER and Phase(other.phase).rank < Phase.RECOVER.rank)
            )
        }
        row.depends_on = sorted(d for d in deps if d is not None)
        session.add(row)


def _snapshot_lookup(session: Session) -> SnapshotLookup:
    def lookup(object_type: str, object_id: str, before: datetime) -> dict[str, Any] | None:
        row = session.exec(
            select(ConfigSnapshot)
            .where(
                ConfigSnapshot.object_type == object_type,
                ConfigSnapshot.object_id == object_id,
                ConfigSnapshot.collected_at < before,
                ConfigSnapshot.deleted == False,  # noqa: E712
            )
            .order_by(col(ConfigSnapshot.collected_at).desc())
            .limit(1)
        ).first()
        return row.data if row else None

    return lookup


def add_step(
    db: Database,
    incident_id: int,
    action: str,
    target: dict[str, Any],
    params: dict[str, Any] | None = None,
    *,
    requested_by: Actor,
    reason: str,
    phase: Phase | str | None = None,
    connection_id: int | None = None,
    policy: ApprovalPolicy | None = None,
    now: datetime | None = None,
) -> PlanStep:
    """An analyst asks for one catalogue action outside the playbooks (same checks, same approvals).

    Asking again for the same action on the same target returns the existing step.
    """
    spec = get_action(action)
    params = dict(params or {})
    spec.check_target(target, params)
    if not reason.strip():
        raise CatalogueError(f"say why {action} is needed: the approver reads the reason")
    reason = redact_typed(reason)
    policy = policy or configured_policy(db.settings)
    now = now or utcnow()
    step_phase = (
        Phase(phase)
        if phase
        else (Phase.RECOVER if spec.name.split(".")[1].startswith(("enable", "unsuspend")) else Phase.CONTAIN)
    )
    from remediation.approvals import audited_refusals

    with audited_refusals(db, requested_by, "add step", incident_id=incident_id), db.session() as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise IncidentNotFoundError(f"no incident {incident_id}")
        actor = resolve_actor(session, requested_by)
        if not actor.system and not actor.may(Permission.ACTIONS_REQUEST):
            raise NotAllowed(
                f"{requested_by} may not request remediation (role {actor.role_names}); needs one of "
                f"{', '.join(roles_allowed(Permission.ACTIONS_REQUEST))}"
            )
        key = f"incident:{incident_id}|{spec.name}|{spec.idempotency_part(target)}"
        row = session.exec(select(RemediationAction).where(RemediationAction.idempotency_key == key)).first()
        if row is None:
            subject = subject_of(target)
            assessment = assess_risk(spec, target_is_admin(session, spec.provider, subject))
            if connection_id is None:
                connection_id = connections_by_provider(session, []).get(str(spec.provider))
            position = len(
                session.exec(
                    select(RemediationAction.id).where(RemediationAction.incident_id == incident_id)
                ).all()
            )
            row = RemediationAction(
                incident_id=incident_id,
                action=spec.name,
                provider=str(spec.provider),
                connection_id=connection_id,
                target=dict(target),
                params=params,
                phase=str(step_phase),
                position=position,
                reason=reason,
                risk=str(assessment.risk),
                requested_by=actor.label,
                idempotency_key=key,
                subject=subject,
                blast_radius=str(spec.blast_radius),
                reversible=spec.reversible,
                approvals_required=policy.approvals_required(str(spec.blast_radius), str(assessment.risk)),
                fingerprint=fingerprint(spec.name, connection_id, dict(target), params),
                result={"plan": {"risk": assessment.explanation, "after": []}},
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            note(
                session,
                row,
                "proposed",
                as_principal(requested_by, actor),
                f"Proposed: {spec.title} — {subject}",
                {
                    "phase": row.phase,
                    "risk": row.risk,
                    "reason": reason,
                    "approvals_required": row.approvals_required,
                    "manual": True,
                },
                now,
            )
        action_id = row.id
    return get_plan(db, incident_id, now=now).step_by_id(action_id or 0)


def get_plan(db: Database, incident_id: int, *, now: datetime | None = None) -> Plan:
    """The stored plan of an incident, in order, with who has approved each step (valid approvals only)."""
    from remediation.approvals import standing_of, valid_approvals

    now = now or utcnow()
    with db.session(readonly=True) as session:
        if session.get(Incident, incident_id) is None:
            raise IncidentNotFoundError(f"no incident {incident_id}")
        rows = session.exec(
            select(RemediationAction)
            .where(RemediationAction.incident_id == incident_id)
            .order_by(col(RemediationAction.position), col(RemediationAction.id))
        ).all()
        approvals: dict[int | None, list[Approval]] = {}
        for row in rows:
            given = session.exec(select(Approval).where(Approval.action_id == row.id)).all()
            approvals[row.id] = valid_approvals(row, given, now, standing_of(session, row, given))
        return Plan(incident_id, tuple(_view(row, approvals[row.id]) for row in rows))


def _view(row: RemediationAction, approvals: list[Approval]) -> PlanStep:
    spec = get_action(row.action)
    return PlanStep(
        id=row.id or 0,
        incident_id=row.incident_id or 0,
        position=row.position,
        phase=row.phase,
        action=row.action,
        title=spec.title,
        provider=row.provider,
        subject=row.subject,
        target=row.target,
        params=row.params,
        reason=row.reason,
        risk=(row.result or {}).get("plan", {}).get("risk", row.risk),
        blast_radius=row.blast_radius,
        reversible=row.reversible,
        inverse=spec.inverse,
        status=row.status,
        version=row.version,
        fingerprint=row.fingerprint,
        requested_by=row.requested_by,
        approvals_required=row.approvals_required,
        approved_by=tuple(a.principal for a in approvals),
        depends_on=tuple(row.depends_on or ()),
        verification=spec.verification,
        permission=spec.permission,
        connection_id=row.connection_id,
        finding_ids=tuple(row.finding_ids or ()),
    )
