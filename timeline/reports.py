"""Incident reports (postmortems) in Markdown and HTML, written from the stored timeline.

The plain-language summary is generated deterministically from the incident, its findings and
its timeline — no outside service, the same input always gives the same words. Root cause,
lessons and impact are the analysts' own fields (see `lifecycle.set_postmortem`); the actions
taken, with who requested and who approved them, come from the remediation tables.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from core.clock import isoformat, utcnow
from core.db import Database
from core.models.finding import Finding
from core.models.incident import Incident
from core.models.remediation import Approval, RemediationAction
from timeline.entries import EntryKind
from timeline.errors import IncidentNotFoundError
from timeline.grouping import describe_gap
from timeline.queries import TimelineItem, get_timeline
from timeline.sla import acknowledge_sla, resolve_sla

MAX_TIMELINE_ITEMS = 500


@dataclass(frozen=True)
class ApprovalRecord:
    principal: str
    decision: str
    at: datetime
    via: str
    comment: str


@dataclass(frozen=True)
class ActionRecord:
    id: int
    action: str
    subject: str
    provider: str
    phase: str
    status: str
    requested_by: str
    approvals: tuple[ApprovalRecord, ...]
    executed_at: datetime | None
    reason: str


@dataclass(frozen=True)
class IncidentReport:
    incident: Incident
    findings: tuple[Finding, ...]
    timeline: tuple[TimelineItem, ...]
    timeline_total: int
    actions: tuple[ActionRecord, ...]
    summary: str
    generated_at: datetime
    facts: dict[str, Any] = field(default_factory=dict)


def _actions(session: Any, incident_id: int) -> tuple[ActionRecord, ...]:
    actions = list(
        session.execute(
            select(RemediationAction)
            .where(col(RemediationAction.incident_id) == incident_id)
            .order_by(col(RemediationAction.position), col(RemediationAction.id))
        ).scalars()
    )
    approvals: dict[int, list[ApprovalRecord]] = {}
    if actions:
        for a in session.execute(
            select(Approval)
            .where(col(Approval.action_id).in_([x.id for x in actions]))
            .order_by(col(Approval.at))
        ).scalars():
            approvals.setdefault(a.action_id, []).append(
                ApprovalRecord(a.principal, a.decision, a.at, a.via, a.comment)
            )
    return tuple(
        ActionRecord(
            id=a.id or 0,
            action=a.action,
            subject=str(getattr(a, "subject", "") or next(iter((a.target or {}).values()), "")),
            provider=a.provider,
            phase=a.phase,
            status=a.status,
            requested_by=a.requested_by,
            approvals=tuple(approvals.get(a.id or 0, [])),
            executed_at=a.executed_at,
            reason=a.reason,
        )
        for a in actions
    )


def build_report(
    db: Database, incident_id: int, *, include_excerpts: bool = False, now: datetime | None = None
) -> IncidentReport:
    """Gather everything a report shows; `include_excerpts` only for roles allowed to read conversations."""
    with db.session(readonly=True) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise IncidentNotFoundError(f"incident {incident_id} does not exist")
        findings = tuple(
            session.execute(
                select(Finding)
                .where(col(Finding.incident_id) == incident_id)
                .order_by(col(Finding.first_seen), col(Finding.id))
            ).scalars()
        )
        actions = _actions(session, incident_id)
    items: list[TimelineItem] = []
    cursor = None
    total = 0
    while len(items) < MAX_TIMELINE_ITEMS:
        page = get_timeline(db, incident_id, cursor=cursor, limit=200, include_excerpts=include_excerpts)
        items.extend(page.items)
        total = page.total
        cursor = page.next_cursor
        if cursor is None:
            break
    items = items[:MAX_TIMELINE_ITEMS]
    generated = now or utcnow()
    facts = _facts(incident, findings, items, actions, generated)
    return IncidentReport(incident, findings, tuple(items), total, actions, narrate(facts), generated, facts)


def _facts(
    incident: Incident,
    findings: Sequence[Finding],
    items: Sequence[TimelineItem],
    actions: Sequence[ActionRecord],
    now: datetime,
) -> dict[str, Any]:
    entities = incident.entities or {}
    factors = (incident.priority_factors or {}).get("factors", {})
    evidence = [i for i in items if i.kind == EntryKind.EVIDENCE]
    messages = [i for i in items if i.kind == EntryKind.MESSAGE]
    approvers = sorted(
        {a.principal for action in actions for a in action.approvals if a.decision == "approve"}
    )
    return {
        "id": incident.id,
        "title": incident.title,
        "priority": incident.priority,
        "score": (incident.priority_factors or {}).get("score"),
        "status": incident.status,
        "first_event_at": incident.first_event_at or incident.first_seen,
        "first_evidence": evidence[0].title if evidence else None,
        "first_evidence_source": evidence[0].source if evidence else None,
        "findings": [(f.first_seen, f.title, f.severity) for f in findings],
        "span_seconds": (incident.last_seen - incident.first_seen).total_seconds(),
        "people": list(entities.get("people", [])),
        "accounts": list(entities.get("accounts", [])),
        "files": list(entities.get("files", [])),
        "apps": list(entities.get("apps", [])),
        "ips": list(entities.get("ips", [])),
        "providers": sorted({f.provider for f in findings if f.provider}),
        "privilege": factors.get("privilege", {}).get("why"),
        "privileged": factors.get("privilege", {}).get("weight", 1.0) > 1.0,
        "severity_why": factors.get("severity", {}).get("why"),
        "assets_why": factors.get("assets", {}).get("why"),
        "messages": len(messages) if len(items) < MAX_TIMELINE_ITEMS else incident.message_count,
        "message_sources": sorted({m.source for m in messages}),
        "created_at": incident.created_at,
        "acknowledged_at": incident.acknowledged_at,
        "contained_at": incident.contained_at,
        "resolved_at": incident.resolved_at,
        "closed_at": incident.closed_at,
        "assignee": incident.assignee,
        "actions": len(actions),
        "actions_done": sum(1 for a in actions if a.status in ("succeeded", "rolled_back")),
        "approvers": approvers,
        "ack_sla": acknowledge_sla(incident, now).value,
        "resolve_sla": resolve_sla(incident, now).value,
    }


def _list(values: Sequence[str], limit: int = 3) -> str:
    shown = list(values[:limit])
    if len(values) > limit:
        shown.append(f"{len(values) - limit} more")
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + " and " + shown[-1]


def _when(value: datetime) -> str:
    return value.strftime("%d %B %Y at %H:%M UTC").lstrip("0")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def narrate(facts: dict[str, Any]) -> str:
    """The summary paragraph: the same facts always give the same sentences."""
    sentences = []
    first = facts["first_event_at"]
    if facts["first_evidence"]:
        sentences.append(
            f"On {_when(first)}, the first recorded sign of this incident was {facts['first_evidence']} "
            f"({facts['first_evidence_source']})."
        )
    elif facts["findings"]:
        sentences.append(f"On {_when(first)}, tenantguard first saw: {facts['findings'][0][1]}.")
    findings = facts["findings"]
    if findings:
        titles = [title for _, title, _ in findings]
        unique = list(dict.fromkeys(titles))
        span = describe_gap(facts["span_seconds"])
        if len(findings) == 1:
            sentences.append(f"One finding was raised: {unique[0]} ({findings[0][2]}).")
        else:
            sentences.append(f"{len(findings)} findings followed over {span}: {_list(unique, 4)}.")
    scope = []
    if facts["people"]:
        who = _list(facts["people"])
        scope.append(f"{_plural(len(facts['people']), 'person')} ({who})".replace("persons", "people"))
    if facts["files"]:
        scope.append(f"{_plural(len(facts['files']), 'file')} ({_list(facts['files'])})")
    if facts["apps"]:
        scope.append(f"{_plural(len(facts['apps']), 'app')} ({_list(facts['apps'])})")
    if scope:
        where = f" across {_list(facts['providers'])}" if facts["providers"] else ""
        sentences.append(f"It involves {_list(scope, 3)}{where}.")
    if facts["ips"]:
        sentences.append(
            f"Activity came from {_plural(len(facts['ips']), 'source IP')}: {_list(facts['ips'])}."
        )
    if facts["privileged"] and facts["privilege"]:
        sentences.append(f"Privileged access is at stake: {facts['privilege']}.")
    if facts["assets_why"] and facts["assets_why"] != "no sensitive or exposed asset":
        sentences.append(f"Assets: {facts['assets_why']}.")
    if facts["score"] is not None:
        sentences.append(
            f"It is rated {facts['priority']} (score {facts['score']:.2f}); {facts['severity_why']}."
        )
    if facts["messages"]:
        sentences.append(
            f"{_plural(facts['messages'], 'related message')} were found in {_list(facts['message_sources'])}.".replace(
                "message were", "message was"
            )
        )
    response = []
    created = facts["created_at"]
    for label, key in (
        ("acknowledged", "acknowledged_at"),
        ("contained", "contained_at"),
        ("resolved", "resolved_at"),
    ):
        if facts[key] is not None:
            response.append(f"{label} after {describe_gap((facts[key] - created).total_seconds())}")
    if response:
        sentences.append(
            f"The incident was {_list(response, 3)}; it is now {facts['status'].replace('_', ' ')}."
        )
    else:
        sentences.append(f"It is {facts['status'].replace('_', ' ')} and has not been acknowledged yet.")
    if facts["actions"]:
        approved = f", approved by {_list(facts['approvers'])}" if facts["approvers"] else ""
        sentences.append(
            f"{_plural(facts['actions'], 'remediation action')} were planned ({facts['actions_done']} carried out{approved}).".replace(
                "action were", "action was"
            )
        )
    return " ".join(sentences)


# ---------------------------------------------------------------------- rendering


def _md(text: Any) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def _t(value: datetime | None) -> str:
    return isoformat(value) if value else "—"


def _body_line(item: TimelineItem) -> str:
    if item.kind == EntryKind.MESSAGE:
        return str(item.body.get("excerpt", ""))[:300]
    if item.kind == EntryKind.NOTE:
        return str(item.body.get("text", ""))[:300]
    if item.kind == EntryKind.STATUS and item.body.get("note"):
        return str(item.body["note"])[:300]
    return ""


def render_markdown(report: IncidentReport) -> str:
    i = report.incident
    facts = report.facts
    lines = [
        f"# Incident #{i.id}: {i.title}",
        "",
        f"**Priority** {i.priority} · **Status** {i.status} · **Severity** {i.severity} · "
        f"**Assignee** {i.assignee or 'unassigned'}",
        "",
        "## Summary",
        "",
        report.summary,
        "",
        "## Key times",
        "",
        "| event | time |",
        "|---|---|",
    ]
    for label, value in (
        ("first malicious event", i.first_event_at),
        ("first finding", i.detected_at),
        ("incident opened", i.created_at),
        ("acknowledged", i.acknowledged_at),
        ("contained", i.contained_at),
        ("resolved", i.resolved_at),
        ("closed", i.closed_at),
        ("acknowledge due", i.ack_due_at),
        ("resolve due", i.due_at),
    ):
        lines.append(f"| {label} | {_t(value)} |")
    lines += [
        "",
        f"SLA: acknowledge {facts['ack_sla']}, resolve {facts['resolve_sla']}.",
        "",
        "## Impact",
        "",
    ]
    lines.append(i.impact or "_No impact statement recorded yet._")
    lines.append("")
    for label, key in (
        ("People", "people"),
        ("Accounts", "accounts"),
        ("Files", "files"),
        ("Apps", "apps"),
        ("Source IPs", "ips"),
    ):
        if facts[key]:
            lines.append(
                f"- **{label}:** {_md(', '.join(facts[key][:20]))}" + (" …" if len(facts[key]) > 20 else "")
            )
    lines += [
        "",
        "## Priority",
        "",
        f"{(i.priority_factors or {}).get('formula', '')} = {(i.priority_factors or {}).get('score', '')}",
        "",
    ]
    for name, factor in ((i.priority_factors or {}).get("factors") or {}).items():
        lines.append(f"- **{name}** ×{factor.get('weight')}: {_md(factor.get('why'))}")
    lines += ["", "## Timeline", "", "| time | kind | what | count | source |", "|---|---|---|---|---|"]
    for item in report.timeline:
        detail = _body_line(item)
        what = _md(item.title) + (f" — {_md(detail)}" if detail else "")
        lines.append(f"| {_t(item.at)} | {item.kind} | {what} | {item.count} | {_md(item.source)} |")
    if report.timeline_total > len(report.timeline):
        lines.append(f"\n_{report.timeline_total - len(report.timeline)} further entries not shown._")
    lines += [
        "",
        "## Root cause",
        "",
        i.root_cause or "_Not recorded yet._",
        "",
        "## Lessons learned",
        "",
        i.lessons or "_Not recorded yet._",
    ]
    lines += ["", "## Actions taken", ""]
    if not report.actions:
        lines.append("_No remediation actions._")
    else:
        lines += [
            "| # | action | on | phase | status | requested by | decisions | executed |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for a in report.actions:
            decisions = (
                "; ".join(f"{d.decision} by {d.principal} ({_t(d.at)}, via {d.via})" for d in a.approvals)
                or "none"
            )
            lines.append(
                f"| {a.id} | {_md(a.action)} | {_md(a.subject)} | {a.phase} | {a.status} | {_md(a.requested_by)} | {_md(decisions)} | {_t(a.executed_at)} |"
            )
    lines += ["", "## Findings", ""]
    for f in report.findings:
        lines.append(f"- #{f.id} [{f.severity}] {_md(f.title)} ({f.rule_id}, {_t(f.first_seen)}, ×{f.count})")
    lines += ["", f"_Generated by tenantguard at {_t(report.generated_at)}._", ""]
    return "\n".join(lines)


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}"
    "th{background:#f4f4f4}.p1{color:#b00}.p2{color:#d60}.meta{color:#555}"
)


def _h(value: Any) -> str:
    return html.escape(str(value if value is not None else ""))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_h(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_h(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: IncidentReport) -> str:
    i = report.incident
    facts = report.facts
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Incident #{_h(i.id)}: {_h(i.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Incident #{_h(i.id)}: {_h(i.title)}</h1>",
        f"<p class='meta'><strong class='{_h(i.priority.lower())}'>{_h(i.priority)}</strong> · status {_h(i.status)} · "
        f"severity {_h(i.severity)} · assignee {_h(i.assignee or 'unassigned')}</p>",
        "<h2>Summary</h2>",
        f"<p>{_h(report.summary)}</p>",
        "<h2>Key times</h2>",
        _table(
            ("event", "time"),
            [
                ("first malicious event", _t(i.first_event_at)),
                ("first finding", _t(i.detected_at)),
                ("incident opened", _t(i.created_at)),
                ("acknowledged", _t(i.acknowledged_at)),
                ("contained", _t(i.contained_at)),
                ("resolved", _t(i.resolved_at)),
                ("closed", _t(i.closed_at)),
                ("acknowledge due", _t(i.ack_due_at)),
                ("resolve due", _t(i.due_at)),
            ],
        ),
        f"<p>SLA: acknowledge {_h(facts['ack_sla'])}, resolve {_h(facts['resolve_sla'])}.</p>",
        "<h2>Impact</h2>",
        f"<p>{_h(i.impact) if i.impact else '<em>No impact statement recorded yet.</em>'}</p><ul>",
    ]
    for label, key in (
        ("People", "people"),
        ("Accounts", "accounts"),
        ("Files", "files"),
        ("Apps", "apps"),
        ("Source IPs", "ips"),
    ):
        if facts[key]:
            parts.append(f"<li><strong>{label}:</strong> {_h(', '.join(facts[key][:20]))}</li>")
    parts.append("</ul><h2>Priority</h2>")
    factors = (i.priority_factors or {}).get("factors") or {}
    parts.append(
        _table(("factor", "weight", "why"), [(n, f.get("weight"), f.get("why")) for n, f in factors.items()])
    )
    parts.append("<h2>Timeline</h2>")
    parts.append(
        _table(
            ("time", "kind", "what", "detail", "count", "source"),
            [(_t(x.at), x.kind, x.title, _body_line(x), x.count, x.source) for x in report.timeline],
        )
    )
    if report.timeline_total > len(report.timeline):
        parts.append(
            f"<p><em>{report.timeline_total - len(report.timeline)} further entries not shown.</em></p>"
        )
    parts.append(
        f"<h2>Root cause</h2><p>{_h(i.root_cause) if i.root_cause else '<em>Not recorded yet.</em>'}</p>"
    )
    parts.append(
        f"<h2>Lessons learned</h2><p>{_h(i.lessons) if i.lessons else '<em>Not recorded yet.</em>'}</p>"
    )
    parts.append("<h2>Actions taken</h2>")
    if report.actions:
        parts.append(
            _table(
                ("#", "action", "on", "phase", "status", "requested by", "decisions", "executed"),
                [
                    (
                        a.id,
                        a.action,
                        a.subject,
                        a.phase,
                        a.status,
                        a.requested_by,
                        "; ".join(
                            f"{d.decision} by {d.principal} ({_t(d.at)}, via {d.via})" for d in a.approvals
                        )
                        or "none",
                        _t(a.executed_at),
                    )
                    for a in report.actions
                ],
            )
        )
    else:
        parts.append("<p><em>No remediation actions.</em></p>")
    parts.append("<h2>Findings</h2>")
    parts.append(
        _table(
            ("#", "severity", "title", "rule", "first seen", "count"),
            [(f.id, f.severity, f.title, f.rule_id, _t(f.first_seen), f.count) for f in report.findings],
        )
    )
    parts.append(
        f"<p class='meta'>Generated by tenantguard at {_h(_t(report.generated_at))}.</p></body></html>"
    )
    return "\n".join(parts)
