"""The public status page: components and incidents with their published public updates.

Only what was published for the public shows (a customer update approved by a second person);
internal incidents, internal updates and drills never do. The JSON follows Atlassian Statuspage's
``/api/v2/summary.json`` and ``incidents.json`` shapes, so status-page clients read it as is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core.clock import isoformat, utcnow
from core.models.response import IncidentResponse, StakeholderUpdate
from response.config import ResponseConfig
from response.templates import template

IMPACT = {"P1": "critical", "P2": "major", "P3": "minor", "P4": "none"}
COMPONENT_STATUS = {"critical": "major_outage", "major": "partial_outage", "minor": "degraded_performance"}
RANK = ["none", "minor", "major", "critical"]
DESCRIPTION = {
    "none": "All systems operational",
    "minor": "Minor service disruption",
    "major": "Partial system outage",
    "critical": "Major system outage",
}


def _when(value: datetime | None) -> str | None:
    return isoformat(value) if value is not None else None


def _public_updates(session: Session) -> dict[int, list[StakeholderUpdate]]:
    drills = set(
        session.exec(select(IncidentResponse.incident_id).where(col(IncidentResponse.drill).is_(True))).all()
    )
    rows = session.exec(
        select(StakeholderUpdate)
        .where(col(StakeholderUpdate.public).is_(True), StakeholderUpdate.status == "published")
        .order_by(col(StakeholderUpdate.published_at), col(StakeholderUpdate.id))
    ).all()
    out: dict[int, list[StakeholderUpdate]] = {}
    for update in rows:
        if update.incident_id not in drills:
            out.setdefault(update.incident_id, []).append(update)
    return out


def _priority_of(session: Session, incident_id: int) -> str:
    from core.models.incident import Incident

    incident = session.get(Incident, incident_id)
    return incident.priority if incident is not None else "P4"


def incidents(session: Session) -> list[dict[str, Any]]:
    """Public incidents, newest first, each with its updates newest first (Statuspage's shape)."""
    out = []
    for incident_id, updates in _public_updates(session).items():
        latest = updates[-1]
        first_line = updates[0].body.strip().splitlines()[0] if updates[0].body.strip() else ""
        out.append(
            {
                "id": str(incident_id),
                "name": first_line[:200] or f"Incident {incident_id}",
                "status": latest.state,
                "impact": IMPACT.get(_priority_of(session, incident_id), "minor"),
                "created_at": _when(updates[0].published_at),
                "updated_at": _when(latest.published_at),
                "resolved_at": _when(latest.published_at) if latest.state == "resolved" else None,
                "components": sorted({c for u in updates for c in u.components}),
                "incident_updates": [
                    {
                        "id": str(u.id),
                        "status": u.state,
                        "body": u.body,
                        "created_at": _when(u.published_at),
                        "affected_components": u.components,
                    }
                    for u in reversed(updates)
                ],
            }
        )
    out.sort(key=lambda i: i["updated_at"] or "", reverse=True)
    return out


def summary(session: Session, config: ResponseConfig) -> dict[str, Any]:
    listed = incidents(session)
    unresolved = [i for i in listed if i["status"] != "resolved"]
    worst: dict[str, str] = {}
    for incident in unresolved:
        for name in incident["components"]:
            if RANK.index(incident["impact"]) > RANK.index(worst.get(name, "none")):
                worst[name] = incident["impact"]
    overall = max((i["impact"] for i in unresolved), key=RANK.index, default="none")
    return {
        "page": {"id": "tenantguard", "name": config.status_page.title, "updated_at": isoformat(utcnow())},
        "status": {"indicator": overall, "description": DESCRIPTION[overall]},
        "components": [
            {
                "id": component.name,
                "name": component.name,
                "description": component.description,
                "status": COMPONENT_STATUS.get(worst.get(component.name, "none"), "operational"),
            }
            for component in config.status_page.components
        ],
        "incidents": unresolved,
    }


def incidents_document(session: Session, config: ResponseConfig) -> dict[str, Any]:
    head = summary(session, config)
    return {"page": head["page"], "incidents": incidents(session)}


def render_html(session: Session, config: ResponseConfig) -> str:
    head = summary(session, config)
    return template("status.html.j2").render(
        page=head["page"], status=head["status"], components=head["components"], incidents=incidents(session)
    )


def atom_feed(session: Session, config: ResponseConfig, base_url: str) -> str:
    """An Atom feed of every published public update, newest first (subscribers' readers poll it)."""
    from xml.sax.saxutils import escape

    base = base_url.rstrip("/")
    entries = []
    for incident in incidents(session):
        for update in incident["incident_updates"]:
            entries.append(
                "<entry>"
                f"<id>{escape(base)}/status#update-{escape(update['id'])}</id>"
                f"<title>{escape(incident['name'])} — {escape(update['status'])}</title>"
                f"<updated>{escape(update['created_at'] or '')}</updated>"
                f'<link href="{escape(base)}/status#incident-{escape(incident["id"])}"/>'
                f'<content type="text">{escape(update["body"])}</content>'
                "</entry>"
            )
    entries.sort(key=lambda e: e[e.index("<updated>") :], reverse=True)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<feed xmlns="http://www.w3.org/2005/Atom">'
        f"<id>{escape(base)}/status</id><title>{escape(config.status_page.title)}</title>"
        f"<updated>{isoformat(utcnow())}</updated>"
        f'<link rel="self" href="{escape(base)}/status/history.atom"/>' + "".join(entries) + "</feed>"
    )
