"""A Jira issue per urgent incident through the official ``jira`` client, with status both ways.

Outbound: an incident in a configured priority gets an issue (summary, description with a link
back, labels ``tenantguard`` and, for a drill, ``drill``); when the incident's status moves, the
mapped Jira transition runs. Inbound: when the issue's status moves in Jira, the mapped incident
status is applied through the incident lifecycle (``timeline.lifecycle.transition``, which
audits it). The status last pushed and last read are kept on the incident's response row, so a
change is applied once and never echoed back.

Comments both ways: an analyst's note is posted to the issue as a comment (``[tenantguard]
<who>: <text>``); a person's comment in Jira becomes a note line on the timeline (source
``jira``, redacted, keyed by the comment id); the ids seen are kept so nothing is echoed.
Remediation steps: each step of the incident's plan gets its own issue under the incident's
(``step_issue_type``, parent the incident's issue, label ``remediation``), moved as the step runs
(``step_outbound``); its Jira status is read back for the postmortem's action items. A Jira
status never runs or skips a step: remediation keeps its own approvals.
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
from core.models.enums import TimelineEntryKind
from core.models.incident import Incident, TimelineEntry
from core.models.remediation import RemediationAction
from core.models.response import IncidentResponse
from core.redaction import redact
from response.config import JiraConfig, ResponseConfig
from response.errors import TicketError
from response.journal import DRILL_MARK, RESPONSE_ACTOR, note, state_for

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10
COMMENT_MARK = "[tenantguard] "
JIRA_SOURCE = "jira"
MAX_COMMENT_CHARS = 4000


@dataclass
class TicketReport:
    created: list[str] = field(default_factory=list)
    pushed: int = 0
    pulled: int = 0
    comments_posted: int = 0
    comments_mirrored: int = 0
    step_issues: list[str] = field(default_factory=list)
    step_moves: int = 0
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
            if jira.comments:
                _comments(db, client, incident_id, jira, when, report)
            if jira.steps:
                _steps(db, client, incident_id, config, when, report)
        except TicketError as exc:
            report.failed[incident_id] = str(exc)
            log.warning("incident %s Jira: %s", incident_id, exc)
            with db.session() as session:
                state = state_for(session, incident_id)
                state.jira_error = str(exc)[:500]
                session.add(state)
    return report


def _comments(
    db: Database, client: Any, incident_id: int, jira: JiraConfig, when: datetime, report: TicketReport
) -> None:
    """Mirror people's Jira comments onto the timeline, then post new notes as comments."""
    with db.session(readonly=True) as session:
        key = state_for(session, incident_id).jira_key
    comments = _call("comments", lambda: client.comments(key))
    with db.session() as session:
        state = state_for(session, incident_id)
        seen = set(state.jira_comment_ids)
        for comment in comments:
            cid, body = str(comment.id), str(getattr(comment, "body", "") or "")
            if cid in seen:
                continue
            seen.add(cid)
            state.jira_comment_ids = [*state.jira_comment_ids, cid]
            if body.startswith(COMMENT_MARK):  # ours, posted by a run that did not commit
                continue
            author = str(getattr(getattr(comment, "author", None), "displayName", "") or "someone")
            clean = redact(body)
            session.add(
                TimelineEntry(
                    incident_id=incident_id,
                    at=when,
                    kind=TimelineEntryKind.NOTE,
                    source=JIRA_SOURCE,
                    title=f"comment by {author} on Jira {key}"[:1000],
                    body={"text": clean.text[:MAX_COMMENT_CHARS], "redactions": clean.counts, "jira": key},
                    ref_type="jira_comment",
                    ref_id=f"{key}:{cid}"[:200],
                    actor=f"jira:{author}"[:200],
                    dedup_key=f"jira:{key}:{cid}",
                )
            )
            report.comments_mirrored += 1
        session.add(state)
    with db.session() as session:
        state = state_for(session, incident_id)
        notes = session.exec(
            select(TimelineEntry)
            .where(
                TimelineEntry.incident_id == incident_id,
                TimelineEntry.kind == TimelineEntryKind.NOTE,
                TimelineEntry.source != JIRA_SOURCE,
                col(TimelineEntry.id) > state.jira_noted_entry_id,
            )
            .order_by(col(TimelineEntry.id))
            .limit(20)
        ).all()
        for entry in notes:
            text = str((entry.body or {}).get("text") or entry.title)
            posted = _call(
                "add_comment",
                lambda t=text, who=entry.actor: client.add_comment(
                    key, f"{COMMENT_MARK}{who}: {t}"[:MAX_COMMENT_CHARS]
                ),
            )
            state.jira_comment_ids = [*state.jira_comment_ids, str(posted.id)]
            state.jira_noted_entry_id = int(entry.id or 0)
            report.comments_posted += 1
        session.add(state)


