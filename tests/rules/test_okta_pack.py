"""The Okta rules: at least thirty rules and correlations, all in SigmaHQ's Okta taxonomy
(`product: okta, service: okta`, the System Log's own field names), so that rules written the
SigmaHQ way load and fire on the System Log events the simulator serves."""

from __future__ import annotations

from pathlib import Path

import yaml

from detectors.pipeline import default_rules_path
from detectors.sigma.engine import DetectionEngine
from detectors.sigma.loader import load_pack
from simulator import world as simulator_world
from tests.rules.test_scenarios import scenario_events

OKTA_RULES = default_rules_path() / "okta"


def test_the_okta_pack_has_thirty_rules_and_correlations_in_the_sigmahq_taxonomy() -> None:
    pack = load_pack([OKTA_RULES])
    assert pack.problems == []
    okta = [r for r in pack.rules if r.provider == "okta"] + [
        c for c in pack.correlations if c.provider == "okta"
    ]
    assert len(okta) >= 30, len(okta)
    assert len(okta) == len(pack.rules) + len(pack.correlations)
    for path in sorted(OKTA_RULES.glob("*.yml")):
        document = yaml.safe_load(path.read_text())
        if "correlation" not in document:
            assert document["logsource"] == {"product": "okta", "service": "okta"}, path.name


SIGMAHQ_STYLE = """
title: Okta session started through an anonymising proxy (written as SigmaHQ writes it)
id: 0b1c3f0e-6a43-4f8e-9d7a-3b0c6f6f2a10
status: test
logsource:
    product: okta
    service: okta
detection:
    selection:
        eventtype: 'user.session.start'
        securitycontext.isproxy: 'true'
        displaymessage: 'User login to Okta'
    condition: selection
level: high
tags:
    - attack.initial_access
    - attack.t1078
tests:
  - name: proxy
    match: true
    event: {eventType: user.session.start, displayMessage: User login to Okta, securityContext: {isProxy: true}}
  - name: direct
    match: false
    event: {eventType: user.session.start, displayMessage: User login to Okta, securityContext: {isProxy: false}}
"""


def test_a_rule_in_sigmahq_form_fires_on_the_simulators_system_log(tmp_path: Path) -> None:
    # given a rule with SigmaHQ's lower-case field names and a string 'true' for a boolean
    (tmp_path / "sigmahq_okta.yml").write_text(SIGMAHQ_STYLE)
    pack = load_pack([tmp_path])
    assert pack.problems == []
    # when it runs over the System Log of the push-fatigue tenant, as the simulator renders it
    world = simulator_world.build_world("okta_mfa_fatigue")
    result = DetectionEngine(pack).process(list(scenario_events(world)))
    # then it fires on the attacker's sign-in from the hosting network, the story's first event
    truth = world.truth()
    story = truth["stories"][0]
    first = {e["id"] for s in story["steps"] if s["id"] == "push_fatigue" for e in s["events"]}
    assert result.errors == []
    assert any(first & set(f.evidence_event_ids) for f in result.findings), result.findings
