"""`/health` for load balancers, `/metrics` for Prometheus, and `tenantguard serve` end to end."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.config import ApiSettings


def test_health_needs_no_credentials_and_names_the_database(client: TestClient, db) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["database"] == db.dialect and body["schema_current"] is True


def test_metrics_count_requests_by_route_template(
    client: TestClient, as_role: Callable[[str], dict[str, str]], make_finding: Callable[..., object]
) -> None:
    make_finding(severity="high")
    for finding_id in (1, 2, 3):
        client.get(f"/findings/{finding_id}", headers=as_role("viewer"))
    text = client.get("/metrics").text
    assert (
        'tenantguard_http_requests_total{method="GET",route="/findings/{finding_id}",status="404"} 2.0'
        in text
    )
    assert 'route="/findings/{finding_id}",status="200"} 1.0' in text
    assert 'tenantguard_open_findings{severity="high"} 1.0' in text


def test_metrics_can_require_a_token(settings, db) -> None:  # type: ignore[no-untyped-def]
    app = create_app(settings, db, api_settings=ApiSettings(token_pepper="p" * 40, metrics_require_auth=True))
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 401


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_serve_applies_migrations_and_answers(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "TENANTGUARD_DATA_DIR": str(tmp_path / "data"), "TENANTGUARD_DATABASE_URL": ""}
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from cli.main import run; run()",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        body = None
        for _ in range(300):
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).json()
                break
            except httpx.TransportError:
                if process.poll() is not None:
                    break
                time.sleep(0.1)
        assert body is not None, process.stderr.read().decode() if process.poll() is not None else "no answer"
        assert body["status"] == "ok" and body["schema_current"] is True
    finally:
        process.terminate()
        process.wait(timeout=30)
    # And it stopped cleanly with the collectors' scheduler running alongside
    stderr = process.stderr.read().decode()  # type: ignore[union-attr]
    assert "scheduler is not available" not in stderr and "Traceback" not in stderr
