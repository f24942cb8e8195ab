"""The detect stage alone, on a database collected once (collection waits on the simulator, so an
A/B of detection should not re-collect every run).

    python -m bench.detect_stage prepare DB --users 1000 --days 7    # simulator -> collect_once -> DB
    python -m bench.detect_stage run DB [--profile DIR] [--outcome FILE]

``--profile DIR`` writes a cProfile of the detect stage in CPU time (DIR/detect.prof, and the top
entries by cumulative and own time in DIR/detect.txt). ``run`` copies DB to a temporary directory and, in a child process (so ``ru_maxrss`` is the
stages' alone, collection excluded), runs the cycle's detect stage and then identity and
incidents (so the outcome file also says which incidents were built); it prints one JSON line:
events, findings, incidents, detect seconds and events/s, CPU seconds, raw records decoded during
detect (and per event), peak RSS before and after detect. ``--outcome`` writes what was concluded
by provider identity (findings by rule and evidence, incidents), as bench/e2e.py's ``TENANTGUARD_BENCH_OUTCOME`` does: two commits' files are
equal when they found the same. SQLite only (the database is a file to copy); the encryption key
the collection wrote with is kept next to it (DB with the suffix ``.key``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

SCENARIO = "account_takeover"


def prepare(path: Path, users: int, days: int, seed: int) -> None:
    from bench.e2e import connect_simulator, database, simulator_process
    from core.db import Database
    from core.settings import Settings
    from pipeline import Cycle

    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tg-detect-prep-") as tmp_name:
        tmp = Path(tmp_name)
        with simulator_process(SCENARIO, users, days, seed) as info, database("sqlite", tmp) as url:
            if info is None:
                raise SystemExit("no simulator")
            settings = Settings(data_dir=tmp / "data", database_url=url)
            db = Database.from_settings(settings)
            connect_simulator(db, info)
            cycle = Cycle(db, settings)
            ctx = cycle.context(max_batches=None, notify=False)
            start = time.perf_counter()
            cycle.run_stage(next(s for s in cycle.stages if s.name == "collect"), ctx)
            print(f"collected in {time.perf_counter() - start:.0f} s", file=sys.stderr)
            db.dispose()
        shutil.copyfile(tmp / "e2e.db", path)


def _rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class _PeakWatch:
    """Samples the resident set every 20 ms; at each new high, where the main thread was (the
    innermost product frames), so a report can say what held the memory at the peak."""

    def __init__(self) -> None:
        import threading

        self.peak = 0
        self.where: list[str] = []
        self._main = threading.main_thread().ident
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.wait(0.02):
            with open("/proc/self/statm") as statm:
                rss = int(statm.read().split()[1]) * page
            if rss > self.peak:
                self.peak = rss
                frame = sys._current_frames().get(self._main or 0)  # noqa: SLF001 - a sampler's own view
                stack: list[str] = []
                while frame is not None and len(stack) < 8:
                    name = frame.f_code.co_filename
                    if "site-packages" not in name and "/lib/python" not in name:
                        stack.append(f"{Path(name).name}:{frame.f_lineno} {frame.f_code.co_name}")
                    frame = frame.f_back
                self.where = stack

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class _DecodeCount:
    """Counts the stored raw records unpacked (`core.packing.unpack` calls): installed before any
    product module imports the function by name, so every caller goes through it."""

    def __init__(self) -> None:
        import core.packing

        self.calls = 0
        unpack = core.packing.unpack

        def counted(data: bytes) -> Any:
            self.calls += 1
            return unpack(data)

        core.packing.unpack = counted


def child(url: str, data_dir: str, profile: str | None, outcome: str | None) -> dict[str, Any]:
    decodes = _DecodeCount()
    from bench.e2e import _count
    from core.db import Database
    from core.settings import Settings
    from pipeline import Cycle

    settings = Settings(data_dir=Path(data_dir), database_url=url)
    db = Database.from_settings(settings)
    cycle = Cycle(db, settings)
    ctx = cycle.context(max_batches=None, notify=False)
    stages = {s.name: s for s in cycle.stages}
    out: dict[str, Any] = {"rss_before": _rss()}
    profiler: Any = None
    if profile:
        # CPU time, not wall: on a shared machine the wall-clock samples are mostly waiting
        import cProfile

        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
    watch = _PeakWatch()
    cpu, start = time.process_time(), time.perf_counter()
    decodes.calls = 0
    result = cycle.run_stage(stages["detect"], ctx)
    out["raw_decodes_detect"] = decodes.calls
    watch.stop()
    out["peak_rss_detect"] = watch.peak
    out["peak_at"] = watch.where
    out["detect_seconds"] = time.perf_counter() - start
    out["detect_cpu_seconds"] = time.process_time() - cpu
    if profiler is not None and profile:
        import io
        import pstats

        profiler.disable()
        Path(profile).mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(str(Path(profile) / "detect.prof"))
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(60)
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(40)
        (Path(profile) / "detect.txt").write_text(text.getvalue())
    out["rss_after_detect"] = _rss()
    out["errors"] = result.errors[:5]
    for name in ("identity", "incidents"):
        cycle.run_stage(stages[name], ctx)
    out["events"] = _count(db, "event")
    out["findings"] = _count(db, "finding")
    out["incidents"] = _count(db, "incident")
    out["detect_events_per_s"] = out["events"] / out["detect_seconds"]
    out["raw_decodes_per_event"] = round(out["raw_decodes_detect"] / max(1, out["events"]), 3)
    if outcome:
        from bench.chaos_outcome import snapshot

        found = snapshot(db)

        def finding(key: Any) -> list[Any]:
            return [key[0], sorted(key[1])]

        document = {
            "events": len(found.events),
            "findings": sorted(finding(f) for f in found.findings),
            "incidents": sorted(sorted(finding(f) for f in incident) for incident in found.incidents),
        }
        Path(outcome).parent.mkdir(parents=True, exist_ok=True)
        Path(outcome).write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    db.dispose()
    return out


def run(path: Path, profile: str | None, outcome: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tg-detect-") as tmp_name:
        tmp = Path(tmp_name)
        shutil.copyfile(path, tmp / "e2e.db")
        url = f"sqlite:///{tmp / 'e2e.db'}"
        spec = json.dumps([url, str(tmp / "data"), profile, outcome])
        done = subprocess.run(
            [sys.executable, "-m", "bench.detect_stage", "_child", spec],
            capture_output=True,
            check=False,
            env={**os.environ},
        )
        if done.returncode != 0:
            raise SystemExit(done.stderr.decode()[-3000:])
        return dict(json.loads(done.stdout.decode().strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.detect_stage")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("db", type=Path)
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--seed", type=int, default=1)
    r = sub.add_parser("run")
    r.add_argument("db", type=Path)
    r.add_argument("--profile")
    r.add_argument("--outcome")
    c = sub.add_parser("_child")
    c.add_argument("spec")
    args = parser.parse_args(argv)
    if args.command in ("prepare", "run"):
        # the database's encrypted rows (connection secrets) are read with the key they were
        # written with: kept next to the database file
        os.environ["TENANTGUARD_ENCRYPTION_KEY_FILE"] = str(args.db.with_suffix(".key"))
    if args.command == "prepare":
        prepare(args.db, args.users, args.days, args.seed)
    elif args.command == "run":
        print(json.dumps(run(args.db, args.profile, args.outcome)))
    else:
        url, data_dir, profile, outcome = json.loads(args.spec)
        print(json.dumps(child(url, data_dir, profile, outcome)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
