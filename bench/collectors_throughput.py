"""Collection throughput per provider against the simulator, next to what its rate limits allow.

For each provider (its event streams), on a fresh SQLite database each run:

* **collect, clean** — ``collectors.collect_once`` with no faults (events/s stored);
* **read only** — the same readers, same requests, nothing normalised or stored: the ceiling the
  simulator and HTTP impose (baseline for the clean figure: the ratio is the storage overhead);
* **collect, throttled** — ``collect_once`` with the simulator throttling: 10 % 429 with
  ``Retry-After`` 0–1 s, 5 % 5xx, 1 % malformed pages;
* **rate-limit ceiling** — what that throttling allows at best: the read-only time plus, per
  request made, the expected wait ``p/(1-p) × mean(Retry-After)`` (baseline for the throttled
  figure: the ratio is how close collection gets to the limit).

The published per-tenant budgets of the real APIs (saas-apis.md §7) go in the notes: Graph
reports 5 requests/10 s × 1,000 rows ≈ 500 events/s; Google Reports 2,400 queries/min × 1,000 ≈
40,000 events/s; Slack Audit Logs ≈ 50 calls/min × 9,999 ≈ 8,300 events/s.

Run: ``.venv/bin/python -m bench collectors`` (or ``python -m bench.collectors_throughput [--quick]``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.harness import Figure, print_table
from collectors import collect_once, connections_from_simulator
from collectors.connections import sync_connections
from collectors.options import CollectorOptions
from collectors.retry import RetryPolicy
from collectors.streams.base import StreamContext, open_api, stream_spec
from core.audit import Actor
from core.clock import utcnow
from core.db import Database
from core.models import Connection
from core.normalise import normalise
from core.settings import Settings
from providers.credentials import Secrets
from simulator.handle import SimulatorHandle
from simulator.handle import start as start_simulator
from simulator.timestamps import settled_period_start

AREA = "collectors"
EVENT_STREAMS = {
    "m365": ("signins", "directory_audits", "unified_audit", "risk_detections"),
    "google": ("login", "admin", "drive", "token", "saml", "user_accounts"),
    "slack": ("audit",),
}
THROTTLED = "429=0.1,500=0.025,503=0.025,malformed=0.01,retry_after=0:1"
P_429, MEAN_RETRY_AFTER = 0.1, 0.5
PUBLISHED = {"m365": 500.0, "google": 40_000.0, "slack": 8_300.0}
# One stream at a time, so the read-only baseline and the rate-limit ceiling (both sequential)
# compare like with like; the threaded figure is reported separately.
OPTIONS = CollectorOptions(threads=1, page_size=1000)
THREADED = CollectorOptions(threads=4, page_size=1000)


def _simulator(users: int, days: int) -> SimulatorHandle:
    """A tenant whose period ended yesterday 22:00 UTC (every blob closed, every lag passed)."""
    handle = start_simulator("account_takeover", users=users, days=days, start=settled_period_start(days))
    handle.advance(time.time() - handle.sim.now() / 1_000_000)
    return handle


def _collect(
    sim: SimulatorHandle, provider: str, faults: str, options: CollectorOptions = OPTIONS
) -> tuple[int, float, int]:
    """(events stored, seconds, requests served) for one collection into a fresh database."""
    sim.set_faults(faults)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=f"sqlite:///{tmp}/bench.db")
        db = Database.from_settings(settings)
        db.upgrade()
        definitions = connections_from_simulator(
            sim.info, providers=[provider], streams={provider: EVENT_STREAMS[provider]}
        )
        sync_connections(db, definitions, actor=Actor.system("bench"), source="simulator")
        sim.sim.requests.clear()
        started = time.perf_counter()
        report = collect_once(db, settings, options=options)
        seconds = time.perf_counter() - started
        db.dispose()
    if not report.ok:
        raise RuntimeError(f"{provider}: collection failed: {[r.error for r in report.failures]}")
    return report.records_new, seconds, len(sim.sim.requests)


def _read_only(sim: SimulatorHandle, provider: str) -> tuple[int, float, int]:
    """The same readers and requests, without normalising-and-storing: (events, seconds, requests)."""
    sim.set_faults("")
    [definition] = connections_from_simulator(sim.info, providers=[provider])
    connection = Connection(
        id=0,
        name=definition.name,
        provider=provider,
        tenant=definition.tenant,
        config=definition.stored_config(),
        secret_refs=definition.secrets,
    )
    sim.sim.requests.clear()
    started = time.perf_counter()
    events = 0
    for stream in EVENT_STREAMS[provider]:
        ctx = StreamContext(
            connection=connection,
            secrets=Secrets(connection.secret_refs),
            cursor={},
            options=OPTIONS,
            policy=RetryPolicy(),
            now=utcnow().replace(microsecond=0),
        )
        ctx.api = open_api(ctx)
        for page in stream_spec(provider, stream).read(ctx):
            events += (
                sum(len(normalise(provider, stream, r)) for r in page.records)
                if provider == "google"
                else len(page.records)
            )
    return events, time.perf_counter() - started, len(sim.sim.requests)


def _median(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def run(quick: bool = False) -> list[Figure]:
    users, days, runs = (40, 2, 1) if quick else (200, 3, 3)
    figures: list[Figure] = []
    sim = _simulator(users, days)
    try:
        for provider in EVENT_STREAMS:
            _read_only(sim, provider)  # warm-up: imports, discovery documents, tokens, simulator caches
            clean, read, throttled, ceiling, threaded = [], [], [], [], []
            events = requests = 0
            for _ in range(runs):
                n_read, t_read, r_read = _read_only(sim, provider)
                n_clean, t_clean, _ = _collect(sim, provider, "")
                n_thr, t_thr, _ = _collect(sim, provider, THROTTLED)
                n_par, t_par, _ = _collect(sim, provider, "", THREADED)
                threaded.append(n_par / t_par)
                read.append(n_read / t_read)
                clean.append(n_clean / t_clean)
                throttled.append(n_thr / t_thr)
                # the best the throttling allows: every request may cost p/(1-p) waits of mean Retry-After
                ceiling.append(n_read / (t_read + r_read * P_429 / (1 - P_429) * MEAN_RETRY_AFTER))
                events, requests = n_clean, r_read
            note = f"{events} events, {requests} requests per read ({users} users × {days} days)"
            value, low, high = _median(clean)
            figures.append(
                Figure(AREA, f"{provider} collect, clean", value, "events/s", low, high, runs,
                       baseline_name="read only, same requests", baseline=statistics.median(read), notes=note)
            )  # fmt: skip
            value, low, high = _median(throttled)
            figures.append(
                Figure(AREA, f"{provider} collect, throttled", value, "events/s", low, high, runs,
                       baseline_name="rate-limit ceiling", baseline=statistics.median(ceiling),
                       goal="close to the ceiling",
                       notes=f"{THROTTLED}; real API budget ≈ {PUBLISHED[provider]:,.0f} events/s per tenant")
            )  # fmt: skip
            value, low, high = _median(threaded)
            figures.append(
                Figure(AREA, f"{provider} collect, clean, 4 threads", value, "events/s", low, high, runs,
                       baseline_name="1 thread", baseline=statistics.median(clean),
                       notes=f"streams run side by side ({len(EVENT_STREAMS[provider])} streams)")
            )  # fmt: skip
    finally:
        sim.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.collectors_throughput")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    figures = run(quick=args.quick)
    print_table(figures)
    for f in figures:
        print(
            f"{f.name}: {f.value:.0f} {f.unit} vs {f.baseline_name} {f.baseline:.0f} ({f.ratio:.2f}×) — {f.notes}"
        )


if __name__ == "__main__":
    main()
