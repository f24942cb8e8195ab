"""Incidents in open formats: OCSF Incident Finding (class 2005), JSONL and CSV, streamed in id order a
batch at a time (with the batch's findings read as plain columns), so millions of incidents never
sit in memory.

OCSF events are built with pydantic-ocsf's models of the OCSF 1.7.0 schema (py-ocsf-models, which
the findings export uses, has no Incident Finding): each event is validated against the schema as
it is made, so one that would not validate is a bug, not a silent skip.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from importlib.metadata import version as package_version
from typing import Any

import orjson
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from compliance.ocsf import FindingFormat
from core.clock import as_utc, isoformat
from core.models import Finding, Incident, IncidentStatus

BATCH = 1000
# Findings named per incident event (the count is always whole, in `unmapped.finding_count`).
MAX_FINDINGS = 200
OCSF_VERSION = "1.7.0"
CSV_FIELDS = (
    "id", "title", "status", "priority", "severity", "incident_type", "assignee", "first_seen", "last_seen",
    "created_at", "acknowledged_at", "resolved_at", "closed_at", "finding_count", "people", "finding_ids",
)  # fmt: skip

_STATUS = {  # OCSF Incident Finding status_id
    IncidentStatus.NEW: 1,
    IncidentStatus.TRIAGED: 2,
    IncidentStatus.CONTAINED: 2,
    IncidentStatus.RESOLVED: 4,
    IncidentStatus.CLOSED: 5,
    IncidentStatus.FALSE_POSITIVE: 5,
    IncidentStatus.DUPLICATE: 5,
}
_VERDICT = {IncidentStatus.FALSE_POSITIVE: 1, IncidentStatus.DUPLICATE: 10}
_PRIORITY = {"P1": 4, "P2": 3, "P3": 2, "P4": 1}  # Critical, High, Medium, Low
_SEVERITY = {"informational": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
_CLOSED = {IncidentStatus.CLOSED, IncidentStatus.FALSE_POSITIVE, IncidentStatus.DUPLICATE}


def _ms(value: datetime | None) -> int | None:
    return int(as_utc(value).timestamp() * 1000) if value is not None else None


def _version() -> str:
    try:
        return package_version("tenantguard")
    except Exception:  # noqa: BLE001 - running from a source tree without metadata
        return "0"


# (id, rule_id, title, first_seen, last_seen, mitre) of a finding, as read for the export.
FindingFacts = tuple[int, str, str, datetime, datetime, list[str]]


def ocsf_incident(
    row: Incident, findings: list[FindingFacts], *, product_version: str | None = None, base_url: str = ""
) -> dict[str, Any]:
    """One incident as an OCSF Incident Finding (validated by the schema models as it is built)."""
    from ocsf.v1_7_0.events import IncidentFinding

    status = IncidentStatus(row.status)
    infos = [
        {
            "uid": f"tenantguard:finding:{fid}",
            "title": title[:500],
            "analytic": {"uid": rule_id, "name": rule_id, "type_id": 1},
            "first_seen_time": _ms(first),
            "last_seen_time": _ms(last),
        }
        for fid, rule_id, title, first, last, _ in findings[:MAX_FINDINGS]
    ] or [{"uid": f"tenantguard:incident:{row.id}", "title": row.title[:500]}]
    techniques = sorted({t for *_, mitre in findings for t in mitre or []})
    event: dict[str, Any] = {
        "activity_id": 3 if status in _CLOSED else 1,
        "category_uid": 2,
        "class_uid": 2005,
        "type_uid": 200500 + (3 if status in _CLOSED else 1),
        "metadata": {
            "product": {
                "name": "tenantguard",
                "vendor_name": "tenantguard",
                "version": product_version or _version(),
            },
            "version": OCSF_VERSION,
            "uid": str(row.id),
            "labels": [row.incident_type] if row.incident_type else None,
        },
        "severity_id": _SEVERITY.get(row.severity, 99),
        "status_id": _STATUS.get(status, 99),
        "priority_id": _PRIORITY.get(row.priority, 0),
        "verdict_id": _VERDICT.get(status),
        "time": _ms(row.updated_at),
        "start_time": _ms(row.first_seen),
        "end_time": _ms(row.closed_at or row.resolved_at),
        "message": row.title[:500],
        "desc": row.summary or None,
        "assignee": {"name": row.assignee} if row.assignee else None,
        "finding_info_list": infos,
        "attacks": [{"technique": {"uid": t, "name": t}} for t in techniques] or None,
        "src_url": f"{base_url.rstrip('/')}/incidents/{row.id}" if base_url else None,
        "unmapped": {
            "priority": row.priority,
            "incident_type": row.incident_type,
            "finding_count": len(findings),
            "people": row.entities.get("people", []),
            "merged_into_id": row.merged_into_id,
        },
    }
    clean = {k: v for k, v in event.items() if v is not None}
    return IncidentFinding.model_validate(clean).model_dump(mode="json", exclude_none=True)


def _batches(
    session: Session, *, since: datetime | None, batch: int
) -> Iterator[list[tuple[Incident, list[FindingFacts]]]]:
    """Incidents in id order, a keyset batch at a time, each with its findings' facts."""
    last = 0
    while True:
        query = select(Incident).where(col(Incident.id) > last)
        if since is not None:
            query = query.where(col(Incident.updated_at) >= since)
        rows = session.exec(query.order_by(col(Incident.id)).limit(batch)).all()
        if not rows:
            return
        ids = [r.id for r in rows]
        facts: dict[int, list[FindingFacts]] = {}
        table = Finding.__table__  # type: ignore[attr-defined]
        columns = (table.c.id, table.c.incident_id, table.c.rule_id, table.c.title, table.c.first_seen)
        query_findings = (
            sa_select(*columns, table.c.last_seen, table.c.mitre)
            .where(table.c.incident_id.in_(ids))
            .order_by(table.c.id)
        )
        for fid, incident_id, rule_id, title, first, last_seen, mitre in session.execute(
            query_findings
        ).all():
            facts.setdefault(int(incident_id or 0), []).append(
                (int(fid or 0), rule_id, title, first, last_seen, mitre)
            )
        yield [(row, facts.get(row.id or 0, [])) for row in rows]
        last = rows[-1].id or last
        session.expunge_all()  # keep memory flat across millions of rows


