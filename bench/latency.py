"""Clocked detection latency: attack stories happen while `tenantguard serve` watches the tenant.

The simulator serves a live tenant (its clock is the wall clock) whose account-takeover story is
repeated `stories` times, each copy starting two minutes after the previous one and compressed
60× (a step 52 minutes after the first comes 52 seconds after it), all in the future when serve
starts; serve watches it through `tenantguard simulator serve --write-connections` with every
stream polled each `interval` seconds. This process polls, about once a second:

- the simulator's admin API for which ground-truth events are *readable* (``visible=1``: past
  their reporting lag, in a published Management API blob) — the start of each measurement;
- the database for the finding that holds each such event as evidence (a), that finding's
  incident (b), and the simulator's Slack log for the incident's first announcement (c).

Figures are per evidence event, p50/p95/max over every event of every story, at one poll's
resolution; (a) is also broken down by stream and by the first finding's kind. A correlation's
first events wait for the attack itself to reach the threshold, so (a') and (b') are per finding:
from the moment the evidence the finding first held was all readable to the finding and to its
incident — what the product adds. Events that become readable only after the run's horizon (the Management API's
hourly blobs) are counted and left out.

    python -m bench.latency                                   # 1,000 users, 5 stories, 30 s interval
    TENANTGUARD_BENCH_LATENCY="200x5x30" python -m bench.latency  # users x stories x interval
    TENANTGUARD_BENCH_KEEP=/tmp/lat python -m bench.latency      # keep serve.log, simulator.log, the db
    TENANTGUARD_BENCH_LATENCY_LEAD=1500 ...                      # seconds before the first story (the backlog)
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy.exc import OperationalError

from bench.harness import Figure, print_table, work_dir

AREA = "detection latency (clocked)"
DAY, MINUTE = 86_400, 60
CLI = [sys.executable, "-c", "from cli.main import run; run()"]
COMPRESS = 60
STORY_GAP = 2 * MINUTE
HORIZON = 4 * MINUTE  # after the last story starts (its attack steps span ~2 minutes)


@dataclass(frozen=True)
class Scale:
    users: int
    stories: int
    interval: int


def scales(quick: bool) -> tuple[Scale, ...]:
    configured = os.environ.get("TENANTGUARD_BENCH_LATENCY")
    if configured:
        return tuple(Scale(*(int(n) for n in item.split("x"))) for item in configured.split(","))
    return (Scale(30, 2, 10),) if quick else (Scale(1_000, 5, 30),)


# --- the scenario: the account takeover, repeated and compressed, in the near future ------------


def _compressed(value: Any) -> Any:
    from simulator.timestamps import SECOND, parse_duration

    seconds = parse_duration(value) / SECOND / COMPRESS
    return f"{max(1, round(seconds))}s" if seconds > 0 else value


def _compress(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: _compressed(v) if k in ("after", "spread") and v is not None else _compress(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_compress(v) for v in node]
    return node


def write_scenario(path: Path, stories: int, first_start: int) -> tuple[int, list[int]]:
    """The scenario file; returns (period end, each story's start), epoch seconds."""
    from simulator.scenario import SCENARIO_DIR

    base = yaml.safe_load((SCENARIO_DIR / "account_takeover.yaml").read_text())
    [attack] = [s for s in base["stories"] if s.get("kind") == "account_takeover"][:1]
    starts = [first_start + k * STORY_GAP for k in range(stories)]
    # the simulator keeps a story's start ≥ 70 minutes (plus its span) before the period's end
    end = ((starts[-1] + 90 * MINUTE) // MINUTE + 1) * MINUTE
    copies = []
    for k, start in enumerate(starts):
        story = _compress(copy.deepcopy(attack))
        story["id"] = f"{attack['id']}-{k + 1}"
        story["when"] = {
            "days_before_end": (end // DAY - start // DAY),
            "utc": time.strftime("%H:%M", time.gmtime(start)),
        }
        copies.append(story)
    scenario = {**base, "id": "latency_bench", "stories": copies, "decoys": []}
    path.write_text(yaml.safe_dump(scenario, sort_keys=False, allow_unicode=True))
    return end, starts


# --- observation ------------------------------------------------------------------------------


@dataclass
class Watch:
    readable: dict[tuple[str, str, str], float] = field(default_factory=dict)  # truth event -> when
    finding: dict[tuple[str, str, str], float] = field(default_factory=dict)
    incident: dict[tuple[str, str, str], float] = field(default_factory=dict)
    notified: dict[tuple[str, str, str], float] = field(default_factory=dict)
    rule: dict[tuple[str, str, str], str] = field(default_factory=dict)  # the first finding's rule
    # per finding: when it was first seen, the evidence it held then, when its incident was first seen
    opened: dict[int, tuple[float, frozenset[tuple[str, str, str]]]] = field(default_factory=dict)
    grouped: dict[int, float] = field(default_factory=dict)
    polls: int = 0


def _truth_events(admin: str) -> dict[tuple[str, str], set[str]]:
    """The stories' events of the event streams. Conversation messages are left out: they are never
    a finding's evidence, and the simulator lists them all as readable, future ones included."""
    from simulator.conversations import CONVERSATION_STREAMS

    truth = httpx.get(f"{admin}/truth", timeout=60).json()
    wanted: dict[tuple[str, str], set[str]] = {}
    for story in truth.get("stories", []):
        for step in story.get("steps", []):
            for event in step.get("events", []):
                if f"{event['provider']}:{event['stream']}" in CONVERSATION_STREAMS:
                    continue
                wanted.setdefault((event["provider"], event["stream"]), set()).add(str(event["id"]))
    return wanted


def _poll(admin: str, db: Any, wanted: dict[tuple[str, str], set[str]], watch: Watch) -> None:
    from sqlalchemy import text

    now = time.time()
    for (provider, stream), ids in wanted.items():
        if all((provider, stream, i) in watch.readable for i in ids):
            continue
        body = httpx.get(
            f"{admin}/events/{provider}/{stream}", params={"ids": 1, "visible": 1}, timeout=60
        ).json()
        for i in set(map(str, body.get("ids", []))) & ids:
            watch.readable.setdefault((provider, stream, i), now)
    keys = {(p, s, i) for (p, s), ids in wanted.items() for i in ids}
    with db.session(readonly=True) as session:
        stored = {
            row[0]: (row[1], row[2], row[3])
            for row in session.execute(text("SELECT id, provider, stream, provider_event_id FROM event"))
            if (row[1], row[2], row[3]) in keys
        }
        rows = session.execute(text("SELECT evidence_event_ids, incident_id, rule_id, id FROM finding")).all()
    changes = httpx.get(f"{admin}/changes", timeout=60).json()
    posts = [str(c.get("target", {}).get("text", "")) for c in changes if c.get("action") == "post_message"]
    for evidence, incident_id, rule_id, finding_id in rows:
        evidence_ids = evidence if isinstance(evidence, list) else yaml.safe_load(evidence or "[]")
        held = frozenset(k for e in evidence_ids or [] if (k := stored.get(e)) is not None)
        if held and finding_id not in watch.opened:
            watch.opened[finding_id] = (now, held)
        if held and incident_id is not None:
            watch.grouped.setdefault(finding_id, now)
        for event_id in evidence_ids or []:
            key = stored.get(event_id)
            if key is None:
                continue
            if key not in watch.finding:
                watch.finding[key] = now
                watch.rule[key] = str(rule_id)
            if incident_id is not None:
                watch.incident.setdefault(key, now)
                if any(f"Incident #{incident_id}:" in p for p in posts):
                    watch.notified.setdefault(key, now)
    watch.polls += 1


def _latencies(watch: Watch, reached: dict[tuple[str, str, str], float]) -> list[float]:
    return sorted(max(0.0, reached[k] - watch.readable[k]) for k in reached if k in watch.readable)


def per_finding(watch: Watch, reached: dict[int, float]) -> list[float]:
    """For each attack finding: from the moment the evidence it first held was all readable (the
    last of it) to `reached` (the finding seen, its incident seen). A correlation's first events
    wait for the attack to reach its threshold; this leaves that wait out: what the product adds."""
    out = []
    for finding_id, (_, held) in watch.opened.items():
        times = [watch.readable[k] for k in held if k in watch.readable]
        if finding_id in reached and len(times) == len(held):
            out.append(max(0.0, reached[finding_id] - max(times)))
    return sorted(out)


def breakdown(watch: Watch) -> dict[str, dict[str, float]]:
    """(a) readable → finding by the event's stream and by the kind of the first finding that held
    it (an anomaly rule or a Sigma rule/correlation): where the tail comes from."""
    groups: dict[str, list[float]] = {}
    for key, found in watch.finding.items():
        if key not in watch.readable:
            continue
        wait = max(0.0, found - watch.readable[key])
        kind = "anomaly" if watch.rule.get(key, "").startswith("anomaly.") else "rules"
        for name in (f"stream {key[0]}/{key[1]}", f"found by {kind}"):
            groups.setdefault(name, []).append(wait)
    return {
        name: {
            "events": len(values),
            "p50": _percentile(sorted(values), 50),
            "p95": _percentile(sorted(values), 95),
            "max": max(values),
        }
        for name, values in sorted(groups.items())
    }


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


# --- one run ----------------------------------------------------------------------------------


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def measure(scale: Scale) -> list[Figure]:
    from core.db import Database
    from simulator.http import free_port

    with work_dir("tg-bench-latency-") as tmp:
        # the first story starts once serve has had time to read the backlog (~a minute per 100
        # users under load; ~7 s per 100 on a quiet machine: TENANTGUARD_BENCH_LATENCY_LEAD seconds)
        lead = int(os.environ.get("TENANTGUARD_BENCH_LATENCY_LEAD") or max(90, scale.users * 60 // 100))
        end, starts = write_scenario(tmp / "scenario.yaml", scale.stories, int(time.time()) + lead)
        connections = tmp / "connections.toml"
        simulator = subprocess.Popen(
            [*CLI, "simulator", "serve", "--scenario", str(tmp / "scenario.yaml"), "--users",
             str(scale.users), "--days", "1", "--seed", "7",
             "--start", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end - DAY)),
             "--write-connections", str(connections), "--interval", str(scale.interval)],
            stdout=subprocess.PIPE, stderr=(tmp / "simulator.log").open("w"), text=True,
        )  # fmt: skip
        serve = None
        try:
            assert simulator.stdout is not None
            info = yaml.safe_load(simulator.stdout.readline() or "{}")
            if not info:
                raise RuntimeError(
                    f"the simulator did not start:\n{(tmp / 'simulator.log').read_text()[-2000:]}"
                )
            admin = info["admin_url"]
            # live: the simulator's clock is the wall clock, the stories still to come
            clock = httpx.get(f"{admin}/clock", timeout=30).json()
            httpx.post(f"{admin}/clock", json={"advance": time.time() - clock["now_epoch"]}, timeout=30)
            wanted = _truth_events(admin)
            url = f"sqlite:///{tmp / 'latency.db'}"
            env = dict(
                os.environ,
                TENANTGUARD_DATA_DIR=str(tmp / "data"),
                TENANTGUARD_DATABASE_URL=url,
                TENANTGUARD_CONNECTIONS_FILE=str(connections),
            )
            serve = subprocess.Popen(
                [*CLI, "serve", "--port", str(free_port())],
                env=env, stdout=(tmp / "serve.log").open("w"), stderr=subprocess.STDOUT,
            )  # fmt: skip
            db = Database(url)
            watch = Watch()
            horizon = starts[-1] + HORIZON
            while time.time() < horizon:
                if serve.poll() is not None:
                    raise RuntimeError(f"serve exited:\n{(tmp / 'serve.log').read_text()[-2000:]}")
                with contextlib.suppress(OperationalError):  # serve is still creating the schema
                    _poll(admin, db, wanted, watch)
                time.sleep(1.0)
            db.dispose()
        finally:
            if serve is not None:
                _stop(serve)
            _stop(simulator)
    return figures(scale, watch, sum(len(v) for v in wanted.values()))


def _figure(
    name: str, values: list[float], counted: str, goal: str | None = None, notes: str = "", **extra: Any
) -> Figure:
    """A latency row: p95 as its value, p50/p95/max over `values` (each one of `counted`)."""
    p50, p95 = _percentile(values, 50), _percentile(values, 95)
    high = max(values) if values else None
    return Figure(
        AREA,
        name,
        p95,
        "s (p95)",
        min(values) if values else None,
        high,
        len(values),
        goal=goal,
        notes=f"p50 {p50:.1f} s, p95 {p95:.1f} s, max {high if high is not None else float('nan'):.1f} s "
        f"over {len(values)} {counted}{notes}",
        extra={"p50": p50, "p95": p95, "max": high, "values": values, **extra},
    )


def figures(scale: Scale, watch: Watch, truth_events: int) -> list[Figure]:
    label = f"{scale.users:,} users, {scale.stories} stories, {scale.interval} s interval"
    parts = breakdown(watch)
    detail = "".join(
        f"; {name}: {v['events']:.0f} events, p50 {v['p50']:.1f} s, p95 {v['p95']:.1f} s, max {v['max']:.1f} s"
        for name, v in parts.items()
    )
    out = [
        _figure(f"(a) readable → finding, {label}", _latencies(watch, watch.finding), "evidence events",
                notes=detail, breakdown=parts),
        _figure(f"(b) readable → incident, {label}", _latencies(watch, watch.incident), "evidence events",
                goal=f"p95 ≤ {scale.interval + 5} s (interval + 5 s)"),
        _figure(f"(c) readable → first notification, {label}", _latencies(watch, watch.notified),
                "evidence events"),
    ]  # fmt: skip
    first_seen = {finding_id: at for finding_id, (at, _) in watch.opened.items()}
    for what, seen in (
        ("(a') last evidence readable → finding, per finding", first_seen),
        ("(b') last evidence readable → incident, per finding", watch.grouped),
    ):
        out.append(_figure(f"{what}, {label}", per_finding(watch, seen), "findings"))
    # The latency rows are over evidence events: the attack events a finding holds. Count the same
    # events here — not every ground-truth event (conversation messages, undetectable steps), and
    # not an evidence event whose readable moment was never seen (it is in no latency row).
    evidence = set(watch.finding)
    measured = evidence & set(watch.readable)
    out.append(
        Figure(
            AREA,
            f"evidence events readable within the run, {label}",
            len(measured),
            "events",
            notes=f"of {len(evidence)} evidence events with a finding ({len(evidence - measured)} never seen "
            f"readable, left out); {len(watch.readable)} of {truth_events} ground-truth events readable; "
            f"{watch.polls} polls",
            extra={"evidence": len(evidence), "readable_truth": len(watch.readable), "truth": truth_events},
        )
    )
    return out


def run(quick: bool) -> list[Figure]:
    result: list[Figure] = []
    for scale in scales(quick):
        print(f"-- {AREA}: {scale}", file=sys.stderr, flush=True)
        measured = measure(scale)
        for figure in measured:
            print(f"   {figure.name}: {figure.notes}", file=sys.stderr, flush=True)
        result.extend(measured)
    return result


def main() -> int:
    print_table(run(quick="--quick" in sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
