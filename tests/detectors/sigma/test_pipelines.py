"""The shipped processing pipelines: rules written in SigmaHQ's taxonomy and field conventions
(tests/detectors/sigma/community/, written for these tests) load, can fire on what we store, and
fire on stored-shape events; our own rules pass through untouched."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from core import loading
from detectors.pipeline import SHIPPED_RULES
from detectors.sigma import pipelines
from detectors.sigma.loader import load_pack, rule_files
from detectors.sigma.shapes import fires_on_built_event, known_field
from detectors.sigma.testing import run_pack_tests

COMMUNITY = Path(__file__).parent / "community"

# Every community logsource the pipelines cover (SigmaHQ's product/service names).
COVERED_LOGSOURCES = {
    ("azure", "signinlogs"),
    ("azure", "auditlogs"),
    ("azure", "riskdetection"),
    ("azure", "pim"),
    ("m365", "audit"),
    ("m365", "exchange"),
    ("m365", "threat_management"),
    ("gcp", "google_workspace.admin"),
    ("gcp", "google_workspace.login"),
    ("okta", "okta"),
}


@pytest.fixture(scope="module")
def community():
    return load_pack([COMMUNITY])


def _documents() -> list[dict]:
    docs = []
    for path in rule_files([COMMUNITY]):
        docs.extend(d for d in loading.load_yaml(path.read_bytes(), source=str(path)).documents if d)
    return docs


def _fields_written(detection: dict) -> set[str]:
    """Field names (without modifiers) of every selection of a detection block."""
    out: set[str] = set()
    for name, selection in detection.items():
        if name == "condition":
            continue
        maps = selection if isinstance(selection, list) else [selection]
        for item in maps:
            if isinstance(item, dict):
                out |= {str(key).split("|")[0] for key in item}
    return out


def test_community_convention_rules_load_and_can_fire_on_the_stored_shapes(community) -> None:
    assert not community.problems, [str(p) for p in community.problems]
    assert len(community.rules) >= 16
    cannot = {r.rule_id: r.unknown_fields for r in community.rules if not r.can_fire}
    assert cannot == {}


def test_community_convention_rules_fire_on_their_stored_shape_test_events(community) -> None:
    outcomes = run_pack_tests(community)
    failed = [(o.rule_id, o.test, o.details) for o in outcomes if not o.passed]
    assert failed == []
    assert {o.rule_id for o in outcomes} == {r.rule_id for r in community.rules}


def test_most_community_rules_fire_on_an_event_built_from_the_rule(community) -> None:
    firing = [r for r in community.rules if fires_on_built_event(r)]
    assert len(firing) >= 0.8 * len(community.rules)


def test_the_rules_cover_every_logsource_and_every_mapped_field() -> None:
    docs = _documents()
    logsources = {(d["logsource"]["product"], d["logsource"]["service"]) for d in docs}
    assert logsources == COVERED_LOGSOURCES
    written = set().union(*(_fields_written(d["detection"]) for d in docs))
    mapped = (
        set(pipelines.AZURE_SIGNIN_FIELDS)
        | set(pipelines.AZURE_AUDIT_FIELDS)
        | set(pipelines.M365_AUDIT_FIELDS)
        | set(pipelines.M365_ALERT_FIELDS)
        | set(pipelines.GOOGLE_FIELDS)
    )
    assert mapped - written == set()


def test_without_the_mapping_the_log_analytics_names_are_not_in_the_stored_shape() -> None:
    # the check the pipelines exist for: these names are not fields of the Graph objects we store
    for column in ("ClientApp", "Username", "LocationDetails.city", "ConditionalAccessPolicies"):
        assert not known_field("m365", "signins", column), column
    for column in ("properties.message", "TargetUserPrincipalName", "ActivityType"):
        assert not known_field("m365", "directory_audits", column), column
    assert not known_field("m365", "unified_audit", "eventName")
    assert not known_field("google", "admin", "eventService")
    assert known_field("google", "admin", "parameters.SETTING_NAME")
    assert known_field("okta", "logs", "displaymessage")


def test_an_unmapped_community_field_is_reported_as_cannot_fire(make_pack) -> None:
    pack = make_pack(
        """
        title: Reads a column we do not store
        id: 4c0d7a5e-1d7b-4a59-9d1a-0b1f6a7c0999
        logsource: {product: azure, service: signinlogs}
        detection:
          selection:
            ResultType: 0
            ConditionalAccessPolicies: failure
          condition: selection
        level: low
        """
    )
    [rule] = pack.rules
    assert not rule.can_fire and rule.unknown_fields == ("ConditionalAccessPolicies",)


def test_our_own_rules_are_not_touched_by_the_pipelines() -> None:
    pack = load_pack([SHIPPED_RULES])
    assert pack.rules
    for rule in pack.rules:
        pipeline = pipelines.community_pipeline()
        pipeline.apply(copy.deepcopy(rule.sigma))
        assert not any(pipeline.applied), rule.rule_id
        assert rule.can_fire, (rule.rule_id, rule.unknown_fields)


@pytest.mark.parametrize(
    ("service", "reason"),
    [
        ("gcp.audit", "not Google Cloud audit logs"),
        ("google_workspace.calendar", "unknown logsource service"),
    ],
)
def test_google_sources_we_do_not_collect_are_refused_with_the_reason(make_pack, service, reason) -> None:
    pack = make_pack(
        f"""
        title: GCP rule
        id: 4c0d7a5e-1d7b-4a59-9d1a-0b1f6a7c0998
        logsource: {{product: gcp, service: {service}}}
        detection:
          selection:
            eventName: x
          condition: selection
        """
    )
    assert not pack.rules
    [problem] = pack.problems
    assert reason in problem.reason


@pytest.mark.parametrize(
    ("service", "stream"), [("google_workspace.gmail", "gmail_log"), ("google_workspace.mobile", "mobile")]
)
def test_gmail_log_events_and_mobile_device_events_are_collected_sources(make_pack, service, stream) -> None:
    # the Reports API's gmail application is stored as stream gmail_log (gmail is the message stream)
    pack = make_pack(
        f"""
        title: Workspace rule
        id: 4c0d7a5e-1d7b-4a59-9d1a-0b1f6a7c0999
        logsource: {{product: gcp, service: {service}}}
        detection:
          selection:
            name: x
          condition: selection
        """
    )
    [rule] = pack.rules
    assert rule.streams == (stream,)
