"""Sigma value modifiers and field access, each as: given a rule, when an event arrives, then match or not."""

from __future__ import annotations

import base64

import pytest

from tests.detectors.sigma.conftest import matches, rule_yaml


@pytest.mark.parametrize(
    ("selection", "event", "expected"),
    [
        # plain values: case-insensitive, numbers equal their text, lists are OR
        ("appDisplayName: graph explorer", {"appDisplayName": "Graph Explorer"}, True),
        ("status.errorCode: 50126", {"status": {"errorCode": "50126"}}, True),
        ("status.errorCode: [50126, 50053]", {"status": {"errorCode": 50053}}, True),
        ("status.errorCode: [50126, 50053]", {"status": {"errorCode": 0}}, False),
        ("isInteractive: true", {"isInteractive": True}, True),
        ("isInteractive: true", {"isInteractive": False}, False),
        # wildcards
        (
            "userPrincipalName: 'adm*@northwind.example'",
            {"userPrincipalName": "ADMIN@northwind.example"},
            True,
        ),
        ("userPrincipalName: 'a?c@x.example'", {"userPrincipalName": "abc@x.example"}, True),
        ("userPrincipalName: 'a?c@x.example'", {"userPrincipalName": "abbc@x.example"}, False),
        ("appDisplayName: '*'", {"appDisplayName": "anything"}, True),
        ("appDisplayName: '*'", {"other": 1}, False),
        # contains / startswith / endswith
        ("userAgent|contains: python", {"userAgent": "Python-Requests/2.31"}, True),
        ("userAgent|startswith: mozilla", {"userAgent": "Mozilla/5.0"}, True),
        ("userAgent|endswith: '2.31'", {"userAgent": "python-requests/2.31"}, True),
        ("userAgent|contains|all: [python, requests]", {"userAgent": "python-requests"}, True),
        ("userAgent|contains|all: [python, curl]", {"userAgent": "python-requests"}, False),
        # regex: unanchored RE2, case-sensitive unless |i
        ("userAgent|re: 'requests/2\\.\\d+'", {"userAgent": "python-requests/2.31.0"}, True),
        ("userAgent|re: '^Python'", {"userAgent": "python-requests"}, False),
        ("userAgent|re|i: '^Python'", {"userAgent": "python-requests"}, True),
        # cidr
        ("ipAddress|cidr: 10.0.0.0/8", {"ipAddress": "10.20.30.40"}, True),
        ("ipAddress|cidr: 10.0.0.0/8", {"ipAddress": "11.0.0.1"}, False),
        ("ipAddress|cidr: '2001:db8::/32'", {"ipAddress": "2001:db8::1"}, True),
        ("ipAddress|cidr: 10.0.0.0/8", {"ipAddress": "not an ip"}, False),
        # exists / null
        ("riskDetail|exists: true", {"riskDetail": None}, True),
        ("riskDetail|exists: false", {"other": 1}, True),
        ("riskDetail|exists: true", {"other": 1}, False),
        ("riskDetail: null", {"other": 1}, True),
        ("riskDetail: null", {"riskDetail": None}, True),
        ("riskDetail: null", {"riskDetail": "none"}, False),
        # numeric comparisons (numbers or numeric text)
        ("count|gt: 10", {"count": 11}, True),
        ("count|gt: 10", {"count": "10"}, False),
        ("count|gte: 10", {"count": "10"}, True),
        ("count|lt: 10", {"count": 9.5}, True),
        ("count|lte: 10", {"count": True}, False),
        # negation modifier
        ("clientAppUsed|neq: Browser", {"clientAppUsed": "IMAP4"}, True),
        ("clientAppUsed|neq: Browser", {"clientAppUsed": "browser"}, False),
        # cased
        ("appDisplayName|cased: Graph", {"appDisplayName": "graph"}, False),
        ("appDisplayName|cased: Graph", {"appDisplayName": "Graph"}, True),
        # windash
        ("commandLine|windash|contains: ' -enc '", {"commandLine": "powershell /enc AAAA"}, True),
        # field reference
        ("initiator|fieldref: target", {"initiator": "a@x.example", "target": "A@x.example"}, True),
        ("initiator|fieldref: target", {"initiator": "a@x.example", "target": "b@x.example"}, False),
        # timestamp part
        ("createdDateTime|hour: 3", {"createdDateTime": "2026-11-20T03:10:00Z"}, True),
        ("createdDateTime|hour: 3", {"createdDateTime": "2026-11-20T13:10:00Z"}, False),
    ],
)
def test_value_modifiers(make_pack, selection: str, event: dict, expected: bool) -> None:
    # given a rule with one selection, when the event is evaluated, then it matches as Sigma says
    pack = make_pack(rule_yaml(f"selection:\n  {selection}\ncondition: selection"))
    assert matches(pack, event) is expected


