"""Audit exports made through the API verify offline with `tenantguard audit verify`; tampering fails."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.audit import Actor, AuditAction, Channel, record
from core.db import Database
from core.settings import Settings


def verify_with_cli(path: Path, settings: Settings) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from cli.main import run; run()", "audit", "verify", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "TENANTGUARD_DATA_DIR": str(settings.data_dir), "TENANTGUARD_DATABASE_URL": ""},
        timeout=120,
    )


@pytest.fixture
def chain(db: Database) -> None:
    """A few audit records made by other parts of the product."""
    for i in range(5):
        with db.session() as session:
            record(
                session,
                actor=Actor("system:timeline", Channel.CLI),
                action=AuditAction.INCIDENT_CREATED,
                object_type="incident",
                object_id=i,
                details={"title": f"incident {i}", "note": 'comma, "quote"\nnewline'},
            )


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_api_export_verifies_and_one_changed_line_fails(
    fmt: str,
    chain: None,
    client: TestClient,
    as_role: Callable[[str], dict[str, str]],
    tmp_path: Path,
    settings: Settings,
) -> None:
    # Given an auditor's export through the API
    response = client.get(f"/audit/export?format={fmt}", headers=as_role("auditor"))
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment;")
    export = tmp_path / f"audit.{fmt}"
    export.write_bytes(response.content)
    # Then the offline verifier accepts it
    ok = verify_with_cli(export, settings)
    assert ok.returncode == 0, ok.stderr
    assert "records verified" in ok.stdout
    # When one line is changed
    text = export.read_text()
    tampered = tmp_path / f"tampered.{fmt}"
    tampered.write_text(text.replace("incident 3", "incident 9", 1))
    # Then verification fails and names the altered record
    bad = verify_with_cli(tampered, settings)
    assert bad.returncode == 1
    assert "FAILED" in bad.stderr and "altered" in bad.stderr


def test_an_export_from_since_verifies_on_its_own(
    chain: None,
    client: TestClient,
    as_role: Callable[[str], dict[str, str]],
    db: Database,
    tmp_path: Path,
    settings: Settings,
) -> None:
    with db.session(readonly=True) as session:
        from sqlmodel import select

        from core.models import AuditRecord

        third = session.exec(select(AuditRecord).where(AuditRecord.seq == 3)).one()
    since = third.at.isoformat().replace("+00:00", "Z")
    response = client.get(f"/audit/export?since={since}", headers=as_role("admin"))
    lines = response.content.splitlines()
    assert lines[0].startswith(b'{"action":"incident.created"') and b'"seq":3' in lines[0]
    export = tmp_path / "partial.jsonl"
    export.write_bytes(response.content)
    assert verify_with_cli(export, settings).returncode == 0


def test_exporting_is_itself_recorded(
    chain: None, client: TestClient, as_role: Callable[[str], dict[str, str]]
) -> None:
    client.get("/audit/export?format=csv", headers=as_role("auditor"))
    second = client.get("/audit/export", headers=as_role("auditor"))
    *_, last, head = second.content.splitlines()
    assert b'"action":"audit.exported"' in last and b'"actor":"principal:the-auditor"' in last
    assert head.startswith(b'{"key":"SHA256:') and b'"signed_head":' in head


def test_uploaded_exports_and_the_live_chain_are_verified_by_the_api(
    chain: None, client: TestClient, as_role: Callable[[str], dict[str, str]]
) -> None:
    headers = as_role("auditor")
    export = client.get("/audit/export", headers=headers).content
    good = client.post(
        "/audit/verify", headers={**headers, "Content-Type": "application/x-ndjson"}, content=export
    )
    assert good.status_code == 200 and good.json()["ok"] is True
    tampered = export.replace(b"incident 2", b"incident 7", 1)
    bad = client.post(
        "/audit/verify", headers={**headers, "Content-Type": "application/x-ndjson"}, content=tampered
    )
    assert bad.status_code == 200
    assert bad.json()["ok"] is False and bad.json()["first_bad_seq"] == 3
    nonsense = client.post(
        "/audit/verify", headers={**headers, "Content-Type": "text/csv"}, content=b"a,b\n1,2\n"
    )
    assert nonsense.status_code == 422
    live = client.get("/audit/verify", headers=headers).json()
    assert live["ok"] is True and live["records"] >= 6


def test_the_api_export_is_byte_for_byte_core_export(
    chain: None, client: TestClient, as_role: Callable[[str], dict[str, str]], db: Database
) -> None:
    # Given the chain (the export below records itself first, so compare after it)
    jsonl = client.get("/audit/export", headers=as_role("auditor")).content
    csv_text = client.get("/audit/export?format=csv", headers=as_role("auditor")).content
    # Then the API's faster reader produced exactly what core's exporter produces
    from core.audit import export_csv, export_jsonl, iter_records

    with db.session(readonly=True) as session:
        core_jsonl = b"".join(export_jsonl(iter_records(session)))
        core_csv = "".join(export_csv(iter_records(session))).encode()
    # (the API's export ends with its signed head, a line core's record-only writers leave out)
    jsonl, csv_text = jsonl.rsplit(b"\n", 2)[0] + b"\n", csv_text.rsplit(b"\r\n", 2)[0] + b"\r\n"
    assert core_jsonl.startswith(jsonl) and core_jsonl.count(b"\n") == jsonl.count(b"\n") + 1
    assert core_csv.startswith(csv_text)
