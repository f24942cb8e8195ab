"""Findings in open formats: OCSF events that validate against the schema models, JSONL and CSV, streamed."""

from __future__ import annotations

import csv
import io

import orjson
from py_ocsf_models.events.findings.compliance_finding import ComplianceFinding
from py_ocsf_models.events.findings.detection_finding import DetectionFinding
from sqlmodel import func, select

from compliance.ocsf import FindingFormat, stream_findings
from core.audit import Actor
from core.clock import utcnow
from core.findings import FindingDraft, store_finding
from core.models import Finding
from tests.compliance.conftest import AssessedTenant


def _add_detection(tenant: AssessedTenant) -> None:
    now = utcnow()
    with tenant.db.session() as session:
        store_finding(
            session,
            FindingDraft(
                rule_id="m365_password_spray",
                kind="detection",
                severity="high",
                title="Password spray against Entra ID from 203.0.113.7",
                description="40 accounts tried from one address",
                dedup_key="spray:203.0.113.7",
                first_seen=now,
                last_seen=now,
                provider="m365",
                entities={"people": ["a@example.com"], "accounts": ["a@example.com"]},
                mitre=("T1110.003",),
            ),
            actor=Actor.system("test"),
        )


def test_every_finding_exports_as_an_ocsf_event_that_validates_against_the_schema(
    assessed_tenant: AssessedTenant,
) -> None:
    _add_detection(assessed_tenant)
    with assessed_tenant.db.session(readonly=True) as session:
        total = session.exec(select(func.count()).select_from(Finding)).one()
        # a small batch walks several keyset pages
        lines = b"".join(stream_findings(session, FindingFormat.OCSF, batch=3)).splitlines()
    assert len(lines) == total > 3
    events = [orjson.loads(line) for line in lines]
    assert len({e["metadata"]["uid"] for e in events}) == total
    compliance = [ComplianceFinding.model_validate(e) for e in events if e["class_uid"] == 2003]
    detection = [DetectionFinding.model_validate(e) for e in events if e["class_uid"] == 2004]
    assert len(compliance) + len(detection) == total and compliance and detection
    spray = next(e for e in events if e["metadata"]["event_code"] == "m365_password_spray")
    assert spray["severity_id"] == 4 and spray["type_uid"] == 200401
    assert spray["finding_info"]["attacks"][0]["technique"]["uid"] == "T1110.003"
    assert "nist-800-53:AC-7" in [f"nist-800-53:{c}" for c in spray["unmapped"]["controls"]["nist-800-53"]]
    posture = next(
        e for e in events if e["class_uid"] == 2003 and e["metadata"]["event_code"] == "m365.user_risk_policy"
    )
    assert "scuba-m365:MS.AAD.2.1v1" in posture["compliance"]["requirements"]
    assert posture["compliance"]["status_id"] == 3  # fail


def test_jsonl_and_csv_carry_the_same_findings(assessed_tenant: AssessedTenant) -> None:
    _add_detection(assessed_tenant)
    with assessed_tenant.db.session(readonly=True) as session:
        jsonl = [
            orjson.loads(x) for x in b"".join(stream_findings(session, FindingFormat.JSONL)).splitlines()
        ]
        rows = list(
            csv.DictReader(io.StringIO(b"".join(stream_findings(session, FindingFormat.CSV)).decode()))
        )
    assert [r["id"] for r in rows] == [str(x["id"]) for x in jsonl]
    spray = next(r for r in rows if r["rule_id"] == "m365_password_spray")
    assert spray["people"] == "a@example.com" and "soc2:CC7.2" in spray["controls"]
