"""Issue 21: CSV exports escape formula injection (a cell a spreadsheet would run), and the audit
export's own verification still reads every value back exactly."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from fastapi.testclient import TestClient

from core.audit import Actor, AuditAction, Channel, record
from core.db import Database

FORMULAS = [
    '=HYPERLINK("http://evil.example","x")',
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "\t=1",
    "'=already",
    "'plain",
]


def test_the_audit_csv_export_escapes_formulas_and_still_verifies(
    client: TestClient, db: Database, as_role: Callable[[str], dict[str, str]]
) -> None:
    for value in FORMULAS:
        with db.session() as session:
            record(
                session,
                actor=Actor("principal:alice", Channel.API),
                action=AuditAction.CONNECTION_CREATED,
                object_type="connection",
                object_id=value,
                details={},
            )
    export = client.get("/audit/export", params={"format": "csv"}, headers=as_role("auditor"))
    assert export.status_code == 200, export.text
    rows = list(csv.DictReader(io.StringIO(export.text)))
    cells = [row["object_id"] for row in rows if row["action"] == "connection.created"]
    assert cells and all(not cell.startswith(("=", "+", "-", "@", "\t")) for cell in cells), cells
    verified = client.post(
        "/audit/verify", content=export.content, headers={**as_role("auditor"), "Content-Type": "text/csv"}
    )
    assert verified.status_code == 200 and verified.json()["ok"] is True, verified.text


def test_a_suppression_with_an_unbounded_match_list_is_refused(
    client: TestClient, as_role: Callable[[str], dict[str, str]]
) -> None:
    body = {
        "rule_id": "m365_x",
        "match": {"user": [f"u{i}@acme.example" for i in range(5000)]},
        "reason": "noise",
    }
    response = client.post("/suppressions", json=body, headers=as_role("analyst"))
    assert response.status_code == 422, response.text


def test_a_record_with_large_details_still_verifies_from_csv(
    client: TestClient, db: Database, as_role: Callable[[str], dict[str, str]]
) -> None:
    with db.session() as session:
        record(
            session,
            actor=Actor("principal:alice", Channel.API),
            action=AuditAction.CONNECTION_CREATED,
            object_type="connection",
            object_id="big",
            details={"values": ["x" * 1000] * 300},  # ~300 KB: over the csv module's default cell limit
        )
    export = client.get("/audit/export", params={"format": "csv"}, headers=as_role("auditor"))
    verified = client.post(
        "/audit/verify", content=export.content, headers={**as_role("auditor"), "Content-Type": "text/csv"}
    )
    assert verified.status_code == 200 and verified.json()["ok"] is True, verified.text
