"""`make chaos`: kill, crash and fault the pipeline during scenario runs; the outcome must not change.

Each case runs a simulator scenario twice on fresh databases — once clean, once under chaos —
and compares what was stored (:mod:`bench.chaos_outcome`): the same events (none lost, none
duplicated, every ground-truth event present), the same findings, the same incidents.

Cases
  collector-kill    collector processes SIGKILLed at random points, then restarted (SQLite)
  worker-kill       detection/incident worker processes SIGKILLed at random points (SQLite)
  faults            the simulator injects 429s, 5xx, malformed pages, duplicates, late events
  postgres-restart  a *private* PostgreSQL (initdb/pg_ctl on a spare port; never the shared
                    server) crashed (`pg_ctl -m immediate restart`) under the collector and
                    under the detection worker, plus kills
  fuzz              tests/fuzz with a large random budget (TENANTGUARD_FUZZ_EXAMPLES)

``python -m bench.chaos [--quick] [--seed N] [CASE ...]``; writes bench/results/chaos.json and
exits 1 if any case failed. The short CI form is tests/resilience (SQLite/--db, one kill each).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.chaos_kill import KillLog, StageMissing, finish, run_with_kills
from bench.chaos_outcome import (
    EventKey,
    Outcome,
    differences,
    simulator_event_keys,
    snapshot,
    truth_event_keys,
)
from bench.harness import RESULTS_DIR
from simulator.timestamps import DAY, SECOND, parse_time, settled_period_start, to_datetime

SCENARIO = "account_takeover"
FAULTS = (
    "429=0.10,500=0.03,503=0.02,malformed=0.01,truncated=0.01,duplicate=0.05,late=0.02:1800,retry_after=0:1"
)
EVENT_STREAMS = {
    "signins",
    "directory_audits",
    "unified_audit",
    "risk_detections",
    "login",
    "admin",
    "drive",
    "token",
    "saml",
    "user_accounts",
    "audit",
}


@dataclass(frozen=True)
class Size:
    users: int
    days: int
    kills: int


QUICK = Size(users=20, days=2, kills=2)
FULL = Size(users=200, days=7, kills=4)


@dataclass(frozen=True)
class CaseResult:
    case: str
    passed: bool | None  # None: could not run here (missing stage or binaries)
    detail: str
    clean: str = ""
    chaos: str = ""
    seconds: float = 0.0


# --- simulator, databases and the two runs -------------------------------------------------------


# The scenario ended yesterday and some streams lag (Google: minutes; a "late" fault: more):
# moving the simulator clock this far past now makes every event readable, so a clean run and a
# later chaos run see the same data.
SETTLE_SECONDS = 6 * 3600


@dataclass(frozen=True)
class Served:
    """What a running simulator offers: connection info, ground truth, every event it serves."""

    info: dict[str, Any]
    truth: dict[str, Any]
    events: frozenset[EventKey]


def _admin(info: dict[str, Any], path: str, **kwargs: Any) -> Any:
    import requests

    method = "POST" if "json" in kwargs else "GET"
    response = requests.request(method, f"{info['admin_url']}{path}", timeout=120, **kwargs)
    response.raise_for_status()
    return response.json()


def served_events(info: dict[str, Any]) -> frozenset[EventKey]:
    """Every event stream's provider ids, as the simulator reports them (conversations excluded)."""
    streams = [s for s in _admin(info, "/events")["streams"] if s.split(":")[1] in EVENT_STREAMS]
    return simulator_event_keys(
        (s, _admin(info, f"/events/{s.replace(':', '/')}", params={"ids": 1, "visible": 1})["ids"])
        for s in streams
    )


def scenario_start(size: Size) -> str:
    """Where the scenario starts so that it ended at 22:00 UTC yesterday (same for both runs of a
    case): its events are then fixed (`simulator.timestamps.settled_period_start`)."""
    return to_datetime(settled_period_start(size.days)).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextmanager
def simulator(size: Size, seed: int, faults: str | None = None, start: str | None = None) -> Iterator[Served]:
    """A simulator serving in its own process, its clock moved on so every event is readable."""
    from bench.e2e import simulator_process

    start = start or scenario_start(size)
    with simulator_process(SCENARIO, size.users, size.days, seed, faults=faults, start=start) as info:
        if info is None:
            raise StageMissing("the simulator (python -m simulator serve)")
        ended = parse_time(start) + size.days * DAY  # the simulator's clock starts there
        _admin(info, "/clock", json={"advance": time.time() - ended / SECOND + SETTLE_SECONDS})
        yield Served(info, _admin(info, "/truth"), served_events(info))


