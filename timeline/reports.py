"""Incident reports (postmortems) in Markdown and HTML, written from the stored timeline.

The plain-language summary is generated deterministically from the incident, its findings and
its timeline — no outside service, the same input always gives the same words. Root cause,
lessons and impact are the analysts' own fields (see `lifecycle.set_postmortem`); the actions
taken, with who requested and who approved them, come from the remediation tables.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy import select
from sqlmodel import col

from core.clock import isoformat, utcnow
from core.db import Database
from core.errors import IncidentNotFoundError
from core.models.enums import TimelineEntryKind
from core.models.finding import Finding
from core.models.incident import Incident
from core.models.remediation import Approval, RemediationAction
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
    evidence = [i for i in items if i.kind == TimelineEntryKind.EVIDENCE]
    messages = [i for i in items if i.kind == TimelineEntryKind.MESSAGE]
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
        "focus": list(factors.get("spread", {}).get("people") or []),
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
        "impact": (incident.priority_factors or {}).get("impact"),
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
    people = facts.get("focus") or facts["people"]
    if people:
        who = _list(people)
        scope.append(f"{_plural(len(people), 'person')} ({who})".replace("persons", "people"))
    targets = len(facts["people"]) - len(people)
    if facts["files"]:
        scope.append(f"{_plural(len(facts['files']), 'file')} ({_list(facts['files'])})")
    if facts["apps"]:
        scope.append(f"{_plural(len(facts['apps']), 'app')} ({_list(facts['apps'])})")
    if scope:
        where = f" across {_list(facts['providers'])}" if facts["providers"] else ""
        sentences.append(f"It involves {_list(scope, 3)}{where}.")
    if targets > 0:
        sentences.append(
            f"{_plural(targets, 'more person')} {'was' if targets == 1 else 'were'} named as targets"
            " (a spray's or a mass action's reach).".replace("more persons", "more people")
        )
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


# ---------------------------------------------------------------------- rendering

# Markdown has no autoescape of its own: every value a template prints passes through this, so
# text from a note, a title or a provider (an `<img onerror=…>`, a `[link](…)`, a bare URL) is
# shown as text, never rendered as HTML or a link.
_MD_SPECIAL = re.compile(r"([\\`*\[\]|])")


def _markdown_escape(value: Any) -> str:
    text = html.escape(str(value if value is not None else ""), quote=False)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return text.replace("://", ":\\/\\/").replace("www.", "www\\.")


def _t(value: datetime | None) -> str:
    return isoformat(value) if value else "—"


def _cell(value: Any) -> str:
    """One table cell or list item: a single line."""
    return " ".join(str(value if value is not None else "").splitlines())


def _body_line(item: TimelineItem) -> str:
    if item.kind == TimelineEntryKind.MESSAGE:
        return str(item.body.get("excerpt", ""))[:300]
    if item.kind == TimelineEntryKind.NOTE:
        return str(item.body.get("text", ""))[:300]
    if item.kind == TimelineEntryKind.STATUS and item.body.get("note"):
        return str(item.body["note"])[:300]
    if item.kind == TimelineEntryKind.REMEDIATION:
        # the whole reason a step was proposed, the approver's whole comment: never cut
        if item.body.get("event") == "proposed" and item.body.get("reason"):
            return f"why: {item.body['reason']}"
        if item.body.get("comment"):
            return f"comment: {item.body['comment']}"
    return ""


def _impact_line(incident: Incident) -> str:
    from timeline.impact import describe

    impact = (incident.priority_factors or {}).get("impact")
    return describe(impact) if impact else ""


def _decisions(action: ActionRecord) -> str:
    return (
        "; ".join(
            f"{d.decision} by {d.principal} ({_t(d.at)}, via {d.via})"
            + (f": “{d.comment}”" if d.comment else "")
            for d in action.approvals
        )
        or "none"
    )


def _environment(**options: Any) -> Environment:
    env = Environment(
        loader=PackageLoader("timeline", "templates"),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=StrictUndefined,
        **options,
    )
    env.filters.update(when=_t, cell=_cell, detail=_body_line, decisions=_decisions)
    return env


_MARKDOWN = _environment(autoescape=False, finalize=_markdown_escape)
_HTML = _environment(autoescape=True)


def _context(report: IncidentReport) -> dict[str, Any]:
    i = report.incident
    factors = (i.priority_factors or {}).get("factors") or {}
    key_times = [
        ("first malicious event", i.first_event_at),
        ("first finding", i.detected_at),
        ("incident opened", i.created_at),
        ("acknowledged", i.acknowledged_at),
        ("contained", i.contained_at),
        ("resolved", i.resolved_at),
        ("closed", i.closed_at),
        ("acknowledge due", i.ack_due_at),
        ("resolve due", i.due_at),
    ]
    labels = (
        ("People", "people"),
        ("Accounts", "accounts"),
        ("Files", "files"),
        ("Apps", "apps"),
        ("Source IPs", "ips"),
    )
    rows = {
        "key_times": [(label, _t(value)) for label, value in key_times],
        "factors": [(name, f.get("weight"), f.get("why")) for name, f in factors.items()],
        "timeline": [(_t(x.at), x.kind, x.title, _body_line(x), x.count, x.source) for x in report.timeline],
        "actions": [
            (
                a.id,
                a.action,
                a.subject,
                a.phase,
                a.status,
                a.requested_by,
                _decisions(a),
                _t(a.executed_at),
                a.reason,
            )
            for a in report.actions
        ],
        "findings": [
            (f.id, f.severity, f.title, f.rule_id, _t(f.first_seen), f.count) for f in report.findings
        ],
    }
    return {
        "report": report,
        "i": i,
        "facts": report.facts,
        "key_times": key_times,
        "scope": [(label, report.facts[key]) for label, key in labels if report.facts[key]],
        "priority": {
            "formula": (i.priority_factors or {}).get("formula", ""),
            "score": (i.priority_factors or {}).get("score", ""),
            "factors": factors,
        },
        "impact": _impact_line(i),
        "hidden": report.timeline_total - len(report.timeline),
        "rows": rows,
    }


def report_document(report: IncidentReport) -> dict[str, Any]:
    """The report as one JSON-able document (`report incident -f json`): the same facts the
    Markdown and HTML carry, as data."""
    from dataclasses import asdict

    return {
        "incident": report.incident.model_dump(mode="json"),
        "summary": report.summary,
        "generated_at": report.generated_at.isoformat(),
        "facts": report.facts,
        "findings": [f.model_dump(mode="json") for f in report.findings],
        "timeline": {"total": report.timeline_total, "items": [t.as_dict() for t in report.timeline]},
        "actions": [asdict(a) for a in report.actions],
    }


def render_markdown(report: IncidentReport) -> str:
    return _MARKDOWN.get_template("report.md.j2").render(_context(report))


def render_html(report: IncidentReport) -> str:
    return _HTML.get_template("report.html.j2").render(_context(report))


def incident_reports_between(db: Database, since: datetime, until: datetime) -> dict[str, bytes]:
    """`incidents/<id>.md` for every incident created in [since, until], without conversation
    excerpts: what an evidence package carries (the CLI's and the console's)."""
    with db.session(readonly=True) as session:
        ids = session.execute(
            select(col(Incident.id))
            .where(col(Incident.created_at) >= since, col(Incident.created_at) <= until)
            .order_by(col(Incident.id))
        ).scalars()
        incident_ids = [i for i in ids if i is not None]
    return {
        f"incidents/{i}.md": render_markdown(build_report(db, i, include_excerpts=False)).encode()
        for i in incident_ids
    }
