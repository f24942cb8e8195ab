"""Fuzzing the collectors' event and message normalisers with damaged provider records.

Given a realistic record from any stream (Entra sign-in, directory audit, unified audit, risk
detection, Google activity, Slack audit entry, chat/mail messages) with fields removed, retyped or
replaced by arbitrary JSON, normalising it either yields values that fit the database columns or
raises NormaliseError (which the collectors quarantine with its reason) — nothing else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from core.models import Event
from core.normalise import EVENT_NORMALISERS, NormalisedEvent, NormaliseError, normalise
from tests.fuzz.budget import FUZZ

AT = "2026-11-20T10:00:01.1234567Z"
SEEDS: dict[str, dict[str, Any]] = {
    "signins": {
        "id": "66ea54eb-6301-4ee5-be62-ff5a759b8100",
        "createdDateTime": AT,
        "userPrincipalName": "alice@contoso.example",
        "userId": "u1",
        "appDisplayName": "Graph explorer",
        "ipAddress": "131.107.159.37",
        "status": {"errorCode": 50126, "failureReason": "Invalid username or password."},
        "location": {"city": "Redmond", "countryOrRegion": "US"},
        "isInteractive": True,
    },
    "directory_audits": {
        "id": "Directory_1",
        "activityDisplayName": "Add member to role",
        "activityDateTime": AT,
        "result": "success",
        "initiatedBy": {
            "user": {"userPrincipalName": "bob@contoso.example", "ipAddress": "10.0.0.1"},
            "app": None,
        },
        "targetResources": [
            {"type": "User", "userPrincipalName": "eve@contoso.example", "modifiedProperties": []}
        ],
    },
    "unified_audit": {
        "Id": "0f4a8e8b-1",
        "CreationTime": "2026-11-20T10:00:01",
        "Operation": "New-InboxRule",
        "UserId": "alice@contoso.example",
        "ClientIP": "131.107.159.37:443",
        "ResultStatus": "Succeeded",
        "Workload": "Exchange",
        "Parameters": [{"Name": "ForwardTo", "Value": "x@evil.example"}],
    },
    "risk_detections": {
        "id": "rd1",
        "detectedDateTime": AT,
        "activityDateTime": AT,
        "riskEventType": "unfamiliarFeatures",
        "riskLevel": "high",
        "userPrincipalName": "alice@contoso.example",
        "ipAddress": "203.0.113.7",
        "location": {"countryOrRegion": "NG"},
    },
    "security_alerts": {
        "id": "fa955a2c28-3fb5-47f2-b479-f2ee95558497",
        "incidentId": "10042",
        "status": "new",
        "severity": "high",
        "classification": "unknown",
        "serviceSource": "microsoftDefenderForOffice365",
        "detectionSource": "microsoftDefenderForOffice365",
        "title": "Suspicious email forwarding activity",
        "category": "Exfiltration",
        "mitreTechniques": ["T1114.003"],
        "createdDateTime": AT,
        "lastUpdateDateTime": AT,
        "evidence": [
            {
                "@odata.type": "#microsoft.graph.security.userEvidence",
                "userAccount": {"userPrincipalName": "alice@contoso.example", "azureAdUserId": "u1"},
            },
            {"@odata.type": "#microsoft.graph.security.ipEvidence", "ipAddress": "203.0.113.7"},
        ],
    },
    "google": {
        "kind": "admin#reports#activity",
        "id": {
            "time": "2026-11-20T10:00:01.123Z",
            "uniqueQualifier": "-400287",
            "applicationName": "login",
            "customerId": "C0",
        },
        "actor": {"callerType": "USER", "email": "alice@example.com", "profileId": "1002"},
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
            {"type": "login", "name": "login_success", "parameters": []},
        ],
    },
    "okta": {
        "uuid": "a2a54d85-e14f-49cb-abb4-57d9fb3c3b55",
        "published": "2026-12-02T13:32:36.019Z",
        "eventType": "user.session.start",
        "actor": {"id": "00u1", "type": "User", "alternateId": "a@x.test"},
        "client": {"ipAddress": "1.2.3.4", "geographicalContext": {"country": "US"}},
        "outcome": {"result": "SUCCESS"},
        "target": [{"id": "00u1", "alternateId": "a@x.test"}],
    },
    "slack": {
        "id": "0123a45b-6c7d",
        "date_create": 1763632801,
        "action": "user_login",
        "actor": {"type": "user", "user": {"id": "W123", "name": "Charlie", "email": "bird@slack.example"}},
        "entity": {"type": "user", "user": {"id": "W123", "name": "Charlie", "email": "bird@slack.example"}},
        "context": {
            "location": {"type": "enterprise", "id": "E1"},
            "ua": "Mozilla/5.0",
            "ip_address": "1.2.3.4",
        },
    },
}
STREAMS = sorted(EVENT_NORMALISERS)
COLUMN_LIMITS = {
    name: column.type.length
    for name, column in Event.__table__.columns.items()  # type: ignore[attr-defined]
    if getattr(column.type, "length", None)
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(
        ["", "2026-13-45T99:99:99Z", "1763632801", "-1", "9" * 30, "x" * 2000, "::1", "not-an-ip"]
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


def _seed_for(provider: str, stream: str) -> dict[str, Any]:
    return SEEDS.get(stream) or SEEDS[provider]


def _paths(record: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (dict keys and list indexes) into a record."""
    out = []
    if isinstance(record, dict):
        for key, value in record.items():
            out.append((*prefix, key))
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(record, list):
        for index, value in enumerate(record):
            out.append((*prefix, index))
            out.extend(_paths(value, (*prefix, index)))
    return out


