"""Start a simulator in-process (tests) or in its own process (the demo: it gets a core of its own)
and talk to it through a small handle."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulator.admin_view import stream_digest
from simulator.scenario import Scenario, load_scenario
from simulator.server import Simulator
from simulator.world import build_world

if TYPE_CHECKING:
    from simulator.mail import MailServer
    from simulator.oidc import OidcProvider


@dataclass
class SimulatorHandle:
    """A running simulator: connection info, ground truth, recorded writes, fault control."""

    sim: Simulator

    @property
    def info(self) -> dict[str, Any]:
        return self.sim.info()

    @property
    def truth(self) -> dict[str, Any]:
        return self.sim.world.truth()

    @property
    def changes(self) -> list[dict[str, Any]]:
        """Every write call (remediation) recorded so far, oldest first."""
        return [c.to_json() for c in list(self.sim.state.changes)]

    @property
    def requests(self) -> list[dict[str, Any]]:
        return list(self.sim.requests)

    @property
    def base_url(self) -> str:
        return self.sim.base_url

    @property
    def mail(self) -> MailServer:
        """The loopback SMTP/IMAP pair and what it delivered (started on first use)."""
        return self.sim.start_mail()

    @property
    def oidc(self) -> OidcProvider:
        """The OpenID provider at ``info["oidc.issuer"]``: its people, sign-ins and refusals."""
        return self.sim.oidc

    def set_faults(self, spec: str) -> None:
        self.sim.set_faults(spec)

    def faults_fired(self) -> dict[str, int]:
        return dict(self.sim.faults.fired)

    def advance(self, seconds: float) -> None:
        """Move the simulator clock forward (lagging and late events become visible, tokens age)."""
        self.sim.clock_offset += int(seconds * 1_000_000)

    def expire_tokens(self, vendor: str | None = None) -> int:
        return self.sim.tokens.expire_all(vendor)

    def events(self, stream: str, visible: bool = False, ids: bool = True) -> dict[str, Any]:
        """Count, digest and (optionally) every provider id of a stream such as "m365:signins"."""
        return stream_digest(self.sim, stream, visible, ids)

    def stop(self) -> None:
        self.sim.stop()

    def __enter__(self) -> SimulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(
    scenario: str | Path | Scenario = "account_takeover",
    users: int | None = None,
    days: int | None = None,
    seed: int | None = None,
    start: str | int | None = None,
    faults: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    tls_port: int = 0,
    paging: dict[str, int] | None = None,
    lag: dict[str, str | int] | None = None,
    mail: bool = False,
) -> SimulatorHandle:
    """Build the world and serve it on loopback (port 0 = any free port) in background threads;
    `mail` starts the SMTP/IMAP pair too (`simulator serve` does; tests ask when they need it)."""
    loaded = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if paging or lag:
        from simulator.timestamps import parse_duration

        loaded = replace(
            loaded,
            paging={**loaded.paging, **(paging or {})},
            lag={
                **loaded.lag,
                **{
                    k: parse_duration(v) if isinstance(v, str) else int(v * 1_000_000)
                    for k, v in (lag or {}).items()
                },
            },
        )
    world = build_world(loaded, users=users, days=days, seed=seed, start=start)
    sim = Simulator(world, faults=faults, host=host, port=port, tls_port=tls_port)
    sim.start()
    if mail:
        sim.start_mail()
    return SimulatorHandle(sim)


@dataclass
class SimulatorProcess:
    """A simulator serving in its own process (`python -m simulator serve`): the same connection
    info, ground truth and recorded writes as `SimulatorHandle`, read over its /_sim/ endpoints."""

    process: subprocess.Popen[bytes]
    info: dict[str, Any]

    def _admin(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.info['admin_url']}/{path}", timeout=60) as answer:
            return json.loads(answer.read())

    @property
    def truth(self) -> dict[str, Any]:
        return dict(self._admin("truth"))

    @property
    def changes(self) -> list[dict[str, Any]]:
        """Every write call (remediation) recorded so far, oldest first."""
        return list(self._admin("changes"))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def spawn(
    scenario: str,
    users: int | None = None,
    days: int | None = None,
    *,
    seed: int | None = None,
    faults: str | None = None,
    start: str | None = None,
) -> SimulatorProcess:
    """`python -m simulator serve` for `scenario`, once it has printed its connection info.

    `faults` is a fault profile name or file (`--faults`), `start` the world's start (`--start`,
    ISO 8601; in the future for a live clock). Used by the demo and the benchmarks."""
    command = [sys.executable, "-m", "simulator", "serve", "--scenario", scenario, "--port", "0"]
    for flag, value in (
        ("--users", users),
        ("--days", days),
        ("--seed", seed),
        ("--faults", faults),
        ("--start", start),
    ):
        if value is not None and value != "":
            command += [flag, str(value)]
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors)
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            process.wait(timeout=10)
            errors.seek(0)
            said = errors.read().decode(errors="replace").strip().splitlines()
            from simulator.errors import SimulatorError

            raise SimulatorError(said[-1] if said else f"the simulator exited ({process.returncode})")
    return SimulatorProcess(process, json.loads(line))
