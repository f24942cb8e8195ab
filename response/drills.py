"""Drills: a simulated incident run through the whole response flow, marked a drill everywhere.

``start_drill`` injects a finding (rule ``drill:<scenario>``, an entity no real tenant has, so it
never groups with real findings or touches real tenants' state); the cycle turns it into an
incident like any other, and every response part marks it: channel ``drill-…``, ``[DRILL]`` on
every response timeline line and audit record, the Jira label ``drill``, kept off the status page,
a drill banner on the postmortem. When the incident is resolved the drill is finished with a
report of how long each response step took from the start.

A simulated drill (`start_simulated_drill`) runs a simulator attack story instead: the caller
(``tenantguard drill start SCENARIO --connections FILE``) registered connections to a simulator
serving the story (source ``drill``, names ``drill-<key>-<provider>``, never a real tenant), and
the running deployment collects, detects and builds its incidents like any other. Every incident
whose evidence came through those connections is marked a drill (so its remediation can only
target the simulator's connections); the drill follows the most urgent one, and once that is
resolved the drill's connections are disabled (audited) and its report written.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core.audit import Actor, AuditAction, record
from core.clock import as_utc, isoformat, utcnow
from core.db import Database
from core.models.connection import Connection
from core.models.enums import Severity, TimelineEntryKind
from core.models.event import Event
from core.models.finding import Finding
from core.models.incident import Incident, TimelineEntry
from core.models.response import Drill, StakeholderUpdate
from response.errors import ResponseInputError
from response.intake import Alert, ingest
from response.journal import state_for


@dataclass(frozen=True)
class Scenario:
    title: str
    severity: Severity
    summary: str


SCENARIOS: dict[str, Scenario] = {
    "account-takeover": Scenario(
        "Admin account signed in from a new country and created a mail forwarding rule",
        Severity.CRITICAL,
        "Tabletop: a global administrator's session is hijacked; contain, communicate, recover.",
    ),
    "data-exposure": Scenario(
        "Payroll spreadsheet shared publicly by link",
        Severity.HIGH,
        "Tabletop: a sensitive file is exposed to anyone with the link.",
    ),
    "oauth-consent": Scenario(
        "Risky OAuth app granted mail read access by many users",
        Severity.HIGH,
        "Tabletop: a consent-phishing app spreads through the tenant.",
    ),
}
DONE = ("resolved", "closed", "false_positive")


def start_drill(session: Session, scenario: str, *, actor: Actor, now: datetime | None = None) -> Drill:
    """Begin a drill: its finding becomes an incident on the next cycle."""
    chosen = SCENARIOS.get(scenario)
    if chosen is None:
        raise ResponseInputError(f"no drill scenario {scenario!r}; use one of {', '.join(SCENARIOS)}")
    when = as_utc(now or utcnow())
    key = f"{scenario}-{secrets.token_hex(4)}"
    alert = Alert(
        source="drill",
        dedup_key=key,
        title=f"[DRILL] {chosen.title}",
        severity=chosen.severity,
        action="trigger",
        summary=chosen.summary,
        entities={"apps": [f"drill:{key}"]},
        context={"drill": True, "scenario": scenario},
    )
    drill = Drill(scenario=scenario, dedup_key=alert.finding_key, started_by=actor.name, started_at=when)
    session.add(drill)
    session.flush()
    ingest(session, alert, actor=actor, now=when, rule_prefix="drill")
    record(
        session,
        actor=actor,
        action=AuditAction.RESPONSE_DRILL_STARTED,
        object_type="drill",
        object_id=drill.id or 0,
        details={"scenario": scenario, "dedup_key": alert.finding_key, "drill": True},
        at=when,
    )
    return drill


SIMULATED_PREFIX = "simulator:"


def start_simulated_drill(
    session: Session,
    scenario: str,
    connections: list[str],
    *,
    key: str,
    actor: Actor,
    now: datetime | None = None,
) -> Drill:
    """Record a drill run from a simulator story through `connections` (registered by the caller)."""
    when = as_utc(now or utcnow())
    known = set(session.exec(select(Connection.name).where(col(Connection.name).in_(connections))).all())
    if not connections or known != set(connections):
        raise ResponseInputError(f"drill connections not registered: {sorted(set(connections) - known)}")
    drill = Drill(
        scenario=scenario,
        dedup_key=f"{SIMULATED_PREFIX}{scenario}:{key}"[:200],
        started_by=actor.name,
        started_at=when,
        report={"connections": sorted(connections)},
    )
    session.add(drill)
    session.flush()
    record(
        session,
        actor=actor,
        action=AuditAction.RESPONSE_DRILL_STARTED,
        object_type="drill",
        object_id=drill.id or 0,
        details={"scenario": scenario, "connections": sorted(connections), "drill": True},
        at=when,
    )
    return drill


def _simulated_incidents(session: Session, drill: Drill) -> list[Incident]:
    """The incidents whose evidence came through the drill's connections, most urgent first."""
    names = (drill.report or {}).get("connections") or []
    ids = set(session.exec(select(Connection.id).where(col(Connection.name).in_(names))).all())
    if not ids:
        return []
    found = []
    candidates = session.exec(
        select(Incident)
        .where(col(Incident.merged_into_id).is_(None), col(Incident.created_at) >= drill.started_at)
        .order_by(col(Incident.id))
    ).all()
    for incident in candidates:
        evidence = [
            int(e)
            for f in session.exec(
                select(Finding.evidence_event_ids).where(Finding.incident_id == incident.id)
            ).all()
            for e in (f or [])[:50]
        ]
        if not evidence:
            continue
        hit = session.exec(
            select(Event.id).where(col(Event.id).in_(evidence[:500]), col(Event.connection_id).in_(ids))
        ).first()
        if hit is not None:
            found.append(incident)
    return sorted(found, key=lambda i: (i.priority, i.id or 0))


