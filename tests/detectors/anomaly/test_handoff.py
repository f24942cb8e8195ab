"""The anomaly stage takes what the rules stage read of each event: one decode per event, same findings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.db import Database
from core.settings import Settings
from detectors.anomaly import detect_anomalies
from detectors.anomaly.engine import READ_STREAMS
from detectors.pipeline import detect_new
from tests.detectors.anomaly.conftest import normal_history
from tests.detectors.anomaly.test_event_time import USERS, _attacks, _findings_in_full, _write


def test_given_the_rules_stage_read_the_events_then_the_anomaly_stage_decodes_none_again_and_finds_the_same(
    settings: Settings, tmp_path: Path
) -> None:
    events = normal_history(USERS, days=15) + _attacks()
    judged_by_anomaly = sum(1 for row in events if (row[0], row[1]) in READ_STREAMS)
    found = []
    for name in ("alone", "after_rules"):
        db = Database(f"sqlite:///{tmp_path / f'{name}.db'}")
        db.upgrade()
        _write(db, events)
        cache: dict[str, Any] = {}
        if name == "alone":  # given the anomaly stage reading (decoding) every event itself
            detect_anomalies(db, settings)
        else:  # when it runs after the rules stage in one detection run
            detect_new(db, settings, cache=cache)
            handoff = cache[f"{db.url}|anomaly.handoff"]
            # then it took every event's signals from the rules stage's read, and holds nothing on
            assert handoff.taken == handoff.offered == judged_by_anomaly
            assert len(handoff) == 0
        found.append(_findings_in_full(db))
        db.dispose()
    # and finds exactly what it found alone
    assert found[0] and found[0] == found[1]
