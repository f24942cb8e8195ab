"""Given a tenant in the simulator watched by `tenantguard serve`, when serve is SIGKILLed while it
collects and again while it detects, and restarted each time, then once it settles the database
holds what the undisturbed run stored: every served event once, the same findings (by rule and
evidence), the same incidents. The waits are for conditions, never for a time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from bench.chaos_outcome import differences
from core.db import Database
from core.settings import Settings
from simulator.http import free_port
from tests.resilience.conftest import CleanRun, collected_truth, connect, outcome

# One budget for the whole test, inside pytest-timeout's, so that a run that does not settle fails
# with what differs and serve's log rather than with a stack dump: generous, the machine is shared.
BUDGET = 480.0
pytestmark = [pytest.mark.slow, pytest.mark.timeout(BUDGET + 120)]


class Serve:
    """`tenantguard serve` as a real process on the test's database (its log kept across restarts)."""

    def __init__(self, url: str, data_dir: Path, log: Path) -> None:
        self.env = dict(
            os.environ,
            TENANTGUARD_DATABASE_URL=url,
            TENANTGUARD_DATA_DIR=str(data_dir),
            TENANTGUARD_PIPELINE_SWEEP_SECONDS="2",
        )
        self.log = log
        self.process: subprocess.Popen | None = None
        self.kills: list[str] = []
        self.deadline = time.monotonic() + BUDGET

    def start(self) -> None:
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from cli.main import run; run()",
                    "serve",
                    "--port",
                    str(free_port()),
                ],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self, why: str) -> None:
        assert self.process is not None
        assert self.process.poll() is None, f"serve exited before the kill:\n{self.tail()}"
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self.kills.append(why)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def wait_for(
        self,
        what: str,
        condition: Callable[[], bool],
        pause: float = 0.05,
        why_not: Callable[[], object] = lambda: "",
    ) -> None:
        while not condition():
            assert self.process is not None and self.process.poll() is None, (
                f"serve exited ({self.process.returncode if self.process else None}):\n{self.tail()}"
            )
            assert time.monotonic() < self.deadline, (
                f"waited in vain for {what} (kills: {self.kills}): {why_not()}\n{self.tail()}"
            )
            time.sleep(pause)

    def tail(self) -> str:
        """serve's warnings and errors, and the end of its log."""
        if not self.log.exists():
            return ""
        lines = self.log.read_text().splitlines()
        warned = [line for line in lines if " WARNING " in line or " ERROR " in line or "Traceback" in line]
        return "\n".join(warned[-30:] + ["..."] + lines[-20:])


def _count(db: Database, table: str) -> int:
    with db.session(readonly=True) as session:
        return int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_serve_killed_mid_collection_and_mid_detection_ends_as_the_undisturbed_run(
    clean_run: CleanRun, db: Database, settings: Settings, tmp_path: Path
) -> None:
    assert clean_run.served and clean_run.outcome.findings, "the scenario must give events and findings"
    # given the clean run's tenant, connected to a fresh database of the suite's kind, watched by serve
    url = db.url.render_as_string(hide_password=False)
    connect(url, clean_run.tenant.info)
    serve = Serve(url, settings.data_dir, tmp_path / "serve.log")
    truth = collected_truth(clean_run.tenant)
    try:
        # when serve is SIGKILLed as soon as it has stored its first events (collection under way)
        serve.start()
        serve.wait_for("the first stored events", lambda: _count(db, "event") > 0)
        serve.kill(f"collecting: {_count(db, 'event')} of {len(clean_run.served)} events stored")
        # and, restarted, SIGKILLed again as soon as detection has written its first findings
        serve.start()
        serve.wait_for("the first findings", lambda: _count(db, "finding") > 0)
        serve.kill(f"detecting: {_count(db, 'finding')} findings, {_count(db, 'incident')} incidents")
        # and restarted once more, left alone
        serve.start()
        serve.wait_for(
            "the undisturbed run's events, findings and incidents",
            lambda: not differences(clean_run.outcome, outcome(url), truth, clean_run.served),
            pause=1.0,
            why_not=lambda: differences(clean_run.outcome, outcome(url), truth, clean_run.served),
        )
    finally:
        serve.stop()
    # then, serve stopped, nothing is lost or duplicated and detection concluded as undisturbed
    problems = differences(clean_run.outcome, outcome(url), truth, clean_run.served)
    assert problems == [], f"kills: {serve.kills}"
    assert len(serve.kills) == 2
