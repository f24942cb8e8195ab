"""Given a tenant in the simulator, when collector and worker processes are SIGKILLed mid-run (or
the simulator misbehaves) and then restarted, then the database ends up exactly as after a clean
run: every event the simulator serves stored once, the same findings, the same incidents.

The short CI form of `python -m bench.chaos` (one tiny tenant, one clean run per module, one kill
per stage). PostgreSQL is never restarted here: that is `python -m bench.chaos postgres-restart`.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bench.chaos_kill import KillLog, finish, run_with_kills
from bench.chaos_outcome import differences
from core.db import Database
from tests.resilience.conftest import CleanRun, collected_truth, connect, outcome

pytestmark = pytest.mark.slow

FAULTS = "429=0.1,500=0.05,503=0.03,malformed=0.02,truncated=0.02,duplicate=0.05,late=0.05:1800,retry_after=0:1,seed=3"


def test_killed_collector_and_worker_end_with_the_clean_runs_events_findings_and_incidents(
    clean_run: CleanRun, db: Database, tmp_path: Path
) -> None:
    assert clean_run.served and clean_run.outcome.findings, "the scenario must give events and findings"
    # given the tenant of the clean run, connected to a fresh database of the suite's kind
    url = db.url.render_as_string(hide_password=False)
    connect(url, clean_run.tenant.info)
    log = KillLog()
    rng = random.Random(7)
    # when the collector is SIGKILLed at a random point and restarted,
    run_with_kills(
        "collect",
        url,
        str(tmp_path),
        kills=1,
        clean_seconds=clean_run.stage_seconds["collect"],
        rng=rng,
        log=log,
    )
    # and the detection/incident worker too
    run_with_kills(
        "detect",
        url,
        str(tmp_path),
        kills=1,
        clean_seconds=clean_run.stage_seconds["detect"],
        rng=rng,
        log=log,
    )
    # then (at least one kill having landed mid-stage)
    assert log.kills >= 1, f"no kill landed inside a stage: {log.describe()}"
    # everything the simulator serves is stored once, and findings and incidents are the clean run's
    problems = differences(
        clean_run.outcome, outcome(url), collected_truth(clean_run.tenant), clean_run.served
    )
    assert problems == [], log.describe()


def test_simulator_faults_do_not_change_what_is_stored_or_detected(
    clean_run: CleanRun, db: Database, tmp_path: Path
) -> None:
    # given the same tenant now answering with 429s, 5xx, malformed/truncated pages, duplicates, late events
    url = db.url.render_as_string(hide_password=False)
    connect(url, clean_run.tenant.info)
    clean_run.tenant.set_faults(FAULTS)
    log = KillLog()
    try:
        # when collection runs pass after pass (a malformed page fails a pass loudly), then detection
        finish("collect", url, str(tmp_path), log=log, attempts=6)
        finish("collect", url, str(tmp_path), log=log, attempts=6)
        fired = clean_run.tenant.faults_fired()
    finally:
        clean_run.tenant.set_faults("")
    assert sum(fired.values()) > 0, "the simulator injected no fault: nothing was tested"
    finish("detect", url, str(tmp_path), log=log)
    # then the outcome is the clean run's
    problems = differences(
        clean_run.outcome, outcome(url), collected_truth(clean_run.tenant), clean_run.served
    )
    assert problems == [], log.describe()
