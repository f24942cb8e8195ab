"""Incident quality on the simulator's shipped scenarios: collect → detect → resolve → build → score.

For each scenario a simulator is started in-process, the product collects everything (events,
snapshots, conversations) into a fresh SQLite database, runs detection, resolves identities and
builds incidents, then `timeline.quality.score_against_truth` compares the incidents with the
ground truth: stories split or merged (target 0), conversation precision/recall, incidents that
match no story (by priority; the quiet week should have none at P1/P2).

Baseline measured in the same run: the same findings grouped *without* conversations or identity
(one incident per finding), to show what grouping buys.

Also per scenario: incidents by priority and per 1,000 users per week, decoys raised, what the
daily digests hold (mass changes, findings inside declared change windows) and the MTTD of the
story incidents counted from when their first event could be read.

Run: ``.venv/bin/python -m bench.timeline_quality [SCENARIO ...] [--quick] [--json] [--users N]
[--days N] [--collected DIR]`` (a Markdown table per scenario; ``--json`` adds the full scores;
``--users 1000`` scores every scenario in a 1,000-user tenant instead of the scenario's own size,
which is how the quiet-week figure per 1,000 users is measured; ``--collected DIR`` keeps each
collected database in DIR and later runs score a copy of it with their own code, detect onwards),
or ``python -m bench timeline_quality``.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import Figure
from core.audit import Actor
from core.db import Database
from core.settings import Settings

SCENARIOS = (
    "account_takeover",
    "oauth_consent_phishing",
    "insider_exfiltration",
    "admin_privilege_abuse",
    "slack_session_theft",
    "okta_mfa_fatigue",
    "okta_support_impersonation",
    "token_theft",
    "slack_guest_exfiltration",
    "google_delegated_admin",
    "dormant_account_revival",
    "quiet_week",
    "password_manager_rollout",
    "change_window_sharing",
    "business_travel",
    "new_office",
)


def pipeline(
    scenario: str, workdir: Path, collected: Path | None = None, **options: Any
) -> tuple[Database, dict[str, Any], dict[str, float]]:
    """Run the product over one scenario; returns the database, the truth and stage timings.

    With `collected` (a directory) the collected database and the truth are kept there after the
    collect stage, and a later run with the same scenario and options starts from a copy of them
    (detect onwards, with the code of that run): at 1,000 users collection is most of the time.
    """
    from collectors import collect_once, connections_from_simulator
    from collectors.connections import sync_connections
    from simulator.handle import start

    path = workdir / f"{scenario}.db"
    keys = {"encryption_key_file": collected / "encryption.key"} if collected else {}
    settings = Settings(data_dir=workdir / scenario, database_url=f"sqlite:///{path}", **keys)
    kept = _kept_database(collected, scenario, options) if collected else None
    if kept is not None and kept.exists():
        _copy_database(kept, path)
        db = Database.from_settings(settings)
        truth = json.loads(kept.with_suffix(".truth.json").read_text())
        return db, truth, {"collect (kept)": 0.0, **_after_collect(db, settings)}
    handle = start(scenario, **options)
    try:
        db = Database.from_settings(settings)
        db.upgrade()
        sync_connections(
            db, connections_from_simulator(handle.info, conversations=True), actor=Actor.system("bench")
        )
        truth = handle.truth
        declare_changes(db, truth)
        began = time.perf_counter()
        collect_once(db, settings)
        timings = {"collect": time.perf_counter() - began}
    finally:
        handle.stop()
    if kept is not None:
        _copy_database(path, kept)
        kept.with_suffix(".truth.json").write_text(json.dumps(truth, default=str))
    return db, truth, {**timings, **_after_collect(db, settings)}


def _after_collect(db: Database, settings: Settings) -> dict[str, float]:
    from detectors.pipeline import detect_new
    from timeline import build_incidents
    from timeline.digest import build_digests

    timings = {}
    for stage, run in (
        ("detect", lambda: detect_new(db, settings)),
        ("identity", lambda: _identity(db)),
        ("build", lambda: build_incidents(db, settings, notify=False)),
        ("digest", lambda: build_digests(db, settings)),
    ):
        began = time.perf_counter()
        run()
        timings[stage] = time.perf_counter() - began
    return timings


def _kept_database(collected: Path, scenario: str, options: dict[str, Any]) -> Path:
    collected.mkdir(parents=True, exist_ok=True)
    suffix = "".join(f"-{name}{value}" for name, value in sorted(options.items()))
    return collected / f"{scenario}{suffix}.db"


def _copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (its WAL included), replacing `target`."""
    import sqlite3

    for extra in ("", "-wal", "-shm"):
        Path(f"{target}{extra}").unlink(missing_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def declare_changes(db: Database, truth: dict[str, Any]) -> list[int]:
    """Declare the change windows the scenario's change process approved: every decoy of kind
    ``declared-change``, its first person the actor, 30 minutes either side of its steps."""
    from datetime import timedelta

    from core.clock import parse_time
    from timeline.changes import declare_change_window

    declared = []
    for decoy in truth.get("decoys") or []:
        if decoy.get("kind") != "declared-change" or not decoy.get("people"):
            continue
        times = [parse_time(step["at"]) for step in decoy.get("steps") or []]
        window = declare_change_window(
            db,
            reference=str(decoy["id"]).upper(),
            actor_email=str(decoy["people"][0]),
            starts_at=min(times) - timedelta(minutes=30),
            ends_at=max(times) + timedelta(minutes=30),
            description=str(decoy.get("title", "")),
            actor=Actor.system("bench"),
        )
        declared.append(int(window["id"]))
    return declared


def _identity(db: Database) -> None:
    try:
        from identity import resolve_people
    except ImportError:
        return
    resolve_people(db)


def score(scenario: str, workdir: Path, collected: Path | None = None, **options: Any) -> dict[str, Any]:
    """Score one scenario; ``options`` go to the simulator (``users=1000`` for a 1,000-user tenant),
    `collected` keeps (or reuses) the collected database, see :func:`pipeline`."""
    from timeline.quality import score_against_truth

    db, truth, timings = pipeline(scenario, workdir, collected, **options)
    try:
        result = score_against_truth(db, truth)
        result["unmatched_details"] = _unmatched_details(db, result["unmatched_incidents"]["ids"])
    finally:
        db.dispose()
    result["timings"] = timings
    return result


def _unmatched_details(db: Database, ids: list[int]) -> list[dict[str, Any]]:
    """Title, priority and the rules behind each incident no story explains (what to fix for noise)."""
    from sqlmodel import col, select

    from core.models import Finding, Incident

    if not ids:
        return []
    with db.session(readonly=True) as s:
        incidents = s.exec(select(Incident).where(col(Incident.id).in_(ids))).all()
        out = []
        for incident in incidents:
            rules = s.exec(select(Finding.rule_id).where(Finding.incident_id == incident.id)).all()
            out.append(
                {
                    "id": incident.id,
                    "priority": incident.priority,
                    "title": incident.title,
                    "rules": sorted(set(rules)),
                }
            )
    return out


def run(quick: bool = False) -> list[Figure]:
    figures: list[Figure] = []
    chosen = SCENARIOS[:1] + SCENARIOS[-1:] if quick else SCENARIOS
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in chosen:
            result = score(scenario, Path(tmp))
            conv = result["conversations"]
            unmatched = result["unmatched_incidents"]
            figures.append(
                Figure(
                    "timeline",
                    f"{scenario}: stories in exactly one incident",
                    result["exactly_one_incident"],
                    f"of {result['stories']}",
                    goal="all",
                    notes=(
                        f"split {result['stories_split']}, merged {result['stories_merged']}, "
                        f"undetected {result['stories'] - result['stories_detected']}; "
                        f"conversations precision {conv['precision']} recall {conv['recall']}; "
                        f"unmatched incidents {unmatched['count']} {unmatched['by_priority']}"
                    ),
                    extra=result,
                )
            )
            figures.append(
                Figure(
                    "timeline",
                    f"{scenario}: incidents per 1,000 users per week",
                    result["incidents_per_1000_users_week"] or 0.0,
                    "incidents",
                    goal="≤ 3 beyond the stories, 0 at P1/P2 outside them",
                    notes=(
                        f"by priority {result['by_priority']}; decoys raised "
                        f"{result['decoys']['with_incident']} of {result['decoys']['count']}; "
                        f"digests {result['digests']}; MTTD from readable "
                        f"{result['mttd_from_readable_seconds']} s"
                    ),
                )
            )
    return figures


def table(results: list[dict[str, Any]]) -> str:
    """The per-scenario figures as a Markdown table (what bench/README.md quotes)."""
    head = (
        "| scenario | users × days | incidents (by priority) | per 1,000 users / week | stories in one "
        "P1/P2 incident | split / merged | decoys raised | unmatched | digest findings (mass / change lines) "
        "| MTTD from readable |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in results:
        prio = ", ".join(f"{k} {v}" for k, v in sorted(r["by_priority"].items())) or "—"
        d = r["digests"]
        mttd = r["mttd_from_readable_seconds"]
        lines.append(
            f"| {r['scenario']} | {r['users']} × {r['days']} | {r['incidents']} ({prio}) "
            f"| {r['incidents_per_1000_users_week']} | {r['in_one_p1_p2_incident']} of {r['stories']} "
            f"| {r['stories_split']} / {r['stories_merged']} "
            f"| {r['decoys']['with_incident']} of {r['decoys']['count']} "
            f"| {r['unmatched_incidents']['count']} {r['unmatched_incidents']['by_priority'] or ''} "
            f"| {d['findings']} ({d['mass_change_lines']} / {d['change_window_lines']}) "
            f"| {'—' if mttd is None else f'{mttd:.0f} s'} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import json
    import sys

    args = sys.argv[1:]
    options: dict[str, Any] = {}
    for flag in ("--users", "--days"):
        if flag in args:
            at = args.index(flag)
            options[flag[2:]] = int(args[at + 1])
            del args[at : at + 2]
    collected = None
    if "--collected" in args:
        at = args.index("--collected")
        collected = Path(args[at + 1])
        del args[at : at + 2]
    names = [a for a in args if not a.startswith("--")] or list(
        SCENARIOS[:1] + SCENARIOS[-1:] if "--quick" in args else SCENARIOS
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            outcome = score(name, Path(tmp), collected, **options)
            results.append(outcome)
            if "--json" in args:
                print(
                    json.dumps({k: v for k, v in outcome.items() if k != "per_story"}, indent=1, default=str)
                )
                for story in outcome["per_story"]:
                    print(json.dumps(story, default=str))
    print(table(results))