def test_base64_modifiers_are_case_sensitive_because_base64_is(make_pack) -> None:
    encoded = base64.b64encode(b"Invoke-Mimikatz").decode()
    pack = make_pack(rule_yaml("selection:\n  body|base64: Invoke-Mimikatz\ncondition: selection"))
    assert matches(pack, {"body": encoded})
    assert not matches(pack, {"body": encoded.lower()})
    offset = make_pack(rule_yaml("selection:\n  body|base64offset|contains: Mimikatz\ncondition: selection"))
    assert matches(offset, {"body": encoded})


def test_keys_are_case_insensitive_at_every_level(make_pack) -> None:
    pack = make_pack(
        rule_yaml(
            "selection:\n  status.errorCode: 50126\n  userPrincipalName: a@x.example\ncondition: selection"
        )
    )
    assert matches(pack, {"STATUS": {"ERRORCODE": 50126}, "userprincipalname": "A@X.example"})


def test_dotted_paths_walk_lists_of_objects(make_pack) -> None:
    # given a directory audit with several target resources, each with modified properties
    pack = make_pack(
        rule_yaml(
            "selection:\n  targetResources.modifiedProperties.newValue|contains: Global Administrator\ncondition: selection",
            service="directory_audits",
        )
    )
    event = {
        "targetResources": [
            {"modifiedProperties": [{"newValue": '"x"'}]},
            {
                "modifiedProperties": [
                    {"displayName": "Role.DisplayName", "newValue": '"Global Administrator"'}
                ]
            },
        ]
    }
    assert matches(pack, event, stream="directory_audits")
    assert not matches(pack, {"targetResources": []}, stream="directory_audits")


def test_list_valued_fields_match_when_any_element_matches(make_pack) -> None:
    pack = make_pack(rule_yaml("selection:\n  riskEventTypes_v2: impossibleTravel\ncondition: selection"))
    assert matches(pack, {"riskEventTypes_v2": ["unfamiliarFeatures", "impossibleTravel"]})
    assert not matches(pack, {"riskEventTypes_v2": []})


def test_flattened_exports_with_dotted_keys_still_resolve(make_pack) -> None:
    pack = make_pack(rule_yaml("selection:\n  status.errorCode: 50126\ncondition: selection"))
    assert matches(pack, {"status.errorCode": 50126})


def test_keywords_search_every_string_value(make_pack) -> None:
    pack = make_pack(rule_yaml("keywords:\n  - mimikatz\ncondition: keywords"))
    assert matches(pack, {"a": {"b": ["x", "run Mimikatz now"]}})
    assert not matches(pack, {"a": "benign"})


def test_conditions_combine_selections_with_and_or_not_and_of(make_pack) -> None:
    detection = """
        sel_a:
          a: 1
        sel_b:
          b: 2
        filter:
          c: 3
        condition: 1 of sel_* and not filter
    """
    pack = make_pack(rule_yaml(detection))
    assert matches(pack, {"b": 2})
    assert not matches(pack, {"b": 2, "c": 3})
    assert not matches(pack, {"d": 4})


def test_google_activity_in_reports_api_form_is_accepted(make_pack) -> None:
    pack = make_pack(
        rule_yaml(
            "selection:\n  name: authorize\n  parameters.scope: https://mail.google.com/\ncondition: selection",
            product="google",
            service="token",
        )
    )
    activity = {
        "id": {"time": "2026-11-20T06:00:00.000Z", "uniqueQualifier": "-3"},
        "actor": {"email": "lee@northwind.example"},
        "events": [
            {
                "type": "auth",
                "name": "authorize",
                "parameters": [
                    {"name": "app_name", "value": "Mail Cleaner"},
                    {"name": "scope", "multiValue": ["openid", "https://mail.google.com/"]},
                ],
            }
        ],
    }
    assert matches(pack, activity, provider="google", stream="token")


def test_azure_monitor_wrapped_signins_are_unwrapped(make_pack) -> None:
    pack = make_pack(
        rule_yaml("selection:\n  clientAppUsed: IMAP4\n  status.errorCode: 0\ncondition: selection")
    )
    wrapped = {
        "time": "2026-11-20T04:12:00Z",
        "category": "SignInLogs",
        "operationName": "Sign-in activity",
        "resultType": "0",
        "callerIpAddress": "45.133.1.9",
        "properties": {"clientAppUsed": "IMAP4", "status": {"errorCode": 0}},
    }
    assert matches(pack, wrapped)


