"""A pass with nothing new: the cost of one more cycle (collect every stream + every stage after it)
once the tenant is stored, with inventory read through delta links and audit-event re-reads
(`collectors.inventory`), against the same pass reading every inventory listing in full
(``reconcile_hours = 0``, what every pass did before) — both measured in this run, same tenant.

The simulator serves in its own process a scenario whose period ended at the last UTC midnight, on
today's clock, so nothing arrives after the backlog: the idle pass has truly nothing new.

    python -m bench.inventory_idle                       # 1,000 and 10,000 users
    TENANTGUARD_BENCH_IDLE_SCALES=1000x1x5 python -m bench.inventory_idle   # users x days x passes

Besides wall seconds it reports the product's CPU seconds per idle pass (this process, every
thread; on a shared machine the wall time is mostly waiting for a CPU) and the database
transactions an idle pass begins.

``TENANTGUARD_BENCH_KEEP=<dir>`` keeps the database there (what each pass stored: ``configsnapshot``,
``collectionrun``). ``TENANTGUARD_BENCH_IDLE_BASELINE=0`` leaves out the full re-read (minutes at 1,000 users);
``TENANTGUARD_BENCH_PROFILE=<dir>`` writes a pyinstrument profile of the idle passes to
``<dir>/idle-<users>.txt``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bench.e2e import _profiled, connect_simulator, simulator_process
from bench.harness import Figure, print_table, work_dir

AREA = "inventory idle pass"
DAY = 86_400


@dataclass(frozen=True)
class Scale:
    users: int
    days: int
    passes: int


FULL = (Scale(1_000, 1, 5), Scale(10_000, 1, 3))
QUICK = (Scale(50, 1, 3),)
GOALS = {1_000: "≤ 1 s", 10_000: "≤ 3 s"}


def scales(quick: bool) -> tuple[Scale, ...]:
    configured = os.environ.get("TENANTGUARD_BENCH_IDLE_SCALES")
    if configured:
        return tuple(Scale(*(int(n) for n in item.split("x"))) for item in configured.split(","))
    return QUICK if quick else FULL


def _passes(cycle: Any, count: int, cpu: list[float] | None = None) -> list[float]:
    """Wall seconds of each of `count` passes (and, into `cpu`, this process's CPU seconds: every
    thread of the product, not the simulator's process)."""
    ctx = cycle.context(max_batches=None, notify=False)
    seconds = []
    for _ in range(count):
        began, began_cpu = time.perf_counter(), time.process_time()
        result = cycle.run(ctx=ctx)
        seconds.append(time.perf_counter() - began)
        if cpu is not None:
            cpu.append(time.process_time() - began_cpu)
        if result.errors:
            print(f"  pass errors: {result.errors[:3]}", file=sys.stderr)
    return seconds


def _count_transactions(engine: Any) -> dict[str, int]:
    """Transactions begun on `engine` from now on, write and read-only (live counts)."""
    from sqlalchemy import event

    counts = {"write": 0, "read": 0}

    def on_begin(connection: Any) -> None:
        readonly = connection.get_execution_options().get("tenantguard_readonly", False)
        counts["read" if readonly else "write"] += 1

    event.listen(engine, "begin", on_begin)
    return counts


def _requests_since(admin_url: str, began: float) -> list[dict[str, Any]]:
    """What the product asked the simulator since `began` (its log keeps the last 5,000)."""
    log = httpx.get(f"{admin_url}/requests", params={"since": 0}, timeout=30).json()
    return [r for r in log if r["at"] >= began]


def _served(info: dict[str, Any]) -> int:
    """HTTP requests the simulator has answered (its listeners' count: a Graph batch is one)."""
    return int(httpx.get(f"{info['admin_url']}/stats", timeout=30).json()["requests"])


SIGN_IN_RESOURCES = frozenset({("m365", "token"), ("m365", "openid"), ("google", "token_endpoint")})


def _is_sign_in(request: dict[str, Any]) -> bool:
    """Token and OpenID discovery requests: what a cached client no longer makes."""
    return (request["provider"], request["resource"]) in SIGN_IN_RESOURCES


def _stage_seconds(cycle: Any) -> dict[str, float]:
    """Each stage's time in the last pass."""
    return {name: round(record.seconds, 3) for name, record in cycle.book.snapshot().items()}


def _reconcile_every_pass(db: Any) -> None:
    """The baseline: every connection reads its whole inventory on every pass."""
    from sqlmodel import select

    from core.models import Connection

    with db.session() as session:
        for connection in session.exec(select(Connection)).all():
            connection.config = {**connection.config, "reconcile_hours": 0}
            session.add(connection)


def measure(scale: Scale) -> list[Figure]:
    from core.db import Database
    from core.settings import Settings
    from pipeline import Cycle

    ends = (int(time.time()) // DAY) * DAY  # the last UTC midnight
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ends - scale.days * DAY))
    with (
        work_dir("tg-bench-idle-") as tmp,
        simulator_process("account_takeover", scale.users, scale.days, 7, start=start) as info,
    ):
        if info is None:
            raise RuntimeError("the simulator is not installed")
        # today's clock: the period is over, its last events are readable, nothing new comes
        httpx.post(f"{info['admin_url']}/clock", json={"advance": time.time() - ends}, timeout=30)
        settings = Settings(data_dir=tmp, database_url=f"sqlite:///{tmp / 'idle.db'}")
        db = Database.from_settings(settings)
        db.upgrade()
        connect_simulator(db, info)
        cycle = Cycle(db, settings)
        began = time.perf_counter()
        _passes(cycle, 1)  # the backlog: first, full read of everything
        backlog = time.perf_counter() - began
        _passes(cycle, 1)  # settles what the backlog's own audit events named
        idle_began = time.time()
        transactions = _count_transactions(db.engine)
        idle_cpu: list[float] = []
        with _profiled(f"idle-{scale.users}"):
            idle = _passes(cycle, scale.passes, idle_cpu)
        write_per_pass = transactions["write"] / scale.passes
        read_per_pass = transactions["read"] / scale.passes
        idle_stages = _stage_seconds(cycle)
        asked = _requests_since(info["admin_url"], idle_began)
        requests_per_pass = len(asked) / scale.passes
        sign_ins_per_pass = sum(1 for r in asked if _is_sign_in(r)) / scale.passes
        full: list[float] = []
        full_stages: dict[str, float] = {}
        full_requests_per_pass = 0.0
        if os.environ.get("TENANTGUARD_BENCH_IDLE_BASELINE", "1") != "0":
            _reconcile_every_pass(db)
            served = _served(info)
            full = _passes(cycle, scale.passes)
            full_stages = _stage_seconds(cycle)
            full_requests_per_pass = (_served(info) - served) / scale.passes
        db.dispose()
    idle_median = statistics.median(idle)
    full_median = statistics.median(full) if full else None
    label = f"{scale.users:,} users × {scale.days} d"
    return [
        Figure(
            AREA,
            f"pass with nothing new, {label}",
            idle_median,
            "s",
            min(idle),
            max(idle),
            len(idle),
            baseline_name="same pass, full inventory re-read",
            baseline=full_median,
            goal=GOALS.get(scale.users),
            notes=(
                (
                    f"baseline {full_median:.2f} s ({min(full):.2f}–{max(full):.2f}), "
                    f"{full_requests_per_pass:.0f} requests a pass; "
                    if full
                    else ""
                )
                + f"backlog pass {backlog:.0f} s; "
                f"idle pass: {requests_per_pass:.0f} requests, {sign_ins_per_pass:.0f} of them token/discovery, "
                f"CPU {statistics.median(idle_cpu):.2f} s median ({min(idle_cpu):.2f}–{max(idle_cpu):.2f}), "
                f"{write_per_pass:.0f} write + {read_per_pass:.0f} read-only transactions"
            ),
            extra={
                "idle_seconds": idle,
                "idle_cpu_seconds": idle_cpu,
                "idle_write_transactions_per_pass": write_per_pass,
                "idle_read_transactions_per_pass": read_per_pass,
                "full_seconds": full,
                "full_requests_per_pass": full_requests_per_pass,
                "backlog_seconds": backlog,
                "idle_requests_per_pass": requests_per_pass,
                "idle_sign_in_requests_per_pass": sign_ins_per_pass,
                "idle_stage_seconds": idle_stages,
                "full_stage_seconds": full_stages,
            },
        )
    ]