def _plain(row: Incident, findings: list[FindingFacts]) -> dict[str, Any]:
    def when(value: datetime | None) -> str | None:
        return isoformat(value) if value is not None else None

    return {
        "id": row.id,
        "title": row.title,
        "status": row.status,
        "priority": row.priority,
        "severity": row.severity,
        "incident_type": row.incident_type,
        "assignee": row.assignee,
        "first_seen": when(row.first_seen),
        "last_seen": when(row.last_seen),
        "created_at": when(row.created_at),
        "acknowledged_at": when(row.acknowledged_at),
        "resolved_at": when(row.resolved_at),
        "closed_at": when(row.closed_at),
        "finding_count": len(findings),
        "people": row.entities.get("people", []),
        "finding_ids": [f[0] for f in findings],
    }


def stream_incidents(
    session: Session,
    format: FindingFormat,
    *,
    since: datetime | None = None,
    batch: int = BATCH,
    base_url: str = "",
) -> Iterator[bytes]:
    """The incidents as OCSF Incident Finding JSONL, plain JSONL or CSV, one chunk per batch."""
    version = _version()
    if format is FindingFormat.CSV:
        head = io.StringIO()
        csv.writer(head, lineterminator="\n").writerow(CSV_FIELDS)
        yield head.getvalue().encode()
    for rows in _batches(session, since=since, batch=batch):
        chunk: list[bytes] = []
        for row, findings in rows:
            if format is FindingFormat.OCSF:
                event = ocsf_incident(row, findings, product_version=version, base_url=base_url)
                chunk.append(orjson.dumps(event) + b"\n")
            elif format is FindingFormat.JSONL:
                chunk.append(orjson.dumps(_plain(row, findings)) + b"\n")
            else:
                plain = _plain(row, findings)
                out = io.StringIO()
                csv.writer(out, lineterminator="\n").writerow(
                    [";".join(map(str, v)) if isinstance(v := plain[k], list) else v for k in CSV_FIELDS]
                )
                chunk.append(out.getvalue().encode())
        yield b"".join(chunk)
