"""Every simulator scenario: the rule pack finds every detectable attack step, and a quiet week
raises nothing above low severity.

The events are the simulator's own vendor JSON (its renderers, the same bytes its HTTP API
serves), normalised the way the collectors store them; evidence is compared with the ground
truth by provider event id.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from core.findings import FindingDraft
from detectors.pipeline import default_rules_path
from detectors.sigma.engine import DetectionEngine
from detectors.sigma.events import EventRecord, make_records
from detectors.sigma.loader import load_pack
from simulator import world as simulator_world
from simulator.render import event_ids, render
from simulator.store import EVENT_STREAMS

PACK = load_pack([default_rules_path()])
ATTACKS = [
    "account_takeover",
    "admin_privilege_abuse",
    "insider_exfiltration",
    "oauth_consent_phishing",
    "okta_mfa_fatigue",
    "okta_support_impersonation",
    "slack_session_theft",
]


def scenario_events(world) -> Iterator[EventRecord]:
    for stream in EVENT_STREAMS:
        provider, name = stream.split(":")
        for record in world.store.all_records(stream):
            body = render(world.ctx, stream, record)
            ids = event_ids(world.ctx, stream, record)
            for index, made in enumerate(make_records(provider, name, body, event_id=ids[0])):
                event_id = made.provider_event_id or ids[index]
                yield replace(made, id=event_id, provider_event_id=event_id)


Detected = tuple[dict[str, Any], list[FindingDraft]]


@pytest.fixture(scope="module")
def detect() -> Callable[[str], Detected]:
    """A scenario's world rendered and matched once for the three checks below (module scope: the
    suite's scheduler keeps this file on one worker, tests/scheduling.py)."""
    return functools.cache(_detect)


def _detect(scenario: str) -> Detected:
    world = simulator_world.build_world(scenario)
    result = DetectionEngine(PACK).process(list(scenario_events(world)))
    assert result.errors == []
    return world.truth(), result.findings


@pytest.mark.parametrize("scenario", ATTACKS)
def test_every_detectable_attack_step_is_found(detect: Callable[[str], Detected], scenario: str) -> None:
    truth, findings = detect(scenario)
    evidence = {event_id for f in findings for event_id in f.evidence_event_ids}
    missed = [
        f"{story['id']}/{step['id']}: {step['title']}"
        for story in truth["stories"]
        for step in story["steps"]
        if step["detectable"] and not evidence & {e["id"] for e in step["events"]}
    ]
    assert missed == []


@pytest.mark.parametrize("scenario", ATTACKS)
def test_each_attack_story_raises_at_least_one_high_finding(
    detect: Callable[[str], Detected], scenario: str
) -> None:
    truth, findings = detect(scenario)
    story_events = {e["id"] for s in truth["stories"] for step in s["steps"] for e in step["events"]}
    assert any(
        f.severity in ("high", "critical") and story_events & set(f.evidence_event_ids) for f in findings
    )


@pytest.mark.parametrize("scenario", ["quiet_week", *ATTACKS])
def test_benign_activity_and_decoys_stay_at_low_severity_or_below(
    detect: Callable[[str], Detected], scenario: str
) -> None:
    truth, findings = detect(scenario)
    story_events = {e["id"] for s in truth["stories"] for step in s["steps"] for e in step["events"]}
    loud = [
        f"{f.severity} {f.rule_id}: {f.title}"
        for f in findings
        if f.severity not in ("informational", "low") and not story_events & set(f.evidence_event_ids)
    ]
    assert loud == []
