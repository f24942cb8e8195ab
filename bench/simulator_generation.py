"""Simulator generation: events/s and peak RSS while streaming N users x D days of every event stream.

Each measurement runs in its own subprocess (so peak RSS is that run's alone): the simulator
renders every event of every stream to JSON, day by day, as a collector reading all streams
would cause; the baseline json-dumps (orjson) the same number of trivial dicts in a fresh
interpreter. Run: ``python -m bench simulator`` (``--quick``: 1,000 users x 7 days) or
``python -m bench.simulator_generation --users 10000 --days 30``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

from bench.harness import Figure, print_table

START = "2026-01-05T00:00:00Z"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _generate(users: int, days: int) -> dict[str, Any]:
    import orjson

    from simulator.render import render
    from simulator.store import EVENT_STREAMS
    from simulator.timestamps import DAY
    from simulator.world import build_world

    began = time.perf_counter()
    world = build_world("quiet_week", users=users, days=days, start=START)
    build_seconds = time.perf_counter() - began
    counts = dict.fromkeys(EVENT_STREAMS, 0)
    size = 0
    first, last = world.options.start // DAY, (world.options.end - 1) // DAY
    started, cpu_started = time.perf_counter(), time.process_time()
    for day in range(first, last + 1):
        for stream in EVENT_STREAMS:
            for record in world.store.chunk(stream, day):
                size += len(orjson.dumps(render(world.ctx, stream, record)))
                counts[stream] += 1
    seconds = time.perf_counter() - started
    return {
        "events": sum(counts.values()),
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu_started,
        "build_seconds": build_seconds,
        "bytes": size,
        "per_stream": counts,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _baseline(count: int) -> dict[str, Any]:
    import orjson

    started, cpu_started = time.perf_counter(), time.process_time()
    size = 0
    for i in range(count):
        size += len(
            orjson.dumps({"id": i, "time": "2026-01-05T00:00:00Z", "kind": "event", "user": "a@b.example"})
        )
    return {
        "events": count,
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,
        "bytes": size,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _child(*args: str) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, "-m", "bench.simulator_generation", "--child", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def run(quick: bool = False, users: int | None = None, days: int | None = None) -> list[Figure]:
    users = users or (1000 if quick else 10_000)
    days = days or (7 if quick else 30)
    generated = _child("generate", str(users), str(days))
    print(f"simulator generation: {json.dumps(generated)}", file=sys.stderr, flush=True)
    baseline = _child("baseline", str(generated["events"]))
    rate = generated["events"] / generated["seconds"]
    base_rate = baseline["events"] / baseline["seconds"]
    cpu_rate = generated["events"] / generated["cpu_seconds"]
    base_cpu_rate = baseline["events"] / max(baseline["cpu_seconds"], 1e-9)
    size = f"{users:,} users x {days} days"
    short_days = max(1, days // 4)
    short = _child("generate", str(users), str(short_days))
    figures = [
        Figure(
            "simulator",
            f"generation rate per CPU second, {size}",
            cpu_rate,
            "events/CPU-s",
            baseline_name="orjson.dumps of trivial dicts",
            baseline=base_cpu_rate,
            notes="CPU time: robust when other processes share the cores",
        ),
        Figure(
            "simulator",
            f"generation rate, {size}, rendered to JSON",
            rate,
            "events/s",
            baseline_name="orjson.dumps of trivial dicts",
            baseline=base_rate,
            notes=f"{generated['events']:,} events, {generated['bytes'] / 1e9:.2f} GB JSON in {generated['seconds']:.0f} s; "
            f"world built in {generated['build_seconds']:.2f} s",
            extra={"per_stream": generated["per_stream"]},
        ),
        Figure(
            "simulator",
            f"peak RSS streaming {size} vs {short_days} days",
            generated["peak_rss_mb"],
            "MB",
            baseline_name=f"same tenant, {short_days} days",
            baseline=short["peak_rss_mb"],
            goal="ratio ~1: memory does not grow with days",
        ),
        Figure(
            "simulator",
            f"peak RSS streaming {size}",
            generated["peak_rss_mb"],
            "MB",
            baseline_name="same interpreter dumping trivial dicts",
            baseline=baseline["peak_rss_mb"],
            goal="bounded: does not grow with days",
        ),
    ]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.simulator_generation")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--users", type=int)
    parser.add_argument("--days", type=int)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.child:
        kind, *values = args.child
        result = (
            _generate(int(values[0]), int(values[1])) if kind == "generate" else _baseline(int(values[0]))
        )
        print(json.dumps(result))
        return
    print_table(run(args.quick, args.users, args.days))


if __name__ == "__main__":
    main()
