"""Every stream's records, in every shape an export or API gives them, become the same stored fields."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.normalise import NormaliseError, normalise

GRAPH_SIGNIN = {
    "id": "66ea54eb-6301-4ee5-be62-ff5a759b8100",
    "createdDateTime": "2026-11-20T10:00:01.6195833Z",
    "userPrincipalName": "alice@contoso.example",
    "appDisplayName": "Graph explorer",
    "ipAddress": "131.107.159.37",
    "status": {"errorCode": 50126},
    "location": {"countryOrRegion": "US"},
    "isInteractive": False,
}
GOOGLE_ACTIVITY = {
    "kind": "admin#reports#activity",
    "id": {
        "time": "2026-11-20T10:00:01.123Z",
        "uniqueQualifier": "-4002873813067783265",
        "applicationName": "login",
    },
    "actor": {"callerType": "USER", "email": "alice@example.com", "profileId": "100230688039070881323"},
    "ipAddress": "203.0.113.7",
    "events": [
        {
            "type": "login",
            "name": "login_failure",
            "parameters": [
                {"name": "login_type", "value": "google_password"},
                {"name": "login_challenge_method", "multiValue": ["password"]},
                {"name": "is_suspicious", "boolValue": True},
            ],
        },
        {"type": "login", "name": "login_success"},
    ],
}


def test_a_graph_signin_keeps_its_id_time_and_outcome() -> None:
    [event] = normalise("m365", "signins", GRAPH_SIGNIN)
    assert event.provider_event_id == GRAPH_SIGNIN["id"]
    assert event.occurred_at == datetime(2026, 11, 20, 10, 0, 1, 619583, tzinfo=UTC)
    assert (event.actor, event.ip, event.country, event.outcome) == (
        "alice@contoso.example",
        "131.107.159.37",
        "US",
        "failure",
    )
    assert event.action == "signin_noninteractive"
    assert event.raw == GRAPH_SIGNIN


def test_an_azure_monitor_export_is_unwrapped_to_the_same_event() -> None:
    wrapped = {
        "time": "2026-11-20T10:00:01.6195833Z",
        "category": "SignInLogs",
        "operationName": "Sign-in activity",
        "callerIpAddress": "131.107.159.37",
        "resultType": "50126",
        "properties": {k: v for k, v in GRAPH_SIGNIN.items() if k not in ("createdDateTime", "ipAddress")},
    }
    [event] = normalise("m365", "signins", wrapped)
    [direct] = normalise("m365", "signins", GRAPH_SIGNIN)
    assert (event.provider_event_id, event.occurred_at, event.ip, event.outcome) == (
        direct.provider_event_id,
        direct.occurred_at,
        direct.ip,
        direct.outcome,
    )
    assert event.raw["category"] == "SignInLogs"


def test_a_unified_audit_record_without_zone_is_utc_and_loses_its_port() -> None:
    record = {
        "Id": "0f4a8e8b-1",
        "CreationTime": "2026-11-20T10:00:01",
        "Operation": "New-InboxRule",
        "UserId": "alice@contoso.example",
        "ClientIP": "[2001:db8::1]:443",
        "ResultStatus": "Succeeded",
    }
    [event] = normalise("m365", "unified_audit", record)
    assert event.provider_event_id == "0f4a8e8b-1"
    assert event.occurred_at == datetime(2026, 11, 20, 10, 0, 1, tzinfo=UTC)
    assert event.ip == "2001:db8::1"


def test_exports_with_lower_case_keys_are_accepted() -> None:
    [event] = normalise(
        "m365", "unified_audit", {"id": "x1", "creationtime": "2026-11-20T10:00:01", "operation": "Op"}
    )
    assert (event.provider_event_id, event.action) == ("x1", "Op")


def test_a_google_activity_becomes_one_record_per_event_with_positional_ids() -> None:
    events = normalise("google", "login", GOOGLE_ACTIVITY)
    assert [e.provider_event_id for e in events] == [
        "2026-11-20T10:00:01.123Z/-4002873813067783265/0",
        "2026-11-20T10:00:01.123Z/-4002873813067783265/1",
    ]
    first = events[0].raw
    assert first["name"] == "login_failure" and first["type"] == "login"
    assert first["parameters"] == {
        "login_type": "google_password",
        "login_challenge_method": ["password"],
        "is_suspicious": True,
    }
    assert first["actor"]["email"] == "alice@example.com" and first["ipAddress"] == "203.0.113.7"
    assert first["activity"] == GOOGLE_ACTIVITY
    assert events[0].outcome == "failure" and events[1].outcome == "success"


def test_a_google_per_event_record_gives_the_same_event_as_its_activity() -> None:
    exploded = normalise("google", "login", GOOGLE_ACTIVITY)[1]
    flattened = {k: v for k, v in exploded.raw.items() if k != "activity"}
    [again] = normalise("google", "login", flattened)
    assert again.provider_event_id == exploded.provider_event_id
    assert again.occurred_at == exploded.occurred_at


@pytest.mark.parametrize("date_create", [1763632801, "1763632801", "2025-11-20T10:00:01Z"])
def test_slack_entries_accept_numeric_and_text_dates(date_create: object) -> None:
    entry = {
        "id": "0123a45b",
        "date_create": date_create,
        "action": "file_public_link_created",
        "actor": {"type": "user", "user": {"id": "W1", "email": "bird@slack.example"}},
        "entity": {"type": "file", "file": {"id": "F1", "name": "payroll.xlsx"}},
        "context": {"ip_address": "1.2.3.4"},
    }
    [event] = normalise("slack", "audit", entry)
    assert event.provider_event_id == "0123a45b"
    assert event.occurred_at == datetime(2025, 11, 20, 10, 0, 1, tzinfo=UTC)
    assert (event.actor, event.target, event.ip) == ("bird@slack.example", "payroll.xlsx", "1.2.3.4")


@pytest.mark.parametrize(
    ("provider", "stream", "record", "says"),
    [
        ("m365", "signins", {"createdDateTime": "2026-11-20T10:00:01Z"}, "'id'"),
        ("m365", "directory_audits", {"id": "a", "activityDateTime": "yesterday"}, "not a time"),
        ("google", "login", {"events": []}, "events[]"),
        ("slack", "audit", {"id": "x"}, "date_create"),
        ("slack", "audit", {"id": {"nested": 1}, "date_create": 1}, "string or a number"),
    ],
)
def test_unusable_records_are_refused_with_the_reason(
    provider: str, stream: str, record: dict, says: str
) -> None:
    with pytest.raises(NormaliseError, match=".*") as refusal:
        normalise(provider, stream, record)
    assert says in str(refusal.value)


def test_a_record_missing_several_required_fields_is_refused_naming_each() -> None:
    with pytest.raises(NormaliseError) as refusal:
        normalise("m365", "risk_detections", {"riskLevel": "high"})
    said = str(refusal.value)
    assert "'id'" in said and "'detectedDateTime' or 'activityDateTime'" in said


def test_a_wrapped_signin_whose_result_is_only_in_the_wrapper_gets_the_graph_status() -> None:
    # an Azure Monitor diagnostic export of a successful sign-in: resultType "0", no status object
    wrapped = {
        "time": "2026-11-20T10:00:01.6195833Z",
        "resourceId": "/tenants/7a1b/providers/Microsoft.aadiam",
        "operationName": "Sign-in activity",
        "category": "SignInLogs",
        "resultType": "0",
        "resultSignature": "None",
        "callerIpAddress": "131.107.159.37",
        "location": "US",
        "properties": {
            "id": "66ea54eb-6301-4ee5-be62-ff5a759b8101",
            "userPrincipalName": "alice@contoso.example",
            "appDisplayName": "Microsoft Office",
            "authenticationProtocol": "deviceCode",
        },
    }
    [event] = normalise("m365", "signins", wrapped)
    assert event.outcome == "success" and event.ip == "131.107.159.37" and event.country == "US"
    assert event.raw["status"] == {"errorCode": 0}
    assert event.raw["location"] == {"countryOrRegion": "US"}
    # the export's own view is kept beside the Graph object
    assert event.raw["properties"]["authenticationProtocol"] == "deviceCode"
    failed = {**wrapped, "resultType": "50126", "resultDescription": "Invalid username or password."}
    [failure] = normalise("m365", "signins", failed)
    assert failure.outcome == "failure"
    assert failure.raw["status"] == {"errorCode": 50126, "failureReason": "Invalid username or password."}


def test_a_log_analytics_signinlogs_row_becomes_the_graph_signin() -> None:
    # a SigninLogs row as a Log Analytics query export writes it: dynamic columns as JSON text,
    # Location the country code and LocationDetails the object
    row = {
        "TenantId": "7a1b",
        "TimeGenerated": "2026-11-20T10:00:02.1Z",
        "OperationName": "Sign-in activity",
        "Category": "NonInteractiveUserSignInLogs",
        "ResultType": "50126",
        "ResultDescription": "Invalid username or password.",
        "Id": "66ea54eb-6301-4ee5-be62-ff5a759b8102",
        "UserPrincipalName": "bob@contoso.example",
        "AppDisplayName": "Azure CLI",
        "IPAddress": "45.133.1.9",
        "Location": "NL",
        "LocationDetails": '{"city":"Amsterdam","state":"North Holland","countryOrRegion":"NL"}',
        "Status": '{"errorCode":50126,"failureReason":"Invalid username or password."}',
        "IsInteractive": False,
        "Type": "AADNonInteractiveUserSignInLogs",
    }
    [event] = normalise("m365", "signins", row)
    assert (event.provider_event_id, event.actor, event.ip, event.country, event.outcome) == (
        row["Id"],
        "bob@contoso.example",
        "45.133.1.9",
        "NL",
        "failure",
    )
    assert event.occurred_at == datetime(2026, 11, 20, 10, 0, 2, 100000, tzinfo=UTC)
    assert event.action == "signin_noninteractive"
    assert event.raw["location"]["city"] == "Amsterdam" and event.raw["Status"]["errorCode"] == 50126