def _step_summary(incident: Incident, step: RemediationAction, mark: str) -> str:
    return f"{mark}[{incident.priority}] Incident #{incident.id} step {step.position}: {step.action} on {step.subject or step.target}"[
        :255
    ]


def _steps(
    db: Database, client: Any, incident_id: int, config: ResponseConfig, when: datetime, report: TicketReport
) -> None:
    """An issue per remediation step, moved as the step runs; the issue's status read back."""
    jira = config.jira
    assert jira is not None
    with db.session(readonly=True) as session:
        steps = session.exec(
            select(RemediationAction)
            .where(RemediationAction.incident_id == incident_id)
            .order_by(col(RemediationAction.position), col(RemediationAction.id))
        ).all()
    for step in steps:
        with db.session() as session:
            state = state_for(session, incident_id)
            incident = session.get(Incident, incident_id)
            if incident is None:
                return
            known = dict(state.jira_steps.get(str(step.id)) or {})
            mark = DRILL_MARK if state.drill else ""
            if not known:
                fields = {
                    "project": {"key": jira.project},
                    "summary": _step_summary(incident, step, mark),
                    "description": (
                        f"{mark}Remediation step of {state.jira_key}: {step.reason or step.action}\n\n"
                        f"Open in tenantguard: {config.public_url.rstrip('/')}/incidents/{incident_id}"
                    ),
                    "issuetype": {"name": jira.step_issue_type},
                    "parent": {"key": state.jira_key},
                    "labels": ["tenantguard", "remediation", *(["drill"] if state.drill else [])],
                }
                issue = _call("create_issue", lambda f=fields: client.create_issue(fields=f))
                known = {"key": str(issue.key), "pushed": "", "status": "To Do"}
                report.step_issues.append(known["key"])
                note(
                    session,
                    incident_id,
                    action=AuditAction.RESPONSE_TICKET_CREATED,
                    title=f"Jira issue {known['key']} created for step {step.position} ({step.action})",
                    details={"key": known["key"], "step": step.id, "parent": state.jira_key},
                    at=when,
                    drill=state.drill,
                    ref=("jira_issue", known["key"]),
                )
            if known["pushed"] != step.status:
                wanted = jira.step_outbound.get(step.status)
                known["pushed"] = step.status
                if wanted and wanted.lower() != known["status"].lower():
                    transitions = _call("transitions", lambda k=known["key"]: client.transitions(k))
                    match = next((t for t in transitions if str(t["name"]).lower() == wanted.lower()), None)
                    if match is not None:
                        _call(
                            "transition_issue",
                            lambda k=known["key"], m=match: client.transition_issue(k, m["id"]),
                        )
                        known["status"] = wanted
                        report.step_moves += 1
                        note(
                            session,
                            incident_id,
                            action=AuditAction.RESPONSE_TICKET_SYNCED,
                            title=f"Jira issue {known['key']} moved to {wanted} (step {step.position} {step.status})",
                            details={
                                "key": known["key"],
                                "step": step.id,
                                "direction": "outbound",
                                "jira_status": wanted,
                            },
                            at=when,
                            drill=state.drill,
                            ref=("jira_issue", known["key"]),
                        )
            else:
                read = _call("issue", lambda k=known["key"]: client.issue(k))
                known["status"] = str(read.fields.status.name)
            state.jira_steps = {**state.jira_steps, str(step.id): known}
            session.add(state)
