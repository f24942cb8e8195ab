"""Evidence packages: one signed archive for an audit period that an auditor verifies offline.

The zip holds the audit chain export of the period (`audit.jsonl`), every framework report as of
the period's end (JSON and HTML), the approvals and exceptions decided in the period, and whatever
else the caller adds (incident reports), plus `manifest.json` — the SHA-256 of every file, the
audit chain's head hash and the signer's Ed25519 public key — and `manifest.sig`, the signature of
the manifest's exact bytes. `verify_package` (what `tenantguard audit verify PACKAGE.zip` runs)
checks the signature, every file's hash, that no file was added or removed, and the audit chain
inside; the auditor compares the printed key fingerprint with the one the operator published.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlmodel import col, select

from compliance.exceptions import snapshot
from compliance.frameworks import Framework
from compliance.render import ReportFormat, render
from compliance.report import build_report
from core.audit import Actor, AuditAction, record, stream_export, verify_export
from core.audit_keys import TrustedKeys, fingerprint, public_raw
from core.clock import as_utc, isoformat, utcnow
from core.db import Database
from core.models import Approval, ComplianceException

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
FORMAT = "tenantguard-evidence/1"


@dataclass(frozen=True)
class PackageCheck:
    ok: bool
    files: int
    reason: str = ""
    key_fingerprint: str = ""
    audit_records: int = 0
    audit_head_hash: str | None = None


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(r, default=str) + b"\n" for r in rows)


def build_package(
    db: Database,
    out: Path,
    *,
    since: datetime,
    until: datetime,
    key: Ed25519PrivateKey,
    actor: Actor,
    extra_files: dict[str, bytes] | None = None,
) -> dict[str, Any]:
    """Write the signed archive to `out`; return its manifest. The build is itself audited."""
    since, until = as_utc(since), as_utc(until)
    files: dict[str, bytes] = {}
    with db.session(readonly=True) as session:
        files["audit.jsonl"] = b"".join(stream_export(session, "jsonl", since=since, key=key))
        for framework in Framework:
            report = build_report(session, framework, at=until)
            files[f"reports/{framework.value}.json"] = render(report, ReportFormat.JSON)
            files[f"reports/{framework.value}.html"] = render(report, ReportFormat.HTML)
        approvals = session.exec(
            select(Approval)
            .where(col(Approval.at) >= since, col(Approval.at) <= until)
            .order_by(col(Approval.id))
        ).all()
        files["approvals.jsonl"] = _jsonl(
            [
                {
                    "id": a.id,
                    "action_id": a.action_id,
                    "principal": a.principal,
                    "decision": a.decision,
                    "comment": a.comment,
                    "via": a.via,
                    "at": isoformat(a.at),
                    "role": a.role,
                }
                for a in approvals
            ]  # fmt: skip
        )
        exceptions = session.exec(
            select(ComplianceException).where(col(ComplianceException.requested_at) <= until)
        ).all()
        files["exceptions.jsonl"] = _jsonl([snapshot(e) for e in exceptions])
    for name, body in (extra_files or {}).items():
        files[name] = body
    head = verify_export_bytes(files["audit.jsonl"])
    manifest = {
        "format": FORMAT,
        "created_at": isoformat(utcnow()),
        "period": {"since": isoformat(since), "until": isoformat(until)},
        "created_by": actor.name,
        "audit": {"records": head.audit_records, "head_hash": head.audit_head_hash},
        "public_key": base64.b64encode(public_raw(key.public_key())).decode(),
        "files": {name: hashlib.sha256(body).hexdigest() for name, body in sorted(files.items())},
    }
    manifest_bytes = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    signature = base64.b64encode(key.sign(manifest_bytes))
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, body in sorted(files.items()):
            archive.writestr(name, body)
        archive.writestr(MANIFEST, manifest_bytes)
        archive.writestr(SIGNATURE, signature)
    with db.session() as session:
        record(
            session,
            actor=actor,
            action=AuditAction.COMPLIANCE_EVIDENCE_PACKAGED,
            object_type="evidence_package",
            object_id=out.name,
            details={
                "period": manifest["period"],
                "files": len(files),
                "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
                "key": fingerprint(public_raw(key.public_key())),
            },
        )
    return manifest


def verify_export_bytes(body: bytes, trusted: TrustedKeys | None = None) -> PackageCheck:
    """The audit chain export inside a package (its signed head included), verified with the same
    offline verifier."""
    with tempfile.TemporaryDirectory(prefix="tenantguard-evidence-") as tmp:
        path = Path(tmp) / "audit.jsonl"
        path.write_bytes(body)
        result = verify_export(path, trusted=trusted) if body else None
    if result is None:
        return PackageCheck(True, 0, audit_records=0, audit_head_hash=None)
    return PackageCheck(
        result.ok, 0, result.reason, audit_records=result.records, audit_head_hash=result.head_hash
    )


def is_package(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return MANIFEST in archive.namelist()


def verify_package(path: Path, trusted: TrustedKeys | None = None) -> PackageCheck:
    """Signature, every file's hash, no file added or missing, and the audit chain inside (signed by
    the same key as the manifest). `trusted`: the keys to accept (unpinned: the package's own key,
    whose fingerprint the result names for comparison with the published one)."""
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        if MANIFEST not in names or SIGNATURE not in names:
            return PackageCheck(False, 0, f"{path.name} has no {MANIFEST} and {SIGNATURE}")
        manifest_bytes = archive.read(MANIFEST)
        manifest = orjson.loads(manifest_bytes)
        raw = base64.b64decode(manifest.get("public_key", ""))
        fp = fingerprint(raw)
        if trusted is not None and trusted.pinned and raw not in trusted.keys:
            return PackageCheck(False, 0, f"the package is signed by {fp}, which is not a trusted key", fp)
        try:
            Ed25519PublicKey.from_public_bytes(raw).verify(
                base64.b64decode(archive.read(SIGNATURE)), manifest_bytes
            )
        except (InvalidSignature, ValueError):
            return PackageCheck(False, 0, "the manifest's signature does not verify (manifest altered)", fp)
        listed: dict[str, str] = manifest.get("files", {})
        extra = sorted(names - set(listed) - {MANIFEST, SIGNATURE})
        if extra:
            return PackageCheck(False, len(listed), f"file(s) not in the manifest: {', '.join(extra)}", fp)
        for name, digest in sorted(listed.items()):
            if name not in names:
                return PackageCheck(False, len(listed), f"{name} is listed in the manifest but missing", fp)
            if hashlib.sha256(archive.read(name)).hexdigest() != digest:
                return PackageCheck(False, len(listed), f"{name} was altered (its SHA-256 differs)", fp)
        audit = (
            verify_export_bytes(archive.read("audit.jsonl"), TrustedKeys.of([raw]))
            if "audit.jsonl" in listed
            else None
        )
    if audit is not None and not audit.ok:
        return PackageCheck(False, len(listed), f"audit.jsonl: {audit.reason}", fp)
    head = audit.audit_head_hash if audit else None
    if head != manifest.get("audit", {}).get("head_hash"):
        return PackageCheck(False, len(listed), "the audit chain's head hash differs from the manifest's", fp)
    return PackageCheck(True, len(listed), "", fp, audit.audit_records if audit else 0, head)
