"""Given a tenant in the simulator, when collector or worker processes are SIGKILLed mid-run (or the
simulator misbehaves) and then restarted, then the database ends up exactly as after a clean run:
every event once, every ground-truth event present, the same findings and incidents.

The short CI form of `python -m bench.chaos` (one tiny tenant, one or two kills per test).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench.chaos_kill import KillLog, finish, run_with_kills
from bench.chaos_outcome import Outcome, differences, snapshot, truth_event_keys
from core.db import Database

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("pipeline_stages")]

SCENARIO = "account_takeover"
FAULTS = "429=0.1,5xx=0.05,malformed=0.02,duplicate=0.05,late=0.05"


def _connect(url: str, info: dict[str, Any]) -> None:
    from bench.e2e import connect_simulator

    database = Database(url)
    connect_simulator(database, info)
    database.dispose()


def _outcome(url: str) -> Outcome:
    database = Database(url)
    try:
        return snapshot(database)
    finally:
        database.dispose()


def _clean_run(url: str, data_dir: Path, info: dict[str, Any]) -> tuple[Outcome, dict[str, float]]:
    _connect(url, info)
    log = KillLog()
    collect = finish("collect", url, str(data_dir), log=log)
    detect = finish("detect", url, str(data_dir), log=log)
    return _outcome(url), {"collect": collect.seconds, "detect": detect.seconds}


@pytest.fixture
def tenant(simulators: Callable[..., Any]) -> Any:
    return simulators(scenario=SCENARIO, users=8, days=1, seed=11)


def test_a_collector_killed_mid_run_loses_and_duplicates_nothing(
    tenant: Any, fresh_database_url: Callable[[str], str], tmp_path: Path
) -> None:
    # given a clean run of the scenario for reference
    clean, seconds = _clean_run(fresh_database_url("clean"), tmp_path / "clean", tenant.info)
    assert clean.events, "the scenario produced no events: nothing would be tested"
    # when the collector is SIGKILLed twice at random points and then restarted
    url = fresh_database_url("chaos")
    _connect(url, tenant.info)
    log = KillLog()
    run_with_kills(
        "collect",
        url,
        str(tmp_path / "chaos"),
        kills=2,
        clean_seconds=seconds["collect"],
        rng=random.Random(1),
        log=log,
    )
    finish("detect", url, str(tmp_path / "chaos"), log=log)
    # then the outcome is the clean run's, with every ground-truth event stored once
    assert differences(clean, _outcome(url), truth_event_keys(tenant.truth)) == [], log.describe()


def test_a_worker_killed_mid_detection_ends_with_the_same_incidents(
    tenant: Any, fresh_database_url: Callable[[str], str], tmp_path: Path
) -> None:
    # given a clean run of the scenario for reference
    clean, seconds = _clean_run(fresh_database_url("clean"), tmp_path / "clean", tenant.info)
    # when the detection/incident worker is SIGKILLed twice mid-run and then restarted
    url = fresh_database_url("chaos")
    _connect(url, tenant.info)
    log = KillLog()
    finish("collect", url, str(tmp_path / "chaos"), log=log)
    run_with_kills(
        "detect",
        url,
        str(tmp_path / "chaos"),
        kills=2,
        clean_seconds=seconds["detect"],
        rng=random.Random(2),
        log=log,
    )
    # then findings and incidents are those of the clean run
    assert differences(clean, _outcome(url)) == [], log.describe()


def test_simulator_faults_and_a_kill_still_converge_to_the_ground_truth(
    simulators: Callable[..., Any], fresh_database_url: Callable[[str], str], tmp_path: Path
) -> None:
    # given a clean run, and the same tenant served with 429s, 5xx, malformed pages, duplicates, late events
    clean_tenant = simulators(scenario=SCENARIO, users=8, days=1, seed=12)
    clean, seconds = _clean_run(fresh_database_url("clean"), tmp_path / "clean", clean_tenant.info)
    faulty = simulators(scenario=SCENARIO, users=8, days=1, seed=12, faults=FAULTS)
    url = fresh_database_url("faults")
    _connect(url, faulty.info)
    # when the collector is killed once, then runs pass after pass (a malformed page fails a pass loudly)
    log = KillLog()
    run_with_kills(
        "collect",
        url,
        str(tmp_path / "faults"),
        kills=1,
        clean_seconds=seconds["collect"],
        rng=random.Random(3),
        log=log,
        attempts=8,
    )
    finish("collect", url, str(tmp_path / "faults"), log=log, attempts=8)
    finish("detect", url, str(tmp_path / "faults"), log=log)
    # then nothing is lost or duplicated and detection is unchanged
    assert differences(clean, _outcome(url), truth_event_keys(faulty.truth)) == [], log.describe()
