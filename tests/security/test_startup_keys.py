"""serve and worker load the signing key and the encryption keys as they start (issue 21): an unsafe
or malformed key file stops them with one line before anything runs; the banner names each key by
its fingerprint, never the key."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from core.audit_keys import fingerprint, load_signing_key, public_raw
from core.crypto import Keyring, load_keys
from simulator.http import free_port
from tests.serve_process import CLI, serve_until


def _env(data_dir: Path) -> dict[str, str]:
    """The data directory's own keys (not the session's shared encryption key)."""
    env = {k: v for k, v in os.environ.items() if k != "TENANTGUARD_ENCRYPTION_KEY_FILE"}
    return {
        **env,
        "TENANTGUARD_DATA_DIR": str(data_dir),
        "TENANTGUARD_DATABASE_URL": "",
        "TENANTGUARD_PIPELINE_ENGINE": "embedded",
    }


def _start(command: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *command], env=_env(data_dir), capture_output=True, text=True, timeout=180, check=False
    )


def _unsafe_signing_key(data_dir: Path) -> str:
    path = data_dir / "signing.key"
    load_signing_key(path)
    path.chmod(0o644)
    return "signing key"


def _malformed_encryption_key(data_dir: Path) -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "encryption.key"
    path.write_text("not-a-fernet-key-SECRETISH\n")
    path.chmod(0o600)
    return "encryption.key line 1 is not a Fernet key"


def _unsafe_encryption_key(data_dir: Path) -> str:
    path = data_dir / "encryption.key"
    load_keys(path, create=True)
    path.chmod(0o640)
    return "encryption key file"


@pytest.mark.parametrize("command", [["serve", "--no-scheduler"], ["worker"]], ids=["serve", "worker"])
@pytest.mark.parametrize("spoil", [_unsafe_signing_key, _malformed_encryption_key, _unsafe_encryption_key])
def test_a_bad_key_file_stops_the_process_with_one_line(tmp_path: Path, command: list[str], spoil) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "data"
    expected = spoil(data_dir)
    done = _start(
        [*command[:1], *(["--port", str(free_port())] if command[0] == "serve" else []), *command[1:]],
        data_dir,
    )
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and expected in lines[-1], done.stderr
    assert "Traceback" not in done.stderr
    assert "SECRETISH" not in done.stderr + done.stdout  # a malformed key line is never echoed
    assert "tenantguard on http" not in done.stderr  # nothing was served


def test_the_serve_banner_names_the_keys_by_fingerprint(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    log = tmp_path / "serve.log"
    serve_until(_env(data_dir), log, lambda: "encryption key SHA256:" in log.read_text(), "key banner")
    text = log.read_text()
    signing = load_signing_key(data_dir / "signing.key", create=False)
    ring = Keyring.load(data_dir / "encryption.key", create=False)
    assert f"signing key {fingerprint(public_raw(signing))}" in text
    assert f"encryption key {ring.fingerprint}" in text
    key_file = (data_dir / "signing.key").read_text()
    body = "".join(key_file.splitlines()[1:-1])
    assert body[:40] not in text.replace("\n", "")
    assert ring.keys[0].decode() not in text