def sqlite_url(tmp: Path, name: str) -> str:
    from core.db import Database

    url = f"sqlite:///{tmp / name}.db"
    database = Database(url)
    database.upgrade()
    database.dispose()
    return url


def prepared(url: str, info: dict[str, Any]) -> None:
    """Connections for the simulator stored in the database at `url`."""
    from bench.e2e import connect_simulator
    from core.db import Database

    database = Database(url)
    connect_simulator(database, info)
    database.dispose()


def outcome_of(url: str) -> Outcome:
    from core.db import Database

    database = Database(url)
    try:
        return snapshot(database)
    finally:
        database.dispose()


def clean_run(url: str, data_dir: str, info: dict[str, Any]) -> tuple[Outcome, dict[str, float]]:
    """Collect then detect, once each, undisturbed; also how long each took (to aim the kills)."""
    prepared(url, info)
    log = KillLog()
    collect = finish("collect", url, data_dir, log=log)
    detect = finish("detect", url, data_dir, log=log)
    return outcome_of(url), {"collect": collect.stage_seconds, "detect": detect.stage_seconds}


def verdict(
    case: str, clean: Outcome, chaos: Outcome, served: Served, log: KillLog, started: float
) -> CaseResult:
    problems = differences(clean, chaos, truth_event_keys(served.truth), served.events)
    detail = "; ".join(problems) if problems else f"identical outcome after {log.kills} kills"
    return CaseResult(
        case,
        not problems,
        f"{detail} [{log.describe()}]",
        clean.summary(),
        chaos.summary(),
        time.perf_counter() - started,
    )


# --- the cases --------------------------------------------------------------------------------------


def case_kill(stage: str, size: Size, seed: int) -> CaseResult:
    started = time.perf_counter()
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="tg-chaos-") as tmp_name, simulator(size, seed) as served:
        tmp = Path(tmp_name)
        clean_url, chaos_url = sqlite_url(tmp, "clean"), sqlite_url(tmp, "chaos")
        clean, seconds = clean_run(clean_url, str(tmp / "clean-data"), served.info)
        prepared(chaos_url, served.info)
        log = KillLog()
        data = str(tmp / "chaos-data")
        if stage == "collect":
            run_with_kills(
                "collect",
                chaos_url,
                data,
                kills=size.kills,
                clean_seconds=seconds["collect"],
                rng=rng,
                log=log,
            )
            finish("detect", chaos_url, data, log=log)
        else:
            finish("collect", chaos_url, data, log=log)
            run_with_kills(
                "detect", chaos_url, data, kills=size.kills, clean_seconds=seconds["detect"], rng=rng, log=log
            )
        return verdict(
            "collector-kill" if stage == "collect" else "worker-kill",
            clean,
            outcome_of(chaos_url),
            served,
            log,
            started,
        )


def case_faults(size: Size, seed: int) -> CaseResult:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tg-chaos-") as tmp_name:
        tmp = Path(tmp_name)
        start = scenario_start(size)
        with simulator(size, seed, start=start) as served:
            clean, _ = clean_run(sqlite_url(tmp, "clean"), str(tmp / "clean-data"), served.info)
        with simulator(size, seed, faults=FAULTS, start=start) as served:
            url = sqlite_url(tmp, "faults")
            prepared(url, served.info)
            log = KillLog()
            # Faults may fail a pass on purpose (a malformed page is quarantined and the run fails
            # loudly without moving the checkpoint): later passes must still converge.
            finish("collect", url, str(tmp / "faults-data"), log=log, attempts=8)
            finish("collect", url, str(tmp / "faults-data"), log=log, attempts=8)
            finish("detect", url, str(tmp / "faults-data"), log=log)
        return verdict("faults", clean, outcome_of(url), served, log, started)


