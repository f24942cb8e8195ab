"""The product's whole chain over a simulator tenant, as the scenario tests run it: connect every
stream (conversations included), collect, detect, resolve people, build incidents, and score the
incidents against the simulator's ground truth."""

from __future__ import annotations

from typing import Any

from collectors import collect_once, connections_from_simulator
from collectors.connections import sync_connections
from core.audit import Actor, Channel
from core.db import Database
from core.settings import Settings
from detectors.pipeline import detect_new
from identity import resolve_people
from timeline import build_incidents
from timeline.quality import score_against_truth


def run_and_score(db: Database, settings: Settings, handle: Any) -> dict[str, Any]:
    sync_connections(
        db,
        connections_from_simulator(handle.info, conversations=True),
        actor=Actor("principal:test", Channel.CLI),
    )
    collect_once(db, settings)
    detect_new(db, settings)
    resolve_people(db)
    build_incidents(db, settings, notify=False)
    return score_against_truth(db, handle.truth)