def link_drills(db: Database) -> int:
    """Mark the incidents the drills' findings became (before any other response part sees them)."""
    linked = 0
    with db.session() as session:
        for drill in session.exec(
            select(Drill).where(
                col(Drill.finished_at).is_(None), col(Drill.dedup_key).startswith(SIMULATED_PREFIX)
            )
        ).all():
            for incident in _simulated_incidents(session, drill):
                state = state_for(session, incident.id or 0)
                if not state.drill:
                    state.drill = True
                    session.add(state)
                    linked += 1
                if drill.incident_id is None:
                    drill.incident_id = incident.id
                    session.add(drill)
        waiting = session.exec(
            select(Drill).where(
                col(Drill.incident_id).is_(None), col(Drill.dedup_key).startswith(SIMULATED_PREFIX).is_(False)
            )
        ).all()
        for drill in waiting:
            incident_id = session.exec(
                select(Finding.incident_id).where(
                    Finding.dedup_key == drill.dedup_key, col(Finding.incident_id).is_not(None)
                )
            ).first()
            if incident_id is None:
                continue
            drill.incident_id = int(incident_id)
            session.add(drill)
            state = state_for(session, int(incident_id))
            state.drill = True
            session.add(state)
            linked += 1
    return linked


def _first(session: Session, incident_id: int, title_part: str) -> datetime | None:
    entry = session.exec(
        select(TimelineEntry.at)
        .where(
            TimelineEntry.incident_id == incident_id,
            TimelineEntry.kind == TimelineEntryKind.RESPONSE,
            col(TimelineEntry.title).contains(title_part),
        )
        .order_by(col(TimelineEntry.at))
    ).first()
    return as_utc(entry) if entry is not None else None


def drill_report(session: Session, drill: Drill) -> dict[str, Any]:
    """Seconds from the drill's start to each response step (None: the step never happened)."""
    start = as_utc(drill.started_at)
    incident = session.get(Incident, drill.incident_id) if drill.incident_id else None

    def since(moment: datetime | None) -> float | None:
        return round((as_utc(moment) - start).total_seconds(), 1) if moment is not None else None

    first_update = None
    if incident is not None:
        first_update = session.exec(
            select(StakeholderUpdate.created_at)
            .where(StakeholderUpdate.incident_id == incident.id)
            .order_by(col(StakeholderUpdate.created_at))
        ).first()
    return {
        "scenario": drill.scenario,
        "incident_id": drill.incident_id,
        "started_at": isoformat(start),
        "seconds_to": {
            "incident": since(incident.created_at) if incident else None,
            "channel": since(_first(session, incident.id or 0, "channel")) if incident else None,
            "acknowledged": since(incident.acknowledged_at or incident.triaged_at) if incident else None,
            "first_update": since(first_update),
            "contained": since(incident.contained_at) if incident else None,
            "resolved": since(incident.resolved_at) if incident else None,
        },
    }


def finish_drills(db: Database, now: datetime | None = None) -> list[int]:
    when = as_utc(now or utcnow())
    finished = []
    with db.session() as session:
        running = session.exec(
            select(Drill).where(col(Drill.finished_at).is_(None), col(Drill.incident_id).is_not(None))
        ).all()
        for drill in running:
            incident = session.get(Incident, drill.incident_id)
            if incident is None or incident.status not in DONE:
                continue
            connections = (drill.report or {}).get("connections") or []
            drill.report = {
                **drill_report(session, drill),
                **({"connections": connections} if connections else {}),
            }
            drill.finished_at = when
            session.add(drill)
            for row in session.exec(
                select(Connection).where(
                    col(Connection.name).in_(connections), col(Connection.enabled).is_(True)
                )
            ).all():
                row.enabled = False  # the story is over: stop collecting from its simulator
                session.add(row)
                record(
                    session,
                    actor=Actor.system("response"),
                    action=AuditAction.CONNECTION_DISABLED,
                    object_type="connection",
                    object_id=row.id or 0,
                    details={"name": row.name, "reason": f"drill #{drill.id} finished", "drill": True},
                    at=when,
                )
            record(
                session,
                actor=Actor.system("response"),
                action=AuditAction.RESPONSE_DRILL_FINISHED,
                object_type="drill",
                object_id=drill.id or 0,
                details={"drill": True, **drill.report},
                at=when,
            )
            finished.append(drill.id or 0)
    return finished
