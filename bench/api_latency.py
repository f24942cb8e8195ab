"""HTTP API latency, audit export rate and a bounded load test, on SQLite and PostgreSQL.

Dataset (bulk-loaded by bench.api_data: SQLite executemany, PostgreSQL COPY): 1,000,000 findings,
100,000 incidents and a 200,000-record audit chain (``--quick``: 50,000 / 5,000 / 20,000).
The API runs as `tenantguard serve` in its own process on loopback; requests go through real
HTTP (httpx, keep-alive).

Figures, each next to a baseline measured in the same run on the same server:

* p50 and p99 latency of list, filter and detail endpoints, one request at a time; baseline:
  ``GET /health`` (the same stack, no authentication, one trivial query). Goal: p99 < 50 ms on
  PostgreSQL.
* audit export through the API (JSONL and CSV, streamed) in records/s; baseline: core.audit's
  exporter in-process on the same database (no HTTP). Goal: ≥ 50,000 records/s. The HTTP export
  is verified with core.audit.verify_export (reported, not asserted).
* a load test: N concurrent clients (default 50), each with its own token, sending a mix of the
  endpoints above for D seconds (default 60; 10 with ``--quick``); throughput, error count and
  latency under load. Baseline: the sequential throughput of the same mix.

Environment: TENANTGUARD_BENCH_API_LOAD_SECONDS, TENANTGUARD_BENCH_API_CLIENTS,
TENANTGUARD_BENCH_API_SAMPLES, TENANTGUARD_BENCH_POSTGRES_URL (see bench.limits).
Run: ``.venv/bin/python -m bench api_latency [--quick]``.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx

from api.principals.service import create_principal
from bench.api_data import END, SPAN, Dataset, load
from bench.harness import Figure, print_table
from core.audit import Actor, export_csv, export_jsonl, iter_records, verify_export
from core.clock import isoformat
from core.db import Database
from core.pagination import encode_cursor

AREA = "api"
PEPPER = "bench-pepper-7f3a0c5e9b1d4e2f8a6c0b3d5e7f9a1c"
LATENCY_GOAL = "p99 < 50 ms on PostgreSQL"
EXPORT_GOAL = ">= 50,000 records/s"


@dataclass(frozen=True)
class Sizes:
    findings: int
    incidents: int
    audit_records: int
    samples: int
    load_seconds: float
    clients: int


def sizes(quick: bool) -> Sizes:
    env = os.environ.get
    return Sizes(
        findings=50_000 if quick else 1_000_000,
        incidents=5_000 if quick else 100_000,
        audit_records=20_000 if quick else 200_000,
        samples=int(env("TENANTGUARD_BENCH_API_SAMPLES", "60" if quick else "300")),
        load_seconds=float(env("TENANTGUARD_BENCH_API_LOAD_SECONDS", "10" if quick else "60")),
        clients=int(env("TENANTGUARD_BENCH_API_CLIENTS", "50")),
    )


# ---- the server ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(url: str, data_dir: Path) -> Iterator[str]:
    """`tenantguard serve` on a free loopback port; yields its base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "TENANTGUARD_DATABASE_URL": url,
        "TENANTGUARD_DATA_DIR": str(data_dir),
        "TENANTGUARD_API_TOKEN_PEPPER": PEPPER,
        # Per-caller limiting stays on (its cost is part of every request), set above the load.
        "TENANTGUARD_API_RATE_LIMIT_PER_SECOND": "100000",
        "TENANTGUARD_API_RATE_LIMIT_BURST": "100000",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from cli.main import run; run()",
            "serve",
            "--port",
            str(port),
            "--no-scheduler",
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                raise RuntimeError(f"the API server exited: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


# ---- what is requested ---------------------------------------------------------------------------


def endpoints(dataset: Dataset, seed: int = 3) -> dict[str, Callable[[], str]]:
    """Name -> a function giving the next URL (random ids, people, rules, times, cursors)."""
    rng = random.Random(seed)
    span = SPAN.total_seconds()

    def when() -> str:
        return isoformat(END - timedelta(seconds=rng.random() * span)).replace("+", "%2B")

    def deep_cursor() -> str:
        at = END - timedelta(seconds=rng.random() * span)
        return encode_cursor("-first_seen", [at, rng.randrange(1, dataset.findings)])

    def day_window() -> str:
        start = END - timedelta(seconds=rng.random() * span)
        return f"since={isoformat(start)}&until={isoformat(start + timedelta(days=1))}"

    return {
        "findings list": lambda: "/findings?limit=50",
        "findings list, deep page": lambda: f"/findings?limit=50&cursor={deep_cursor()}",
        "findings filter severity+provider": lambda: (
            "/findings?severity=high&severity=critical&provider=" + rng.choice(("m365", "google", "slack"))
        ),
        "findings filter open, most severe": lambda: "/findings?status=open&sort=-severity",
        "findings filter rule": lambda: f"/findings?rule_id={rng.choice(dataset.rules)}",
        "findings filter person": lambda: f"/findings?person={rng.choice(dataset.people)}",
        "findings filter 1-day range": lambda: f"/findings?{day_window()}",
        "findings detail": lambda: f"/findings/{rng.randrange(1, dataset.findings + 1)}",
        "incidents list": lambda: "/incidents?limit=50",
        "incidents filter open, most urgent": lambda: "/incidents?status=new&status=triaged&sort=priority",
        "incidents filter person": lambda: f"/incidents?person={rng.choice(dataset.people)}",
        "incidents detail": lambda: f"/incidents/{rng.randrange(1, dataset.incidents + 1)}",
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def sequential(client: httpx.Client, next_url: Callable[[], str], samples: int) -> tuple[list[float], int]:
    """Latencies in ms of `samples` requests one after another (after a short warm-up); and the errors."""
    for _ in range(min(10, samples)):
        client.get(next_url())
    latencies, errors = [], 0
    for _ in range(samples):
        url = next_url()
        start = time.perf_counter()
        response = client.get(url)
        latencies.append((time.perf_counter() - start) * 1000)
        errors += response.status_code != 200
    return latencies, errors


# ---- audit export ----------------------------------------------------------------------------------


def export_over_http(client: httpx.Client, fmt: str, target: Path) -> tuple[float, int]:
    start = time.perf_counter()
    lines = 0
    with client.stream("GET", f"/audit/export?format={fmt}") as response, target.open("wb") as out:
        response.raise_for_status()
        for chunk in response.iter_bytes(256 * 1024):
            out.write(chunk)
            lines += chunk.count(b"\n")
    elapsed = time.perf_counter() - start
    records = lines - 2 if fmt == "csv" else lines - 1  # the CSV header row; the signed head (last line)
    return records / elapsed, records


def export_in_process(db: Database, fmt: str) -> float:
    start = time.perf_counter()
    with db.session(readonly=True) as session:
        records = iter_records(session)
        pieces = export_jsonl(records) if fmt == "jsonl" else export_csv(records)
        count = sum(1 for _ in pieces)
    return count / (time.perf_counter() - start)


# ---- load test -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    rate_limited: int
    seconds: float
    latencies_ms: list[float]

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds


async def _client(
    base: str,
    token: str,
    mix: list[Callable[[], str]],
    deadline: float,
    seed: int,
    out: list[tuple[float, int]],
) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as client:
        while time.perf_counter() < deadline:
            url = rng.choice(mix)()
            start = time.perf_counter()
            try:
                status = (await client.get(url)).status_code
            except httpx.HTTPError:
                status = 0
            out.append(((time.perf_counter() - start) * 1000, status))


def load_test(base: str, tokens: list[str], mix: list[Callable[[], str]], seconds: float) -> LoadResult:
    out: list[tuple[float, int]] = []

    async def main() -> float:
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(*(_client(base, t, mix, deadline, i, out) for i, t in enumerate(tokens)))
        return time.perf_counter() - start

    elapsed = asyncio.run(main())
    return LoadResult(
        requests=len(out),
        errors=sum(1 for _, s in out if s != 200),
        rate_limited=sum(1 for _, s in out if s == 429),
        seconds=elapsed,
        latencies_ms=[ms for ms, _ in out],
    )


# ---- one database --------------------------------------------------------------------------------


def measure(label: str, url: str, data_dir: Path, size: Sizes) -> list[Figure]:
    db = Database(url)
    figures: list[Figure] = []
    try:
        db.upgrade()
        started = time.perf_counter()
        dataset = load(db, findings=size.findings, incidents=size.incidents, audit_records=size.audit_records)
        loaded = time.perf_counter() - started
        rows = size.findings + size.incidents + size.audit_records
        print(f"{label}: loaded {rows:,} rows in {loaded:.1f} s", file=sys.stderr, flush=True)
        figures.append(
            Figure(
                AREA,
                f"{label} bulk load (findings+incidents+audit)",
                rows / loaded,
                "rows/s",
                notes="SQLite executemany / PostgreSQL COPY",
            )
        )
        pepper = PEPPER.encode()
        tokens = [
            create_principal(db, pepper, name=f"bench{i}", role="admin", actor=Actor.system("bench"))[1]
            for i in range(size.clients + 1)
        ]
        with (
            serving(url, data_dir) as base,
            httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {tokens[0]}"}, timeout=120
            ) as client,
        ):
            figures += _latencies(label, client, dataset, size)
            figures += _exports(label, client, db, data_dir)
            figures += _load(label, base, client, tokens[1:], dataset, size)
    finally:
        db.dispose()
    return figures


def _latencies(label: str, client: httpx.Client, dataset: Dataset, size: Sizes) -> list[Figure]:
    health, _ = sequential(client, lambda: "/health", size.samples)
    base50, base99 = percentile(health, 0.5), percentile(health, 0.99)
    figures = []
    goal = LATENCY_GOAL if label == "PostgreSQL" else None
    for name, next_url in endpoints(dataset).items():
        latencies, errors = sequential(client, next_url, size.samples)
        p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
        print(
            f"{label} {name}: p50 {p50:.1f} ms, p99 {p99:.1f} ms, errors {errors}",
            file=sys.stderr,
            flush=True,
        )
        figures.append(
            Figure(
                AREA,
                f"{label} {name} p50",
                p50,
                "ms",
                runs=size.samples,
                baseline_name="/health p50",
                baseline=base50,
            )
        )
        figures.append(
            Figure(
                AREA,
                f"{label} {name} p99",
                p99,
                "ms",
                runs=size.samples,
                baseline_name="/health p99",
                baseline=base99,
                goal=goal,
                notes=f"{errors} non-200" if errors else "",
            )
        )
    return figures


def _exports(label: str, client: httpx.Client, db: Database, data_dir: Path) -> list[Figure]:
    figures = []
    for fmt in ("jsonl", "csv"):
        baseline = export_in_process(db, fmt)
        target = data_dir / f"audit-export.{fmt}"
        value, records = export_over_http(client, fmt, target)
        verified = verify_export(target)
        print(
            f"{label} export {fmt}: {value:,.0f} records/s over HTTP ({records:,} records, verifies: "
            f"{verified.ok}); in-process {baseline:,.0f}/s",
            file=sys.stderr,
            flush=True,
        )
        figures.append(
            Figure(
                AREA,
                f"{label} audit export {fmt} via API",
                value,
                "records/s",
                baseline_name="core exporter in-process",
                baseline=baseline,
                goal=EXPORT_GOAL,
                notes=f"{records:,} records; verify_export ok={verified.ok}",
            )
        )
        target.unlink()
    return figures


def _load(
    label: str, base: str, client: httpx.Client, tokens: list[str], dataset: Dataset, size: Sizes
) -> list[Figure]:
    mix = list(endpoints(dataset, seed=5).values())
    rng = random.Random(9)
    started = time.perf_counter()
    count = max(50, size.samples)
    for _ in range(count):
        client.get(rng.choice(mix)())
    sequential_rps = count / (time.perf_counter() - started)
    result = load_test(base, tokens, mix, size.load_seconds)
    print(
        f"{label} load: {result.throughput:,.0f} req/s with {len(tokens)} clients for {result.seconds:.0f} s, "
        f"{result.errors} errors ({result.rate_limited} rate-limited); sequential {sequential_rps:,.0f} req/s",
        file=sys.stderr,
        flush=True,
    )
    notes = f"{len(tokens)} clients x {size.load_seconds:g} s; {result.requests:,} requests"
    return [
        Figure(
            AREA,
            f"{label} load test throughput",
            result.throughput,
            "req/s",
            baseline_name="same mix, one client",
            baseline=sequential_rps,
            notes=notes,
        ),
        Figure(
            AREA,
            f"{label} load test errors",
            float(result.errors),
            "requests",
            notes=f"{result.rate_limited} of them 429; {notes}",
        ),
        Figure(AREA, f"{label} load test p50", percentile(result.latencies_ms, 0.5), "ms", notes=notes),
        Figure(AREA, f"{label} load test p99", percentile(result.latencies_ms, 0.99), "ms", notes=notes),
    ]


def run(quick: bool = False) -> list[Figure]:
    size = sizes(quick)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="tg-bench-api-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        figures += measure("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}", data_dir, size)
    from bench.limits import postgres_database, postgres_problem

    problem = postgres_problem()
    if problem is None:
        with postgres_database() as url, tempfile.TemporaryDirectory(prefix="tg-bench-api-") as tmp:
            figures += measure("PostgreSQL", url, Path(tmp), size)
    else:
        print(f"PostgreSQL skipped: {problem}", file=sys.stderr)
    return figures


if __name__ == "__main__":
    from bench.harness import RESULTS_DIR, write_results

    results = run(quick="--quick" in sys.argv)
    print_table(results)
    print(f"results: {write_results(results, RESULTS_DIR / 'api_latency.json')}")
