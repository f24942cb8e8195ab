"""A Jira issue per urgent incident through the official ``jira`` client, with status both ways.

Outbound: an incident in a configured priority gets an issue (summary, description with a link
back, labels ``tenantguard`` and, for a drill, ``drill``); when the incident's status moves, the
mapped Jira transition runs. Inbound: when the issue's status moves in Jira, the mapped incident
status is applied through the incident lifecycle (``timeline.lifecycle.transition``, which
audits it). The status last pushed and last read are kept on the incident's response row, so a
change is applied once and never echoed back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from core.audit import AuditAction
from core.clock import as_utc, utcnow
from core.db import Database
from core.errors import TenantguardError
from core.models.incident import Incident
from core.models.response import IncidentResponse
from response.config import JiraConfig, ResponseConfig
from response.errors import TicketError
from response.journal import DRILL_MARK, RESPONSE_ACTOR, note, state_for

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10


@dataclass
class TicketReport:
    created: list[str] = field(default_factory=list)
    pushed: int = 0
    pulled: int = 0
    failed: dict[int, str] = field(default_factory=dict)


def jira_client(config: JiraConfig) -> Any:
    from jira import JIRA

    from providers.credentials import resolve_reference

    return JIRA(
        server=config.url.rstrip("/"),
        basic_auth=(config.user, resolve_reference("jira token", config.token_ref)),
        get_server_info=False,
        max_retries=0,
        timeout=TIMEOUT_SECONDS,
    )


def _call(what: str, action: Any) -> Any:
    from jira.exceptions import JIRAError
    from requests import RequestException

    try:
        return action()
    except JIRAError as exc:
        raise TicketError(f"Jira refused {what}: {exc.status_code} {exc.text}"[:300]) from exc
    except (RequestException, OSError) as exc:
        raise TicketError(f"Jira unreachable for {what}: {type(exc).__name__}") from exc


def _create(
    client: Any,
    incident: Incident,
    state: IncidentResponse,
    config: ResponseConfig,
    when: datetime,
    session: Any,
) -> str:
    jira = config.jira
    assert jira is not None
    mark = DRILL_MARK if state.drill else ""
    issue = _call(
        "create_issue",
        lambda: client.create_issue(
            fields={
                "project": {"key": jira.project},
                "summary": f"{mark}[{incident.priority}] Incident #{incident.id}: {incident.title}"[:255],
                "description": (
                    f"{mark}{incident.summary or incident.title}\n\n"
                    f"Open in tenantguard: {config.public_url.rstrip('/')}/incidents/{incident.id}"
                ),
                "issuetype": {"name": jira.issue_type},
                "labels": ["tenantguard", *(["drill"] if state.drill else [])],
            }
        ),
    )
    state.jira_key = str(issue.key)
    state.jira_status = "To Do"
    state.jira_pushed_status = incident.status
    note(
        session,
        incident.id or 0,
        action=AuditAction.RESPONSE_TICKET_CREATED,
        title=f"Jira issue {issue.key} created",
        details={"key": str(issue.key), "project": jira.project},
        at=when,
        drill=state.drill,
        ref=("jira_issue", str(issue.key)),
    )
    return str(issue.key)


def _push(
    client: Any, incident: Incident, state: IncidentResponse, jira: JiraConfig, when: datetime, session: Any
) -> bool:
    if incident.status == state.jira_pushed_status:
        return False
    state.jira_pushed_status = incident.status
    wanted = jira.outbound.get(incident.status)
    if not wanted or wanted.lower() == state.jira_status.lower():
        return False
    transitions = _call("transitions", lambda: client.transitions(state.jira_key))
    match = next((t for t in transitions if str(t["name"]).lower() == wanted.lower()), None)
    if match is None:
        raise TicketError(f"issue {state.jira_key} has no transition {wanted!r} from {state.jira_status!r}")
    _call("transition_issue", lambda: client.transition_issue(state.jira_key, match["id"]))
    state.jira_status = wanted
    note(
        session,
        incident.id or 0,
        action=AuditAction.RESPONSE_TICKET_SYNCED,
        title=f"Jira issue {state.jira_key} moved to {wanted} (incident is {incident.status})",
        details={
            "key": state.jira_key,
            "direction": "outbound",
            "jira_status": wanted,
            "status": incident.status,
        },
        at=when,
        drill=state.drill,
        ref=("jira_issue", state.jira_key),
    )
    return True


def _pull(db: Database, client: Any, incident_id: int, jira: JiraConfig, when: datetime) -> bool:
    """Apply a status change made in Jira (its own transaction: the lifecycle audits it)."""
    from timeline.lifecycle import transition

    with db.session(readonly=True) as session:
        state = state_for(session, incident_id)
        key, last = state.jira_key, state.jira_status
    issue = _call("issue", lambda: client.issue(key))
    status = str(issue.fields.status.name)
    if status.lower() == last.lower():
        return False
    target = jira.inbound.get(status.lower())
    applied = None
    if target:
        with db.session(readonly=True) as session:
            incident = session.get(Incident, incident_id)
            current = incident.status if incident is not None else None
        if current is not None and current != target:
            try:
                transition(
                    db,
                    incident_id,
                    target,
                    actor=RESPONSE_ACTOR,
                    note=f"Jira {key} moved to {status}",
                    at=when,
                )
                applied = target
            except TenantguardError as exc:  # the lifecycle forbids it: said on the timeline
                applied = f"not applied: {exc}"
    with db.session() as session:
        state = state_for(session, incident_id)
        state.jira_status = status
        incident = session.get(Incident, incident_id)
        if incident is not None and applied and not applied.startswith("not"):
            state.jira_pushed_status = incident.status  # not echoed back to Jira
        session.add(state)
        note(
            session,
            incident_id,
            action=AuditAction.RESPONSE_TICKET_SYNCED,
            title=f"Jira issue {key} is now {status}" + (f"; incident {applied}" if applied else ""),
            details={"key": key, "direction": "inbound", "jira_status": status, "applied": applied},
            at=when,
            drill=state.drill,
            ref=("jira_issue", key),
        )
    return True


def run_tickets(db: Database, config: ResponseConfig, now: datetime | None = None) -> TicketReport:
    report = TicketReport()
    jira = config.jira
    if jira is None:
        return report
    when = as_utc(now or utcnow())
    with db.session(readonly=True) as session:
        wanted = session.exec(
            select(Incident.id).where(
                col(Incident.priority).in_([p.value for p in jira.priorities]),
                col(Incident.merged_into_id).is_(None),
            )
        ).all()
        linked = session.exec(
            select(IncidentResponse.incident_id).where(IncidentResponse.jira_key != "")
        ).all()
    try:
        client = jira_client(jira)
    except TenantguardError as exc:
        report.failed[0] = str(exc)
        return report
    for incident_id in sorted({i for i in wanted if i is not None} | set(linked)):
        try:
            with db.session() as session:
                incident = session.get(Incident, incident_id)
                if incident is None:
                    continue
                state = state_for(session, incident_id)
                if not state.jira_key:
                    report.created.append(_create(client, incident, state, config, when, session))
                    state.jira_error = ""
                    session.add(state)
                    continue
                if _push(client, incident, state, jira, when, session):
                    report.pushed += 1
                session.add(state)
            if _pull(db, client, incident_id, jira, when):
                report.pulled += 1
        except TicketError as exc:
            report.failed[incident_id] = str(exc)
            log.warning("incident %s Jira: %s", incident_id, exc)
            with db.session() as session:
                state = state_for(session, incident_id)
                state.jira_error = str(exc)[:500]
                session.add(state)
    return report
