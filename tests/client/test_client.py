"""tenantguard_client against a running `tenantguard serve`: typed incidents across pages, one
incident with its findings, its timeline, and the API's refusals as ApiError."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tenantguard_client import ApiError, Client, Incident

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
CLI = [sys.executable, "-c", "from cli.main import run; run()"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`tenantguard serve` on a free loopback port over the test's database; (base URL, env)."""
    env = {
        **os.environ,
        "TENANTGUARD_DATABASE_URL": database_url,
        "TENANTGUARD_DATA_DIR": str(tmp_path / "data"),
        "TENANTGUARD_API_RATE_LIMIT_PER_SECOND": "0",
    }
    port = _free_port()
    process = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "serve did not answer within 120 s"
                time.sleep(0.1)
        yield base, env
    finally:
        process.terminate()
        process.wait(timeout=60)


def _token(env: dict[str, str], name: str, role: str) -> str:
    created = subprocess.run(
        [*CLI, "principals", "create", name, "--role", role],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    return created.stdout.strip()


def test_the_client_reads_incidents_across_pages_with_their_findings_and_timeline(
    served: tuple[str, dict[str, str]], make_incident: Callable[..., Any]
) -> None:
    base, env = served
    # Given five incidents, two of them P1
    made = [make_incident(f"incident {n}", priority="P1" if n < 2 else "P3") for n in range(5)]
    token = _token(env, "script", "viewer")
    with Client(base, token, page_size=2) as client:
        # When a script lists them two to a page
        everything = list(client.incidents())
        # Then it gets every one, typed, newest first, across three pages
        assert [i.id for i in everything] == sorted((m.id for m in made), reverse=True)
        assert all(isinstance(i, Incident) for i in everything)
        assert {i.id for i in client.incidents(priority=["P1"])} == {made[0].id, made[1].id}
        # And one incident with its findings, and its timeline
        detail = client.incident(made[0].id)
        assert detail.title == "incident 0" and detail.priority == "P1"
        assert (detail.model_extra or {})["findings_total"] == len(detail.findings)  # newer fields are kept
        timeline = list(client.timeline(made[0].id))
        assert all(item.at is not None for item in timeline)
        assert client.health()["status"] in ("ok", "degraded")
        # And the API's refusals are ApiError with the problem's status and title
        with pytest.raises(ApiError) as missing:
            client.incident(424242)
        assert missing.value.status == 404
    with Client(base, "tg_not-a-token") as stranger, pytest.raises(ApiError) as refused:
        list(stranger.incidents())
    assert refused.value.status == 401
