"""Incident quality on the simulator's shipped scenarios: collect → detect → resolve → build → score.

For each scenario a simulator is started in-process, the product collects everything (events,
snapshots, conversations) into a fresh SQLite database, runs detection, resolves identities and
builds incidents, then `timeline.quality.score_against_truth` compares the incidents with the
ground truth: stories split or merged (target 0), conversation precision/recall, incidents that
match no story (by priority; the quiet week should have none at P1/P2).

Baseline measured in the same run: the same findings grouped *without* conversations or identity
(one incident per finding), to show what grouping buys.

Run: ``.venv/bin/python -m bench timeline_quality`` (``--quick``: two scenarios).
"""

from __future__ import annotations

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
    "quiet_week",
)


def pipeline(
    scenario: str, workdir: Path, **options: Any
) -> tuple[Database, dict[str, Any], dict[str, float]]:
    """Run the product over one scenario; returns the database, the truth and stage timings."""
    from collectors import collect_once, connections_from_simulator
    from collectors.connections import sync_connections
    from detectors.pipeline import detect_new
    from simulator.handle import start
    from timeline import build_incidents

    timings: dict[str, float] = {}
    handle = start(scenario, **options)
    try:
        settings = Settings(data_dir=workdir / scenario, database_url=f"sqlite:///{workdir / scenario}.db")
        db = Database.from_settings(settings)
        db.upgrade()
        sync_connections(
            db, connections_from_simulator(handle.info, conversations=True), actor=Actor.system("bench")
        )
        for stage, run in (
            ("collect", lambda: collect_once(db, settings)),
            ("detect", lambda: detect_new(db, settings)),
            ("identity", lambda: _identity(db)),
            ("build", lambda: build_incidents(db, settings, notify=False)),
        ):
            began = time.perf_counter()
            run()
            timings[stage] = time.perf_counter() - began
        return db, handle.truth, timings
    finally:
        handle.stop()


def _identity(db: Database) -> None:
    try:
        from identity import resolve_people
    except ImportError:
        return
    resolve_people(db)


def score(scenario: str, workdir: Path) -> dict[str, Any]:
    from timeline.quality import score_against_truth

    db, truth, timings = pipeline(scenario, workdir)
    try:
        result = score_against_truth(db, truth)
    finally:
        db.dispose()
    result["timings"] = timings
    return result


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
    return figures


if __name__ == "__main__":
    import json
    import sys

    quick = "--quick" in sys.argv
    names = [a for a in sys.argv[1:] if not a.startswith("--")] or list(SCENARIOS)
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            outcome = score(name, Path(tmp))
            per_story = outcome.pop("per_story")
            print(json.dumps(outcome, indent=1, default=str))
            for story in per_story:
                print(json.dumps(story, default=str))
