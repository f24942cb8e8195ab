"""Fixtures for the attacks of the outside review (issue 21): a real `tenantguard serve` process and
a provider that accepts connections and never answers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from core.settings import Settings
from simulator.http import free_port
from tests.api.conftest import api_settings, app, as_role, client  # noqa: F401 - the API tests' fixtures
from tests.api.test_oidc import identity_provider, signing_key  # noqa: F401 - a loopback SSO issuer
from tests.cli_process import ForkedProcess, popen_cli
from tests.factories import TEST_PEPPER
from tests.remediation.conftest import ato_incident  # noqa: F401 - an account-takeover incident


@dataclass
class BlackHole:
    """A TCP listener that accepts every connection and never sends a byte."""

    port: int
    accepted: int = 0
    changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for(self, connections: int, timeout: float = 120) -> None:
        with self.changed:
            reached = self.changed.wait_for(lambda: self.accepted >= connections, timeout)
        assert reached, f"only {self.accepted} of {connections} connections reached the provider"


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    hole = BlackHole(port=listener.getsockname()[1])
    held: list[socket.socket] = []
    stopping = threading.Event()

    def accept() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)
            with hole.changed:
                hole.accepted += 1
                hole.changed.notify_all()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield hole
    stopping.set()
    listener.close()
    for conn in held:
        conn.close()


@dataclass
class Served:
    process: ForkedProcess
    url: str
    log: Path

    def client(self, token: str | None = None, timeout: float = 120) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture
def serve(settings: Settings, database_url: str, tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """serve(**env) -> a `tenantguard serve --no-scheduler` process on this test's database, healthy."""
    started: list[Served] = []

    def start(**env: str) -> Served:
        port = free_port()
        log = tmp_path / f"serve-{len(started)}.log"
        environment = dict(
            os.environ,
            TENANTGUARD_DATA_DIR=str(settings.data_dir),
            TENANTGUARD_DATABASE_URL=database_url,
            TENANTGUARD_API_TOKEN_PEPPER=TEST_PEPPER,
            **env,
        )
        with log.open("wb") as out:
            process = popen_cli(
                ["serve", "--no-scheduler", "--port", str(port)],
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        served = Served(process, f"http://127.0.0.1:{port}", log)
        started.append(served)
        with httpx.Client(base_url=served.url, timeout=5) as probe:
            for _ in range(600):
                assert process.poll() is None, f"serve exited ({process.returncode}):\n{served.tail()}"
                try:
                    if probe.get("/health").status_code == 200:
                        return served
                except httpx.TransportError:
                    pass
                time.sleep(0.1)  # polling a process that is starting up
        raise AssertionError(f"serve never became healthy:\n{served.tail()}")

    yield start
    for served in started:
        if served.process.poll() is None:
            served.process.send_signal(signal.SIGKILL)
            served.process.wait(10)
