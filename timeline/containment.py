"""An incident is contained on its own once every containment step of its plan has run and verified.

Remediation plans put each step in a phase (contain, eradicate, recover). When every step of the
``contain`` phase of an incident's plan has executed and been verified by reading the provider back
(status ``succeeded`` with ``verified_at`` set; "already in the desired state" counts, it was read
back too), the incident moves ``new``/``triaged`` → ``contained`` through the lifecycle (timeline
entry and audit record, with the steps named), and MTTC counts from it. A step still proposed,
approved but not run, failed, rejected, skipped or rolled back keeps the incident where it is: a
person decided not to contain that way, and says so by moving it themselves.

Called after each execution (the cycle's remediation stage, the API and CLI ``execute``, the demo).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlmodel import col

from core.audit import Actor
from core.clock import utcnow
from core.db import Database
from core.models.enums import ActionStatus, IncidentStatus
from core.models.incident import Incident
from core.models.remediation import RemediationAction
from timeline.lifecycle import transition_in

CONTAIN_PHASE = "contain"
CONTAINMENT_ACTOR = Actor.system("containment")
_BEFORE_CONTAINED = (IncidentStatus.NEW, IncidentStatus.TRIAGED)


def contained_by_plan(steps: Iterable[RemediationAction]) -> bool:
    """Whether these steps (one incident's plan) contain it: at least one containment step, and
    every one of them succeeded and was verified."""
    contain = [s for s in steps if s.phase == CONTAIN_PHASE]
    return bool(contain) and all(
        s.status == ActionStatus.SUCCEEDED and s.verified_at is not None for s in contain
    )


def contain_when_done(
    db: Database, incident_ids: Iterable[int | None] | None = None, *, now: datetime | None = None
) -> list[int]:
    """Move to ``contained`` the incidents (these, or every open one) whose containment steps have
    all executed and verified; returns their ids."""
    wanted = None if incident_ids is None else sorted({i for i in incident_ids if i is not None})
    if wanted == []:
        return []
    when = now or utcnow()
    moved: list[int] = []
    with db.session() as session:
        # only incidents with a succeeded containment step can be contained by their plan
        query = (
            select(col(Incident.id))
            .distinct()
            .join(RemediationAction, col(RemediationAction.incident_id) == col(Incident.id))
            .where(
                col(Incident.status).in_(_BEFORE_CONTAINED),
                col(Incident.merged_into_id).is_(None),
                col(RemediationAction.phase) == CONTAIN_PHASE,
                col(RemediationAction.status) == ActionStatus.SUCCEEDED,
            )
        )
        if wanted is not None:
            query = query.where(col(Incident.id).in_(wanted))
        candidates = sorted(session.execute(query).scalars())
        if not candidates:
            return []
        steps: dict[int, list[RemediationAction]] = {}
        for step in session.execute(
            select(RemediationAction).where(col(RemediationAction.incident_id).in_(candidates))
        ).scalars():
            steps.setdefault(step.incident_id or 0, []).append(step)
        for incident_id in candidates:
            plan = steps.get(incident_id, [])
            if not contained_by_plan(plan):
                continue
            done = sorted(
                (s for s in plan if s.phase == CONTAIN_PHASE), key=lambda s: (s.position, s.id or 0)
            )
            named = "; ".join(f"#{s.id} {s.action} {s.subject}".strip() for s in done)
            transition_in(
                session,
                incident_id,
                IncidentStatus.CONTAINED.value,
                actor=CONTAINMENT_ACTOR,
                note=f"every containment step of the plan executed and verified: {named}",
                at=when,
            )
            moved.append(incident_id)
    return moved