def run(quick: bool) -> list[Figure]:
    figures: list[Figure] = []
    for scale in scales(quick):
        print(f"-- {AREA}: {scale.users:,} users × {scale.days} d", file=sys.stderr, flush=True)
        figures.extend(measure(scale))
        figure = figures[-1]
        versus = (
            f" vs full re-read {figure.baseline:.2f} s ({figure.extra['full_requests_per_pass']:.0f} requests"
            f" a pass): ratio {figure.ratio:.3f} ({1 / figure.ratio if figure.ratio else 0:.0f}× faster)"
            if figure.baseline
            else ""
        )
        print(
            f"   idle {figure.value:.2f} s (CPU {statistics.median(figure.extra['idle_cpu_seconds']):.2f} s; "
            f"{figure.extra['idle_write_transactions_per_pass']:.0f} write + "
            f"{figure.extra['idle_read_transactions_per_pass']:.0f} read-only transactions){versus}; stages "
            f"idle {figure.extra['idle_stage_seconds']}, full {figure.extra['full_stage_seconds']}; idle requests "
            f"per pass {figure.extra['idle_requests_per_pass']:.0f} "
            f"({figure.extra['idle_sign_in_requests_per_pass']:.0f} token/discovery)",
            file=sys.stderr,
            flush=True,
        )
    return figures


def main() -> int:
    print_table(run(quick="--quick" in sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