def test_a_signin_whose_result_is_only_in_the_wrapper_matches_rules_needing_success(make_pack) -> None:
    pack = make_pack(
        rule_yaml(
            "selection:\n  authenticationProtocol: deviceCode\n  status.errorCode: 0\ncondition: selection"
        )
    )
    wrapped = {
        "time": "2026-11-20T04:12:00Z",
        "category": "SignInLogs",
        "operationName": "Sign-in activity",
        "resultType": "0",
        "callerIpAddress": "45.133.1.9",
        "properties": {
            "id": "s1",
            "userPrincipalName": "a@x.example",
            "authenticationProtocol": "deviceCode",
        },
    }
    assert matches(pack, wrapped)
    assert not matches(pack, {**wrapped, "resultType": "50199"})


def test_a_rule_written_for_the_azure_monitor_export_matches_the_export(make_pack) -> None:
    # our own logsource, the export's field names (properties.*): both views are kept
    pack = make_pack(
        rule_yaml(
            "selection:\n  properties.result: failure\n  properties.targetResources.userPrincipalName: "
            "grace@northwind.example\ncondition: selection",
            service="directory_audits",
        )
    )
    wrapped = {
        "time": "2026-11-20T04:12:00Z",
        "category": "AuditLogs",
        "operationName": "Delete user",
        "properties": {
            "id": "d1",
            "activityDateTime": "2026-11-20T04:12:00Z",
            "activityDisplayName": "Delete user",
            "result": "failure",
            "targetResources": [{"userPrincipalName": "grace@northwind.example"}],
        },
    }
    assert matches(pack, wrapped, stream="directory_audits")
    assert not matches(
        pack,
        {**wrapped, "properties": {**wrapped["properties"], "result": "success"}},
        stream="directory_audits",
    )


def test_null_matches_only_a_null_or_missing_field_and_its_negation_keeps_the_empty_string(make_pack) -> None:
    # given a rule for sign-ins with no device id, and one for sign-ins that have one
    no_device = make_pack(rule_yaml("selection:\n  deviceDetail.deviceId: null\ncondition: selection"))
    has_device = make_pack(
        rule_yaml(
            "selection:\n  appDisplayName: Office\nfilter:\n  deviceDetail.deviceId: null\n"
            "condition: selection and not filter"
        )
    )
    # then null is missing or null, and the empty string Graph writes for unregistered devices is not null
    assert matches(no_device, {"appDisplayName": "Office"})
    assert matches(no_device, {"deviceDetail": {"deviceId": None}})
    assert not matches(no_device, {"deviceDetail": {"deviceId": ""}})
    assert not matches(no_device, {"deviceDetail": {"deviceId": "d-1"}})
    assert matches(has_device, {"appDisplayName": "Office", "deviceDetail": {"deviceId": ""}})
    assert matches(has_device, {"appDisplayName": "Office", "deviceDetail": {"deviceId": "d-1"}})
    assert not matches(has_device, {"appDisplayName": "Office", "deviceDetail": {"deviceId": None}})
    assert not matches(has_device, {"appDisplayName": "Office"})


def test_empty_string_value_matches_only_the_empty_string(make_pack) -> None:
    pack = make_pack(rule_yaml("selection:\n  deviceDetail.deviceId: ''\ncondition: selection"))
    assert matches(pack, {"deviceDetail": {"deviceId": ""}})
    assert not matches(pack, {"deviceDetail": {"deviceId": None}})
    assert not matches(pack, {"appDisplayName": "Office"})


def test_a_wildcard_keyword_matches_the_whole_string_and_a_plain_keyword_any_part(make_pack) -> None:
    wildcard = make_pack(rule_yaml("keywords:\n  - 'invoke*mimikatz'\ncondition: keywords"))
    plain = make_pack(rule_yaml("keywords:\n  - mimikatz\ncondition: keywords"))
    assert matches(wildcard, {"userAgent": "Invoke-Mimikatz"})
    assert not matches(wildcard, {"userAgent": "powershell Invoke-Mimikatz -DumpCreds"})
    assert matches(plain, {"userAgent": "powershell Invoke-Mimikatz -DumpCreds"})


def test_a_number_keyword_never_matches_a_numeric_field(make_pack) -> None:
    pack = make_pack(rule_yaml("keywords:\n  - 50126\ncondition: keywords"))
    assert not matches(pack, {"status": {"errorCode": 50126}})
    assert matches(pack, {"status": {"failureReason": "AADSTS50126: invalid username or password"}})