def _damage(record: Any, path: tuple, how: str, value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(record, dict):
        copy = dict(record)
        if not rest and how == "delete":
            copy.pop(head, None)
        else:
            copy[head] = _damage(record[head], rest, how, value)
        return copy
    copy_list = list(record)
    if not rest and how == "delete":
        del copy_list[head]
    else:
        copy_list[head] = _damage(record[head], rest, how, value)
    return copy_list


@st.composite
def damaged_records(draw: st.DrawFn) -> tuple[str, str, Any]:
    provider, stream = draw(st.sampled_from(STREAMS))
    record: Any = _seed_for(provider, stream)
    for _ in range(draw(st.integers(0, 4))):
        paths = _paths(record)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        record = _damage(record, path, draw(st.sampled_from(["delete", "replace"])), draw(json_values))
    if draw(st.integers(0, 9)) == 0:
        record = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
    return provider, stream, record


def _fits_the_event_table(event: NormalisedEvent) -> None:
    assert isinstance(event.provider_event_id, str) and event.provider_event_id
    assert isinstance(event.occurred_at, datetime) and event.occurred_at.tzinfo is not None
    assert isinstance(event.raw, dict)
    for name, limit in COLUMN_LIMITS.items():
        value = getattr(event, name, None)
        assert value is None or (isinstance(value, str) and len(value) <= limit), (
            f"{name}={value!r:.80} exceeds {limit}"
        )


@FUZZ
@given(case=damaged_records())
def test_a_damaged_record_is_normalised_into_storable_values_or_refused(case: tuple[str, str, Any]) -> None:
    provider, stream, record = case
    note(f"{provider}/{stream}: {record!r}")
    # given a damaged record, when normalised
    try:
        events = normalise(provider, stream, record)
    except NormaliseError as refusal:
        assert str(refusal)  # then a refusal says what is wrong
        return
    # then every event fits the columns it is stored in
    for event in events:
        _fits_the_event_table(event)


@FUZZ
@given(provider_stream=st.sampled_from(STREAMS), record=json_values)
def test_anything_that_is_not_a_record_is_refused(provider_stream: tuple[str, str], record: Any) -> None:
    # given any JSON value, when normalised as a record, then it is refused or storable
    try:
        events = normalise(*provider_stream, record)
    except NormaliseError:
        return
    for event in events:
        _fits_the_event_table(event)


def _with_oversized_id(provider: str, stream: str) -> dict[str, Any]:
    record = dict(_seed_for(provider, stream))
    if provider == "google":
        record["id"] = {**record["id"], "uniqueQualifier": "9" * 2000}
    else:
        record["Id" if "Id" in record else "id"] = "x" * 2000
    return record


@pytest.mark.parametrize(
    "provider_stream",
    [("m365", "signins"), ("m365", "unified_audit"), ("google", "login"), ("slack", "audit")],
)
def test_an_oversized_event_id_is_refused(provider_stream: tuple[str, str]) -> None:
    # given a record whose id would not fit the provider_event_id column
    record = _with_oversized_id(*provider_stream)
    # when normalised, then it is refused or its events still fit the table
    try:
        events = normalise(*provider_stream, record)
    except NormaliseError:
        return
    for event in events:
        _fits_the_event_table(event)
