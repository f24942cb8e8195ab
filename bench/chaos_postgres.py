"""A private, throw-away PostgreSQL server that the chaos suite may crash and restart at will.

The dev machine's PostgreSQL on :5432 is shared by everyone's tests, so it is never restarted:
chaos runs ``initdb`` into a temporary directory and ``pg_ctl`` on a spare loopback port instead.
PostgreSQL refuses to run as root, so when we are root the server runs as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class PrivatePostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries here (or no way to run them): the PostgreSQL chaos is skipped."""


def _binaries() -> Path:
    on_path = shutil.which("pg_ctl")
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")) or ([on_path] if on_path else [])
    if not found:
        raise PrivatePostgresUnavailable(
            "pg_ctl not found (looked in /usr/lib/postgresql/*/bin and PATH): install the PostgreSQL server "
            "package to run the PostgreSQL restart chaos"
        )
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PrivatePostgres:
    """One server: its directory, port and the binaries that drive it."""

    root: Path
    port: int
    bin: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _pg_ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w", *args
        )

    def start(self) -> None:
        self._pg_ctl("start")

    def crash(self) -> None:
        """Stop like a crash (``-m immediate``: no checkpoint, clients cut off), then start again."""
        self._pg_ctl("-m", "immediate", "restart")

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "stop")

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.admin_url.rsplit("/", 1)[0] + f"/{name}"


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """Start a fresh server in a temporary directory; stop it and remove everything afterwards."""
    binaries = _binaries()
    root = Path(tempfile.mkdtemp(prefix="tg-chaos-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres")
    server = PrivatePostgres(root, _free_port(), binaries)
    try:
        server._run("initdb", "-D", str(server.data), "-A", "trust", "-U", "postgres", "--no-sync")
        server.start()
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already down: nothing to stop
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
