"""A rule's test events take the production path: the one normaliser collection stores with."""

from __future__ import annotations

from detectors.sigma.testing import run_pack_tests
from tests.detectors.sigma.conftest import rule_yaml

RAW_ACTIVITY_TEST = """
tests:
  - name: the second event of a raw activity, as collection stores it
    match: true
    event:
      id: {time: "2026-11-20T04:00:00.000Z", uniqueQualifier: "77", applicationName: login}
      actor: {email: mallory@northwind.example}
      events:
        - {type: login, name: login_success, parameters: [{name: login_type, value: google_password}]}
        - {type: login, name: login_failure, parameters: [{name: login_type, value: google_password}]}
"""

AZURE_MONITOR_TEST = """
tests:
  - name: an Azure Monitor export, unwrapped and its caller IP filled in as collection does
    match: true
    event:
      time: "2026-11-20T04:00:00Z"
      category: SignInLogs
      callerIpAddress: 203.0.113.7
      properties: {id: "s-1", userPrincipalName: alice@northwind.example, status: {errorCode: 50126}}
"""


def test_a_google_test_event_is_exploded_with_its_position_as_stored(make_pack) -> None:
    pack = make_pack(
        rule_yaml(
            "s:\n  event_index: 1\n  name: login_failure\n  parameters.login_type: google_password\ncondition: s",
            product="google",
            service="login",
            extra=RAW_ACTIVITY_TEST,
        )
    )
    [outcome] = run_pack_tests(pack)
    assert outcome.passed, outcome.details


def test_an_azure_monitor_test_event_is_unwrapped_and_filled_as_stored(make_pack) -> None:
    pack = make_pack(
        rule_yaml(
            "s:\n  ipAddress: 203.0.113.7\n  status.errorCode: 50126\ncondition: s",
            extra=AZURE_MONITOR_TEST,
        )
    )
    [outcome] = run_pack_tests(pack)
    assert outcome.passed, outcome.details
