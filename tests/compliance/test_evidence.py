"""Evidence package: built for an audit period, verified offline by `tenantguard audit verify` alone,
refused when one file in it is altered, added or removed."""

from __future__ import annotations

import zipfile
from pathlib import Path

import orjson

from tests.compliance.conftest import AssessedTenant
from tests.compliance.test_cli import _run


def _rewrite(src: Path, dst: Path, change: dict[str, bytes | None]) -> None:
    """A copy of the archive with some members replaced (bytes), dropped (None) or added."""
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w") as new:
        for name in old.namelist():
            if name in change:
                body = change[name]
                if body is not None:
                    new.writestr(name, body)
            else:
                new.writestr(name, old.read(name))
        for name, body in change.items():
            if name not in old.namelist() and body is not None:
                new.writestr(name, body)


def test_an_evidence_package_verifies_offline_and_fails_when_one_file_is_altered(
    assessed_tenant: AssessedTenant, tmp_path: Path
) -> None:
    settings = assessed_tenant.settings
    package = tmp_path / "evidence.zip"
    built = _run(settings, "compliance", "evidence", "--since", "7d", "-o", str(package))
    assert built.returncode == 0, built.stderr
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
        manifest = orjson.loads(archive.read("manifest.json"))
        report = orjson.loads(archive.read("reports/soc2.json"))
    assert {"audit.jsonl", "approvals.jsonl", "exceptions.jsonl", "manifest.json", "manifest.sig"} <= names
    assert {f"reports/{f}.{x}" for f in ("soc2", "iso27001", "cis-gws") for x in ("json", "html")} <= names
    assert manifest["audit"]["records"] > 0 and report["summary"]["fail"] > 0
    # the auditor verifies it with the one command, on nothing but the file
    auditor = settings.model_copy(update={"data_dir": tmp_path / "auditor", "database_url": None})
    ok = _run(auditor, "audit", "verify", str(package))
    assert ok.returncode == 0, ok.stderr
    assert "OK: evidence package" in ok.stdout and manifest["audit"]["head_hash"] in ok.stdout.replace(
        "\n", ""
    )
    # one altered report, one added file, one removed file, an altered manifest: each refused, naming it
    html = zipfile.ZipFile(package).read("reports/soc2.html").replace(b"fail", b"pass")
    cases = {
        "altered": ({"reports/soc2.html": html}, "reports/soc2.html was altered"),
        "added": ({"reports/extra.txt": b"x"}, "not in the manifest: reports/extra.txt"),
        "removed": ({"approvals.jsonl": None}, "approvals.jsonl is listed in the manifest but missing"),
        "manifest": (
            {
                "manifest.json": zipfile.ZipFile(package)
                .read("manifest.json")
                .replace(b'"files"', b'"files" ')
            },
            "signature does not verify",
        ),
    }
    for label, (change, message) in cases.items():
        tampered = tmp_path / f"{label}.zip"
        _rewrite(package, tampered, change)
        bad = _run(settings, "audit", "verify", str(tampered))
        assert bad.returncode == 1 and message in bad.stderr, (label, bad.stdout, bad.stderr)
