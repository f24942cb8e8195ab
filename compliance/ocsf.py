"""Findings in open formats: OCSF (Compliance Finding for posture and drift, Detection Finding for
everything else), JSONL and CSV, streamed in id order a batch at a time so millions of rows never
sit in memory.

Events are built with py-ocsf-models (the OCSF schema as pydantic models), so each one is validated
against the schema as it is made; a finding that would not validate is a bug, not a silent skip.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum
from importlib.metadata import version as package_version
from typing import Any

import orjson
from py_ocsf_models.events.findings.activity_id import ActivityID
from py_ocsf_models.events.findings.compliance_finding import ComplianceFinding
from py_ocsf_models.events.findings.compliance_finding_type_id import ComplianceFindingTypeID
from py_ocsf_models.events.findings.detection_finding import DetectionFinding
from py_ocsf_models.events.findings.detection_finding_type_id import DetectionFindingTypeID
from py_ocsf_models.events.findings.severity_id import SeverityID
from py_ocsf_models.events.findings.status_id import StatusID
from py_ocsf_models.objects.compliance import Compliance
from py_ocsf_models.objects.compliance_status import StatusID as ComplianceStatusID
from py_ocsf_models.objects.finding_info import FindingInformation
from py_ocsf_models.objects.metadata import Metadata
from py_ocsf_models.objects.mitre_attack import MITREAttack, Technique
from py_ocsf_models.objects.product import Product
from py_ocsf_models.objects.remediation import Remediation
from py_ocsf_models.objects.resource_details import ResourceDetails
from sqlmodel import Session, col, select

from compliance.mappings import ItemKind, MappingSet, shipped_mappings
from core.clock import as_utc, isoformat
from core.models import Finding, FindingKind, FindingStatus
from core.spreadsheet import escape_cell

BATCH = 2000
CSV_FIELDS = (
    "id", "rule_id", "kind", "severity", "status", "title", "provider", "first_seen", "last_seen",
    "count", "people", "accounts", "mitre", "incident_id", "controls",
)  # fmt: skip


class FindingFormat(StrEnum):
    OCSF = "ocsf"
    JSONL = "jsonl"
    CSV = "csv"


MEDIA_TYPES = {
    FindingFormat.OCSF: "application/x-ndjson",
    FindingFormat.JSONL: "application/x-ndjson",
    FindingFormat.CSV: "text/csv; charset=utf-8",
}
_SEVERITY = {
    "informational": SeverityID.Informational,
    "low": SeverityID.Low,
    "medium": SeverityID.Medium,
    "high": SeverityID.High,
    "critical": SeverityID.Critical,
}
_STATUS = {
    FindingStatus.OPEN.value: StatusID.New,
    FindingStatus.SUPPRESSED.value: StatusID.Suppressed,
    FindingStatus.RESOLVED.value: StatusID.Resolved,
}
_COMPLIANCE_KINDS = {FindingKind.POSTURE.value, FindingKind.DRIFT.value}


def _ms(value: datetime) -> int:
    return int(as_utc(value).timestamp() * 1000)


def _product() -> Product:
    try:
        version = package_version("tenantguard")
    except Exception:  # noqa: BLE001 - running from a source tree without metadata
        version = "0"
    return Product(name="tenantguard", vendor_name="tenantguard", version=version)


def _controls(mappings: MappingSet, row: Finding) -> dict[str, list[str]]:
    kind = ItemKind.POSTURE_CHECK if row.kind in _COMPLIANCE_KINDS else ItemKind.DETECTION_RULE
    mapping = mappings.for_item(kind, row.rule_id)
    return {f.value: list(ids) for f, ids in mapping.controls.items()} if mapping else {}


def ocsf_event(
    row: Finding, *, mappings: MappingSet | None = None, product: Product | None = None
) -> dict[str, Any]:
    """One finding as an OCSF event (validated by the schema models as it is built)."""
    mappings = mappings or shipped_mappings()
    controls = _controls(mappings, row)
    info = FindingInformation(
        uid=f"tenantguard:finding:{row.id}",
        title=row.title[:500],
        desc=row.description or None,
        created_time=_ms(row.created_at),
        first_seen_time=_ms(row.first_seen),
        last_seen_time=_ms(row.last_seen),
        types=[row.kind],
        data_sources=[row.provider] if row.provider else None,
        attacks=[MITREAttack(technique=Technique(uid=t, name=t)) for t in row.mitre] or None,
    )
    common: dict[str, Any] = {
        "metadata": Metadata(
            product=product or _product(),
            uid=str(row.id),
            event_code=row.rule_id,
            labels=[row.kind],
            tenant_uid=str(row.context.get("connection_id") or "") or None,
        ),
        "severity_id": _SEVERITY.get(row.severity, SeverityID.Other),
        "severity": row.severity,
        "status_id": _STATUS.get(row.status, StatusID.Other),
        "status": row.status,
        "activity_id": ActivityID.Create,
        "finding_info": info,
        "time": _ms(row.last_seen),
        "message": row.title[:500],
        "resources": [ResourceDetails(uid=a, type="account") for a in row.entities.get("accounts", [])[:20]]
        or None,
        "remediation": Remediation(desc=row.runbook) if row.runbook else None,
        "unmapped": {
            "count": row.count,
            "incident_id": row.incident_id,
            "people": row.entities.get("people", []),
            "controls": controls,
        },
    }
    if row.kind in _COMPLIANCE_KINDS:
        event: Any = ComplianceFinding(
            **common,
            type_uid=ComplianceFindingTypeID.Create,
            compliance=Compliance(
                control=row.rule_id,
                standards=sorted(controls) or None,
                requirements=[f"{fw}:{cid}" for fw, ids in sorted(controls.items()) for cid in ids] or None,
                status_id=ComplianceStatusID.Pass
                if row.status == FindingStatus.RESOLVED.value
                else ComplianceStatusID.Fail,
            ),
        )
    else:
        event = DetectionFinding(**common, type_uid=DetectionFindingTypeID.Create, count=row.count)
    return event.model_dump(mode="json", exclude_none=True)


def _rows(session: Session, *, since: datetime | None, batch: int) -> Iterator[Finding]:
    """Every finding in id order, a keyset batch at a time."""
    last = 0
    while True:
        query = select(Finding).where(col(Finding.id) > last)
        if since is not None:
            query = query.where(col(Finding.last_seen) >= since)
        rows = session.exec(query.order_by(col(Finding.id)).limit(batch)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].id or last
        session.expunge_all()  # keep memory flat across millions of rows


def _plain(row: Finding, mappings: MappingSet) -> dict[str, Any]:
    return {
        "id": row.id,
        "rule_id": row.rule_id,
        "kind": row.kind,
        "severity": row.severity,
        "status": row.status,
        "title": row.title,
        "provider": row.provider,
        "first_seen": isoformat(row.first_seen),
        "last_seen": isoformat(row.last_seen),
        "count": row.count,
        "people": row.entities.get("people", []),
        "accounts": row.entities.get("accounts", []),
        "mitre": row.mitre,
        "incident_id": row.incident_id,
        "controls": _controls(mappings, row),
    }


def stream_findings(
    session: Session, format: FindingFormat, *, since: datetime | None = None, batch: int = BATCH
) -> Iterator[bytes]:
    """The findings as OCSF JSONL, plain JSONL or CSV, in chunks of about a batch of rows."""
    mappings = shipped_mappings()
    product = _product()
    chunk: list[bytes] = []
    if format is FindingFormat.CSV:
        head = io.StringIO()
        csv.writer(head, lineterminator="\n").writerow(CSV_FIELDS)
        chunk.append(head.getvalue().encode())
    for row in _rows(session, since=since, batch=batch):
        if format is FindingFormat.OCSF:
            chunk.append(orjson.dumps(ocsf_event(row, mappings=mappings, product=product)) + b"\n")
        elif format is FindingFormat.JSONL:
            chunk.append(orjson.dumps(_plain(row, mappings)) + b"\n")
        else:
            plain = _plain(row, mappings)
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerow(
                [
                    escape_cell(";".join(plain[k]) if isinstance(plain[k], list) else plain[k])
                    for k in CSV_FIELDS
                    if k != "controls"
                ]
                + [escape_cell(";".join(f"{fw}:{c}" for fw, ids in plain["controls"].items() for c in ids))]
            )
            chunk.append(out.getvalue().encode())
        if len(chunk) >= batch:
            yield b"".join(chunk)
            chunk = []
    if chunk:
        yield b"".join(chunk)