def case_postgres_restart(size: Size, seed: int) -> CaseResult:
    from bench.chaos_postgres import PrivatePostgresUnavailable, private_postgres
    from core.db import Database

    started = time.perf_counter()
    rng = random.Random(seed)
    try:
        server_context = private_postgres()
        server = server_context.__enter__()
    except (PrivatePostgresUnavailable, subprocess.CalledProcessError) as exc:
        return CaseResult("postgres-restart", None, f"skipped: {exc}")
    try:
        with (
            tempfile.TemporaryDirectory(prefix="tg-chaos-") as tmp_name,
            simulator(size, seed) as served,
        ):
            tmp = Path(tmp_name)
            urls = {}
            for name in ("clean", "chaos"):
                urls[name] = server.create_database(name)
                Database(urls[name]).upgrade()
            clean, seconds = clean_run(urls["clean"], str(tmp / "clean-data"), served.info)
            prepared(urls["chaos"], served.info)
            log = KillLog()
            data = str(tmp / "chaos-data")

            def crash_soon(stage_seconds: float) -> Callable[[], None]:
                def crash() -> None:
                    time.sleep(rng.uniform(0.05, 0.6) * max(stage_seconds, 0.2))
                    server.crash()

                return crash

            from bench.chaos_kill import run_worker

            log.runs.append(run_worker("collect", urls["chaos"], data, during=crash_soon(seconds["collect"])))
            run_with_kills(
                "collect", urls["chaos"], data, kills=1, clean_seconds=seconds["collect"], rng=rng, log=log
            )
            log.runs.append(run_worker("detect", urls["chaos"], data, during=crash_soon(seconds["detect"])))
            run_with_kills(
                "detect", urls["chaos"], data, kills=1, clean_seconds=seconds["detect"], rng=rng, log=log
            )
            return verdict("postgres-restart", clean, outcome_of(urls["chaos"]), served, log, started)
    finally:
        server_context.__exit__(None, None, None)


def case_fuzz(quick: bool) -> CaseResult:
    started = time.perf_counter()
    examples = "300" if quick else "3000"
    command = [sys.executable, "-m", "pytest", "tests/fuzz", "-q", "-p", "no:cacheprovider", "-W", "ignore"]
    done = subprocess.run(
        command,
        env={**os.environ, "TENANTGUARD_FUZZ_EXAMPLES": examples},
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-300:]
    return CaseResult(
        "fuzz",
        done.returncode == 0,
        f"{examples} examples per target: {last}",
        seconds=time.perf_counter() - started,
    )


CASES: dict[str, Callable[[Size, int, bool], CaseResult]] = {
    "collector-kill": lambda size, seed, quick: case_kill("collect", size, seed),
    "worker-kill": lambda size, seed, quick: case_kill("detect", size, seed),
    "faults": lambda size, seed, quick: case_faults(size, seed),
    "postgres-restart": lambda size, seed, quick: case_postgres_restart(size, seed),
    "fuzz": lambda size, seed, quick: case_fuzz(quick),
}


def run_cases(names: list[str], quick: bool, seed: int) -> list[CaseResult]:
    size = QUICK if quick else FULL
    results = []
    for name in names:
        print(f"== chaos: {name}", file=sys.stderr, flush=True)
        try:
            result = CASES[name](size, seed, quick)
        except StageMissing as exc:
            result = CaseResult(name, None, f"skipped: stage missing in this tree: {exc}")
        except Exception as exc:  # noqa: BLE001 - a case that blows up is a failed case, reported as such
            result = CaseResult(name, False, f"error: {type(exc).__name__}: {str(exc)[:500]}")
        print(
            f"   {name}: {'PASS' if result.passed else 'SKIP' if result.passed is None else 'FAIL'} — {result.detail}",
            file=sys.stderr,
            flush=True,
        )
        results.append(result)
    return results


def print_results(results: list[CaseResult]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="tenantguard chaos (clean run vs run under chaos)")
    for column in ("case", "result", "clean run", "chaos run", "detail", "s"):
        table.add_column(column)
    for r in results:
        verdict_text = "PASS" if r.passed else "SKIP" if r.passed is None else "FAIL"
        table.add_row(r.case, verdict_text, r.clean, r.chaos, r.detail, f"{r.seconds:.0f}")
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos")
    parser.add_argument("cases", nargs="*", help=f"cases to run (default: all of {', '.join(CASES)})")
    parser.add_argument("--quick", action="store_true", help="a smaller tenant and fewer kills")
    parser.add_argument(
        "--seed", type=int, default=int(time.time()) % 10_000, help="kill points and scenario seed"
    )
    args = parser.parse_args(argv)
    names = args.cases or list(CASES)
    unknown = [name for name in names if name not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    print(f"chaos seed {args.seed} (re-run with --seed {args.seed})", file=sys.stderr)
    results = run_cases(names, args.quick, args.seed)
    print_results(results)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / "chaos.json"
    path.write_bytes(
        orjson.dumps(
            {"seed": args.seed, "quick": args.quick, "cases": [asdict(r) for r in results]},
            option=orjson.OPT_INDENT_2,
        )
    )
    print(f"results: {path}")
    return 1 if any(r.passed is False for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
