"""`tenantguard principals`: the token is printed once, never listed, and disabling revokes it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.config import ApiSettings
from core.db import Database
from core.settings import Settings
from tests.cli_process import run_cli


def cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(
        args,
        env={
            **os.environ,
            "TENANTGUARD_DATA_DIR": str(data_dir),
            "TENANTGUARD_DATABASE_URL": "",
            "COLUMNS": "200",
        },
        timeout=120,
    )


@pytest.mark.slow
def test_create_list_disable(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # When an operator creates the database, then a principal
    assert cli("db", "upgrade", data_dir=data_dir).returncode == 0
    created = cli("principals", "create", "alice", "--role", "analyst", data_dir=data_dir)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("tg_") and "cannot be shown again" in created.stderr
    # Then the token works against the API of the same installation
    settings = Settings(data_dir=data_dir)
    db = Database.from_settings(settings)
    app = create_app(settings, db, api_settings=ApiSettings())
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/findings", headers=headers).status_code == 200
        assert client.get("/audit/verify", headers=headers).status_code == 403  # analysts do not audit
        # And listing shows the principal, never the token
        listing = cli("principals", "list", data_dir=data_dir)
        assert "alice" in listing.stdout and "analyst" in listing.stdout and token not in listing.stdout
        # When it is disabled, the token stops working
        assert cli("principals", "disable", "alice", data_dir=data_dir).returncode == 0
        assert client.get("/findings", headers=headers).status_code == 401
    db.dispose()
    # And a bad role is one clear line, no traceback
    bad = cli("principals", "create", "bob", "--role", "boss", data_dir=data_dir)
    assert bad.returncode == 1 and "boss" in bad.stderr and "Traceback" not in bad.stderr
