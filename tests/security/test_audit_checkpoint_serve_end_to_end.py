"""End to end: `tenantguard serve`, a real process with a short checkpoint interval, signs the audit
chain's head by itself; `tenantguard audit checkpoint` prints it for anchoring outside, `audit verify`
accepts the live chain and a signed export pinned to the published key and anchored to that
checkpoint — and names the records when the end of the table is cut afterwards (issue 21)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import orjson
import pytest
from sqlmodel import select

from core.audit import Actor, AuditAction, record
from core.db import Database
from core.models import AuditRecord
from core.settings import Settings
from tests.security.test_audit_chain_tampering import _triggers_off
from tests.serve_process import CLI, serve_until

pytestmark = pytest.mark.slow


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120)


def test_serve_signs_checkpoints_by_itself_and_they_anchor_the_chain(
    db: Database, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    # given a chain with a few records, and serve started with a one-second checkpoint interval
    with db.session() as session:
        for n in range(5):
            record(session, actor=Actor.cli("principal:test"), action=AuditAction.INCIDENT_NOTE_ADDED,
                   object_type="incident", object_id=n, details={"n": n})  # fmt: skip
    key_file = tmp_path / "keys" / "audit-signing.key"
    env = dict(
        os.environ,
        TENANTGUARD_DATA_DIR=str(settings.data_dir),
        TENANTGUARD_DATABASE_URL=database_url,
        TENANTGUARD_SIGNING_KEY_FILE=str(key_file),
        TENANTGUARD_PIPELINE_SWEEP_SECONDS="1",
        TENANTGUARD_AUDIT_CHECKPOINT_INTERVAL="1s",
        TENANTGUARD_LOG_LEVEL="DEBUG",
    )
    log = tmp_path / "serve.log"

    # when it runs, it signs the head by itself (no request needed)
    def checkpoints() -> list[AuditRecord]:
        with db.session(readonly=True) as session:
            return list(
                session.exec(
                    select(AuditRecord).where(AuditRecord.action == AuditAction.AUDIT_CHECKPOINTED.value)
                ).all()
            )

    signed = serve_until(env, log, checkpoints, "checkpoint was signed", every=0.5)
    first = signed[0]
    assert first.actor == "system:scheduler" and first.details["seq"] == first.seq - 1
    # the key was made where the setting says, readable by its owner only, and never logged
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    pem_body = key_file.read_text().splitlines()[1]
    assert pem_body not in log.read_text() and "audit checkpoint signed" in log.read_text()
    # then the newest checkpoint is printed for anchoring (mailed to the auditor, published) ...
    printed = _cli(env, "audit", "checkpoint", "-o", str(tmp_path / "anchor.json"))
    assert printed.returncode == 0, printed.stderr
    anchor = orjson.loads((tmp_path / "anchor.json").read_bytes())
    assert anchor["seq"] >= 5 and anchor["key"].startswith("SHA256:") and anchor["signature"]
    public = _cli(env, "audit", "public-key")
    assert public.returncode == 0 and anchor["key"] in public.stdout
    (tmp_path / "published.pem").write_text(public.stdout.split("fingerprint")[0])
    # ... the live chain verifies with its signed checkpoints ...
    live = _cli(env, "audit", "verify", "--database")
    assert live.returncode == 0, live.stdout + live.stderr
    assert "signed checkpoint(s)" in live.stdout and "a trusted key" in live.stdout
    # ... and an auditor with nothing but the export, the published key and the anchor verifies it
    exported = _cli(env, "audit", "export", "-o", str(tmp_path / "audit.jsonl"))
    assert exported.returncode == 0, exported.stderr
    auditor = dict(env, TENANTGUARD_DATA_DIR=str(tmp_path / "auditor"), TENANTGUARD_SIGNING_KEY_FILE="")
    auditor.pop("TENANTGUARD_SIGNING_KEY_FILE")
    offline = _cli(
        auditor, "audit", "verify", str(tmp_path / "audit.jsonl"),
        "--public-key", str(tmp_path / "published.pem"), "--anchor", str(tmp_path / "anchor.json"),
    )  # fmt: skip
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert f"signed by {anchor['key']} (a trusted key)" in offline.stdout
    assert not (tmp_path / "auditor" / "signing.key").exists()  # verifying made no key
    # when records past the checkpoint are cut off the end of the table, verify names them
    with _triggers_off(db, "auditrecord"), db.session() as session:
        session.connection().exec_driver_sql(f"DELETE FROM auditrecord WHERE seq >= {anchor['seq'] - 1}")
    cut = _cli(env, "audit", "verify", "--database")
    assert cut.returncode == 1
    assert f"records {anchor['seq'] - 1}..{anchor['seq']} were cut off the end" in cut.stderr
